#ifndef STAMINA_DETAIL_CALL_STATE_HPP
#define STAMINA_DETAIL_CALL_STATE_HPP

// What one call knows, built once when it starts, whatever its strategy (retry_protocol,
// hedge_protocol): the switch snapshot, its name and id, the protections in effect, the rule of
// classification, the clock rule, the hooks, and how a give-up is delivered. A strategy asks it;
// no driver re-derives any of it.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/decision.hpp>
#include <stamina/detail/call_site.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/describe.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/switches.hpp>
#include <stamina/error.hpp>
#include <stamina/failure.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_on.hpp>

#include <stamina/detail/system.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

STAMINA_NAMESPACE_BEGIN

namespace detail {

/// How a call that gives up completes, for every driver.
enum class give_up_result : unsigned char {
  last_attempt,       ///< the last result the dependency produced, unchanged
  aborted,            ///< `operation_aborted` (a wait was cancelled); other values value-initialised
  attempt_timeout,    ///< `stamina::error::attempt_timeout`; other values value-initialised
  throttled,          ///< `stamina::error::throttled` (no attempt was ever sent); others value-initialised
  circuit_open,       ///< `stamina::error::circuit_open` (no attempt was ever sent); others value-initialised
  deadline_exceeded,  ///< `stamina::error::deadline_exceeded` (the inherited deadline had passed before any
                      ///< attempt); others value-initialised
};

/// The error a give-up other than `last_attempt` is delivered as: the one rendering of
/// `give_up_result` every driver uses.
inline stamina::error_code give_up_code(give_up_result r) noexcept {
  switch (r) {
    case give_up_result::attempt_timeout:
      return error::attempt_timeout;
    case give_up_result::throttled:
      return error::throttled;
    case give_up_result::circuit_open:
      return error::circuit_open;
    case give_up_result::deadline_exceeded:
      return error::deadline_exceeded;
    case give_up_result::last_attempt:
    case give_up_result::aborted:
      break;
  }
  return stamina::net::error::operation_aborted;
}

/// What the protections say to sending the next attempt.
enum class admission : unsigned char {
  send,       ///< send it
  held_back,  ///< the throttle paces it: wait, then ask again
  refused,    ///< the circuit breaker is open: send nothing more
  queued,     ///< the concurrency limit is full: wait for a place (queue_for_place), then send
};

/// Whether a give-up delivers the protections' own error because no attempt was ever sent.
inline bool nothing_sent(give_up_result r) noexcept {
  return r == give_up_result::throttled || r == give_up_result::circuit_open || r == give_up_result::deadline_exceeded;
}

/// What the dependency's answer to an attempt says, for the protections.
enum class answer : unsigned char {
  accepted,    ///< a success, or a failure the call does not retry: the dependency answered
  failed,      ///< a retryable failure, answered with no sign of overload
  overloaded,  ///< the attempt timed out, or the answer says the dependency is overloaded
};

/// What a call state is built from: a policy's `call_spec()`, made once per policy block (when
/// the policy is made or changed), so a call copies nothing. `on` classifies failures; `own_*`
/// are the policy's own hooks (may be null); `explicit_name` is the policy's `name(...)` if it
/// was given one, else null, and then the call is named after its place in the code (or, when
/// not known, after `site`, where its policy was made).
struct call_state_spec {
  const retry_on* on = nullptr;
  const result_classifier* on_result = nullptr;
  const std::string* explicit_name = nullptr;
  throttle_slot* name_throttle = nullptr;     // the explicit name's throttle slot
  const call_site* site = nullptr;            // where the policy was made
  adaptive_throttle* own_throttle = nullptr;  // throttle(...) of the policy
  bool own_throttle_set = false;
  retry_budget* budget = nullptr;
  circuit_breaker* breaker = nullptr;  // a policy with one has no default throttle
  concurrency_limit* limit = nullptr;
  const instrumentation::on_retry_hook* own_on_retry = nullptr;
  const instrumentation::on_give_up_hook* own_on_give_up = nullptr;
  // No `on_result`, budget, breaker, limit or throttle of its own: unless a default throttle is
  // in effect, a first attempt goes at once and its success has nobody to tell (made_plain()).
  bool plain = false;
  // The same but for a circuit breaker, its one protection (it replaces the default throttle):
  // a first attempt the closed breaker lets through is plain too, its success told to the
  // breaker alone (call_state::closed_breaker_admits).
  bool breaker_only = false;
  void made_plain() noexcept {
    const bool unjudged_and_unpaced =
        on_result == nullptr && (!own_throttle_set || own_throttle == nullptr) && budget == nullptr && limit == nullptr;
    plain = unjudged_and_unpaced && breaker == nullptr;
    breaker_only = unjudged_and_unpaced && breaker != nullptr;
  }
};

/// A place under the concurrency limit held by one attempt: its ticket, and when it was taken
/// (on the limit's clock: its round trip is measured from then).
struct held_place {
  double taken_at = 0;
  std::uint32_t ticket = 0;
};

// A process-wide sequence of call ids, drawn only by calls that report something.
inline std::atomic<std::uint64_t> next_call_id{1};

/// The state every strategy of a call shares. Cheap to build: what only a failing call needs
/// (the name's default throttle, an id) is found when first needed.
class call_state {
 public:
  using spec = call_state_spec;

  /// `s` must outlive the call state (it lives in the policy's block, which the call holds);
  /// `where`, when given, names an unnamed policy's call.
  [[gnu::always_inline]] explicit call_state(const spec& s, const caller* where = nullptr) noexcept
      : call_state(s, load_global_config(), where) {}
  /// With the switches the driver read when the call started.
  [[gnu::always_inline]] call_state(const spec& s, global_config switches, const caller* where) noexcept
      : spec_(&s), switches_(switches) {
    if (where != nullptr && s.explicit_name == nullptr) {
      where_.file = where->file;
      caller_line_ = where->line;
    }
    if (active()) throttle_ = throttle_in_effect(false);
  }

  /// Whether a call under `s` with the switches `switches` sends its first attempt at once and,
  /// if it succeeds, has nobody to tell (no protection, budget or `on_result`, and no default
  /// throttle that could be in effect): a driver may then make the call state only if that
  /// attempt fails. Conservative: false sends the call the long way, which decides the same.
  [[gnu::always_inline]] static bool plain_success(const spec& s, global_config switches) noexcept {
    return s.plain && plain_switches(switches);
  }
  /// plain_success's part that is not the policy's: no default throttle that could be in effect.
  [[gnu::always_inline]] static bool plain_switches(global_config switches) noexcept {
    return !any_default_throttle_unhealthy() || !switches.active() || !switches.default_throttling();
  }
  /// Whether a call under `s` whose one protection is its circuit breaker (`spec::breaker_only`)
  /// may send its first attempt as a plain call does: the breaker is closed and lets it through,
  /// `ticket` receiving its generation — allow()'s closed case, word for word. Its success is
  /// then told to the breaker alone (closed_breaker_heard_success); its failure makes the call
  /// state with that ticket (first_attempt_admitted). Any other state (a probe to take, a
  /// refusal to count) is left untouched to the long way, which asks the breaker once.
  [[gnu::always_inline]] static bool closed_breaker_admits(const spec& s, global_config switches,
                                                           std::uint32_t& ticket) noexcept {
    return s.breaker_only && switches.active() && s.breaker->allow_if_closed(ticket);
  }
  /// The first attempt closed_breaker_admits let through succeeded (its answer: accepted).
  static void closed_breaker_heard_success(const spec& s, std::uint32_t ticket) noexcept {
    s.breaker->on_success(ticket);
  }
  /// The call's first attempt was sent before this state was made, let through by its breaker
  /// with `ticket` (closed_breaker_admits): its answer is told with it.
  void first_attempt_admitted(std::uint32_t ticket) noexcept { breaker_ticket_ = ticket; }

  // --- switches: read once, when the call starts ----------------------------------------------
  global_config switches() const noexcept { return switches_; }
  bool active() const noexcept { return switches_.active(); }
  bool testing() const noexcept { return switches_.testing(); }
  bool virtual_time() const noexcept { return switches_.virtual_time(); }

  // --- identity --------------------------------------------------------------------------------
  /// The policy's explicit name, else the name of the call's place in the code (or, when not
  /// known, where the policy was made).
  const std::string& name() const noexcept {
    return spec_->explicit_name != nullptr ? *spec_->explicit_name : site().name;
  }
  /// A process-wide id, drawn the first time it is asked for (a call that only succeeds
  /// draws none).
  std::uint64_t id() noexcept {
    if (id_ == 0) id_ = next_call_id.fetch_add(1, std::memory_order_relaxed);
    return id_;
  }

  // --- classification: a classifier that fails is reported, and means "do not retry" ---------
  decision classify(const failure& f) const noexcept {
    return classify_safely([&] { return (*spec_->on)(f); });
  }
  /// Whether successes are shown to an `on_result` predicate.
  bool judges_results() const noexcept { return spec_->on_result != nullptr; }
  /// The `on_result` predicate's verdict on the success `values` (no predicate: deliver).
  template <class... V>
  decision judge(const V&... values) const noexcept {
    if (spec_->on_result == nullptr) return decision::no_retry();
    const std::tuple<const V*...> pointers(&values...);
    return classify_safely([&] { return spec_->on_result->classify(&pointers); });
  }

  // --- protections -----------------------------------------------------------------------------
  /// Whether the next attempt may be sent: the circuit breaker first (open: refused, nothing
  /// more is sent), then the concurrency limit (full: queued, and the throttle is asked when a
  /// place is granted: a queued attempt is not one sent), then the throttle in effect (held back:
  /// paced). An inactive call always.
  admission admit() noexcept {
    circuit_breaker* const breaker = active() ? spec_->breaker : nullptr;
    if (breaker != nullptr && !breaker->allow(&breaker_ticket_)) return admission::refused;
    concurrency_limit* const limit = this->limit();
    if (limit != nullptr && !limit->try_acquire(&place_ticket_)) {
      if (breaker != nullptr) breaker->on_abandoned(breaker_ticket_);  // a probe it let through is not sent
      return admission::queued;
    }
    return throttle_admits(limit, breaker);
  }
  /// The concurrency limit the call's attempts count against, or null (none, or inactive).
  concurrency_limit* limit() const noexcept { return active() ? spec_->limit : nullptr; }
  /// A place under the limit was granted to the call's queued attempt (it holds it now): the
  /// breaker is asked again (it may have opened while the attempt waited), then the throttle.
  /// Anything but send gives the place back.
  admission admit_granted(std::uint32_t ticket) noexcept {
    place_ticket_ = ticket;
    circuit_breaker* const breaker = spec_->breaker;
    if (breaker != nullptr && !breaker->allow(&breaker_ticket_)) {
      spec_->limit->release(ticket, std::nullopt, limit_sample::none);
      return admission::refused;
    }
    return throttle_admits(spec_->limit, breaker);
  }
  /// A place granted to a queued attempt that is not sent after all (the call was cancelled).
  void place_unused(std::uint32_t ticket) noexcept { spec_->limit->release(ticket, std::nullopt, limit_sample::none); }
  /// Whether the breaker would refuse an attempt now (without taking a probe): the call need not
  /// wait for a retry that cannot be sent.
  bool refused_now() const noexcept { return active() && spec_->breaker != nullptr && spec_->breaker->refusing(); }
  /// A sent attempt ended without an answer (cancelled): a breaker's probe place and the
  /// attempt's place under the limit are freed.
  void abandoned() noexcept {
    breaker_abandoned(breaker_ticket_);
    if (holds_place_) {
      holds_place_ = false;
      spec_->limit->release(place_ticket_, std::nullopt, limit_sample::none);
    }
  }
  /// For a strategy with several attempts in flight (hedging), each with its own `ticket`: whether
  /// the breaker lets the attempt be sent (the throttle does not pace hedges).
  bool breaker_allows(std::uint32_t& ticket) noexcept {
    circuit_breaker* const breaker = active() ? spec_->breaker : nullptr;
    return breaker == nullptr || breaker->allow(&ticket);
  }
  /// For a strategy with several attempts in flight (hedging): takes a place under the limit
  /// (which must apply: limit() is not null) for one attempt, if one is free and nobody waits.
  bool take_place(held_place& place) noexcept {
    if (!spec_->limit->try_acquire(&place.ticket)) return false;
    place.taken_at = spec_->limit->now();
    return true;
  }
  /// The place granted to one of several attempts that waited for it (`ticket`).
  held_place granted_place(std::uint32_t ticket) const noexcept { return {spec_->limit->now(), ticket}; }
  /// One of several attempts in flight returned: the breaker hears `said` (nullopt: it ended
  /// without an answer, cancelled or never answered), and `place` (its place under the limit,
  /// or null) is given back, its round trip a sample when it was answered.
  void attempt_returned(std::optional<answer> said, bool success, std::uint32_t breaker_ticket,
                        const held_place* place) noexcept {
    if (said)
      breaker_answered(*said, breaker_ticket);
    else
      breaker_abandoned(breaker_ticket);
    if (place != nullptr)
      spec_->limit->release(place->ticket, said ? std::optional<double>(place->taken_at) : std::nullopt,
                            said ? sample_of(*said, success) : limit_sample::none);
  }
  /// The answer to one of several attempts in flight, for the breaker.
  void breaker_answered(answer a, std::uint32_t ticket) noexcept {
    if (circuit_breaker* const breaker = active() ? spec_->breaker : nullptr) tell(*breaker, a, ticket);
  }
  /// One of several attempts in flight ended without an answer (cancelled), or was not sent.
  void breaker_abandoned(std::uint32_t ticket) noexcept {
    if (active() && spec_->breaker != nullptr) spec_->breaker->on_abandoned(ticket);
  }
  /// The dependency's answer to a sent attempt: the throttle counts it (made for the name at
  /// the first failure); a success returns tokens to the budget.
  void answered(answer a, bool success) noexcept {
    if (!active()) return;
    if (holds_place_) {
      holds_place_ = false;
      spec_->limit->release(place_ticket_, place_taken_at_, sample_of(a, success));
    }
    if (circuit_breaker* const breaker = spec_->breaker) tell(*breaker, a, breaker_ticket_);
    if (a != answer::accepted && throttle_ == nullptr) throttle_ = throttle_in_effect(true);
    if (throttle_ != nullptr) {
      switch (a) {
        case answer::accepted:
          throttle_->on_accepted();
          break;
        case answer::failed:
          throttle_->on_failed();
          break;
        case answer::overloaded:
          throttle_->on_overloaded();
          break;
      }
    }
    if (success && spec_->budget != nullptr) spec_->budget->on_success();
  }
  /// The throttle this call answers to: the policy's own; else, unless default throttling is
  /// off, the default throttle of the call's name — when some default throttle is unhealthy,
  /// or, with `make`, made (registered) for the name if it has none yet. Null: none applies.
  /// Its common case (every default throttle healthy) is inline: the success path asks it.
  [[gnu::always_inline]] adaptive_throttle* throttle_in_effect(bool make) const noexcept {
    if (spec_->own_throttle_set) return spec_->own_throttle;
    if (!switches_.default_throttling() || spec_->breaker != nullptr) return nullptr;
    if (!make && !any_default_throttle_unhealthy()) [[likely]]
      return nullptr;  // every default throttle is healthy: nothing to ask
    return name_throttle(make);
  }

  /// No throttle is in effect (yet), no breaker and no limit: an attempt needs no admission.
  bool unthrottled() const noexcept {
    return throttle_ == nullptr && spec_->breaker == nullptr && spec_->limit == nullptr;
  }
  /// No throttle, no budget, no breaker and no limit: a success has nobody to tell.
  bool unguarded() const noexcept {
    return throttle_ == nullptr && spec_->budget == nullptr && spec_->breaker == nullptr && spec_->limit == nullptr;
  }

  /// A retryable failure costs one token of the budget; whether a retry is still allowed.
  bool budget_allows_retry() noexcept { return spec_->budget == nullptr || !active() || spec_->budget->on_failure(); }

  // --- what a failure that the dependency did not produce stands for, in hooks and metrics ---
  /// An attempt cut by its time limit.
  static failure timed_out_failure() noexcept { return failure(make_error_code(error::attempt_timeout)); }
  /// An attempt the throttle held back.
  static failure throttled_failure() noexcept { return failure(make_error_code(error::throttled)); }
  /// An attempt the circuit breaker refused.
  static failure circuit_open_failure() noexcept { return failure(make_error_code(error::circuit_open)); }
  /// A call that sent nothing because its inherited deadline had passed.
  static failure deadline_failure() noexcept { return failure(make_error_code(error::deadline_exceeded)); }
  /// Whether `f` stands for an attempt that was never sent (held back or refused).
  static bool never_sent(const failure& f) noexcept {
    return f.error() == make_error_code(error::throttled) || f.error() == make_error_code(error::circuit_open);
  }
  /// A result `on_result` retried: the result, described.
  template <class... V>
  static failure retried_result_failure(const V&... values) noexcept {
    try {
      return failure(std::make_exception_ptr(retried_result_error(describe_values_of(values...))));
    } catch (...) {
      return failure(make_error_code(error::retried_result));  // out of memory
    }
  }

  // --- hooks -----------------------------------------------------------------------------------
  bool reports_retries() const noexcept { return active() && (has_on_retry_hooks() || spec_->own_on_retry != nullptr); }
  bool reports_give_ups() const noexcept {
    return active() && (has_on_give_up_hooks() || spec_->own_on_give_up != nullptr);
  }
  void report_retry(const retry_details& d, retry_scope& scope) const noexcept {
    notify_retry(d, scope, spec_->own_on_retry);
  }
  void report_give_up(const give_up_details& d) const noexcept { notify_give_up(d, spec_->own_on_give_up); }
  bool reports_hedges() const noexcept { return active() && has_on_hedge_hooks(); }
  void report_hedge(const hedge_event& e) const noexcept { notify_hedge(e); }

 private:
  // What an answer tells the concurrency limit: a success is a round trip; a failure (retried or
  // not) is one only if it came slower than usual (a refused connection at once says nothing
  // about queueing); a time-out or an answer that says "overloaded" is a drop.
  static limit_sample sample_of(answer a, bool success) noexcept {
    return a == answer::overloaded ? limit_sample::drop : success ? limit_sample::success : limit_sample::failure;
  }

  // What an answer means to a breaker: the dependency answered, or it failed.
  static void tell(circuit_breaker& breaker, answer a, std::uint32_t ticket) noexcept {
    if (a == answer::accepted)
      breaker.on_success(ticket);
    else
      breaker.on_failure(ticket);
  }

  // The throttle's word on an attempt the breaker and the limit let through (`limit`: it holds a
  // place, given back if the attempt is held back).
  admission throttle_admits(concurrency_limit* limit, circuit_breaker* breaker) noexcept {
    if (throttle_ == nullptr && active())
      throttle_ = throttle_in_effect(false);  // the name's throttle may have become unhealthy since
    if (throttle_ != nullptr && !throttle_->admit()) {
      if (breaker != nullptr) breaker->on_abandoned(breaker_ticket_);
      if (limit != nullptr) limit->release(place_ticket_, std::nullopt, limit_sample::none);
      return admission::held_back;
    }
    if (limit != nullptr) {
      holds_place_ = true;
      place_taken_at_ = limit->now();
    }
    return admission::send;
  }

  // The default throttle of the call's name (made, with `make`, if it has none yet).
  adaptive_throttle* name_throttle(bool make) const noexcept {
    throttle_slot& slot = spec_->name_throttle != nullptr ? *spec_->name_throttle : site().throttle;
    if (adaptive_throttle* t = slot.get()) return t;
    return resolve_throttle(slot, name(), make);
  }

  // The call's place in the code, interned when first needed.
  const call_site& site() const noexcept {
    if (!interned_) {
      if (where_.file == nullptr) return *spec_->site;
      where_.site = &intern_call_site(where_.file, caller_line_);
      interned_ = true;
    }
    return *where_.site;
  }

  // Widest first, so that a call (and a coroutine frame holding one) carries no padding.
  const spec* spec_;
  // The call's place in the code: its file until interned, then its interned site (one word,
  // since a call state sits in every coroutine frame).
  mutable union {
    const char* file = nullptr;
    const call_site* site;
  } where_;
  global_config switches_;
  adaptive_throttle* throttle_ = nullptr;
  std::uint64_t id_ = 0;
  double place_taken_at_ = 0;  // when the attempt in flight took its place, on the limit's clock
  unsigned caller_line_ = 0;
  std::uint32_t breaker_ticket_ = 0;  // the breaker's generation when it let the attempt through
  std::uint32_t place_ticket_ = 0;    // the limit's generation when the attempt took its place
  bool holds_place_ = false;          // the attempt in flight holds a place under the limit
  mutable bool interned_ = false;     // where_ holds the site
  // A stamina call was made within the attempt in flight (retry_policy::within, through the
  // attempt's context, possibly from another thread: accessed through std::atomic_ref).
  bool nested_call_ = false;

 public:
  // --- layers ------------------------------------------------------------------------------
  /// The flag a call made within the current attempt sets (`attempt_context`).
  bool* nested_call_flag() noexcept { return &nested_call_; }
  /// Whether a stamina call was made within the current attempt.
  bool nested_call() noexcept { return std::atomic_ref<bool>(nested_call_).load(std::memory_order_relaxed); }
  /// A new attempt starts: no call was made within it yet.
  void attempt_started() noexcept { std::atomic_ref<bool>(nested_call_).store(false, std::memory_order_relaxed); }
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
