#ifndef STAMINA_DETAIL_RETRY_PROTOCOL_HPP
#define STAMINA_DETAIL_RETRY_PROTOCOL_HPP

// The retry strategy: the rules of one retrying call, written once, as a sans-I/O state machine
// over the call's state (call_state.hpp). A driver (the blocking loop in retry.hpp,
// retry_context, the caller coroutine and the composed operation of async_retry) reports what
// happened — an attempt succeeded, failed, timed out or was cancelled; a wait ended or was
// interrupted — and performs the action the machine returns. The machine reads no clock (elapsed
// time is passed in), starts nothing and waits for nothing.
//
// Owned here: the order of steps; which attempts are sent and which the throttle holds back,
// and what each counts for; classification of timed-out, held-back, cancelled attempts and of
// retried results; the attempt count, the schedule restart after a long healthy attempt; the
// give-up reason and what a give-up delivers (the last result the dependency produced;
// `throttled` only when nothing was sent); hook reports and the lifetime of hook scopes. The
// wait arithmetic and the deadline are backoff's (backoff.hpp); switches, protections,
// classification and hooks are the call state's.

#include <stamina/attempt_context.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/detail/describe.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/switches.hpp>
#include <stamina/error.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry_policy.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>

STAMINA_NAMESPACE_BEGIN

namespace detail {

/// What the driver does next.
enum class action_kind : unsigned char {
  attempt,  ///< start an attempt, limited to `action::limit` when set
  wait,     ///< wait `action::wait` (> 0), then report wait_finished
  queue,    ///< wait for a place under the concurrency limit (at most `action::limit`, when set),
            ///< then report place_wait_finished
  deliver,  ///< complete with the successful attempt's result
  give_up,  ///< complete as `action::result` says
};

struct action {
  action_kind kind = action_kind::deliver;
  give_up_result result = give_up_result::last_attempt;  ///< give_up only
  bool limited = false;                                  ///< attempt only: `amount` is its time limit
  duration amount{0};                                    ///< wait: how long; attempt: the time limit

  /// attempt only: the attempt's time limit, if any.
  std::optional<duration> limit() const noexcept { return limited ? std::optional<duration>(amount) : std::nullopt; }
  /// wait only: how long.
  duration wait() const noexcept { return amount; }

  static action attempt(std::optional<duration> limit) noexcept {
    return {action_kind::attempt, {}, limit.has_value(), limit.value_or(duration(0))};
  }
  static action wait_for(duration d) noexcept { return {action_kind::wait, {}, false, d}; }
  static action queue(std::optional<duration> at_most) noexcept {
    return {action_kind::queue, {}, at_most.has_value(), at_most.value_or(duration(0))};
  }
  static action deliver() noexcept { return {action_kind::deliver, {}, false, {}}; }
  static action give_up(give_up_result r) noexcept { return {action_kind::give_up, r, false, {}}; }
};

class retry_protocol {
 public:
  /// The call starts: the switches are read, the protections in effect resolved. Refers to
  /// `policy`, which must outlive the machine. An unnamed policy's call is named after `where`
  /// (the call's place in the code) when given. Cheap: what a failure needs is made at the first
  /// failure. `seed` fixes the jitter (0: random, or virtual time's).
  explicit retry_protocol(const retry_policy& policy, const caller* where = nullptr, std::uint64_t seed = 0) noexcept
      : policy_(&policy), state_(policy.call_spec(), where), failed_(seed) {}
  retry_protocol(retry_policy&&, const caller* = nullptr, std::uint64_t = 0) = delete;

  /// Whether a call of `policy` whose state is `state` sends its first attempt at once, with
  /// nothing to decide: no throttle in effect (the call state asked when it was made) and no
  /// attempt limit. A driver whose success path must stay tiny (the blocking one) then sends it
  /// with only the call state made, and makes the machine only if the attempt needs it.
  static bool sends_first_attempt_at_once(const retry_policy& policy, const call_state& state) noexcept {
    return state.unthrottled() && !policy.attempt_timeout() && !policy.deadline_since_epoch();
  }
  /// Whether a call of `policy` started with the switches `switches` sends its first attempt at
  /// once and, if it succeeds, has nobody to tell (call_state::plain_success), with no attempt
  /// limit and no inherited deadline: a driver may then make the call state and the machine
  /// only if that attempt fails (the machine made with `first_attempt_sent`; the throttle in
  /// effect is then looked up at the failure, as the blocking driver does).
  [[gnu::always_inline]] static bool sends_plain_first_attempt(const retry_policy& policy,
                                                               global_config switches) noexcept {
    // The policy's part (spec.plain, no attempt_timeout, no inherited deadline) is one bit. The
    // common call (also without reset_after, no default throttle unhealthy) is told by one branch
    // that reads no switch, before the test in full: 1.66 -> 1.40 ns for a call without a
    // deadline, 5.4 -> 4.0 ns with one (stop 48).
    constexpr unsigned not_common = policy_shape::not_plain | policy_shape::clocked;
    const unsigned shape = policy.shape();
    return ((shape & not_common) | unhealthy_default_throttles.load(std::memory_order_relaxed)) == 0 ||
           ((shape & policy_shape::not_plain) == 0 && call_state::plain_switches(switches));
  }
  /// Whether a call of `policy` started with `switches` whose one protection is its circuit
  /// breaker sends its first attempt as a plain call does when the breaker, asked as the attempt
  /// is due (call_state::closed_breaker_admits), is closed: no attempt limit, no inherited
  /// deadline; its success is told to the breaker alone.
  [[gnu::always_inline]] static bool may_pass_closed_breaker(const retry_policy& policy,
                                                             global_config switches) noexcept {
    return policy.call_spec().breaker_only && switches.active() && !policy.attempt_timeout() &&
           !policy.deadline_since_epoch();
  }
  /// Whether a first attempt sent that way needs the machine to finish: it failed, `on_result`
  /// judges it, or the protections are told of its success.
  static bool needs_machine_after(bool succeeded, const call_state& state) noexcept {
    return !succeeded || state.judges_results() || !state.unguarded();
  }
  /// A call whose state the driver made already (its switches were read then).
  retry_protocol(const retry_policy& policy, const call_state& state) noexcept : policy_(&policy), state_(state) {}
  retry_protocol(retry_policy&&, const call_state&) = delete;
  struct first_attempt_sent_t {};
  static constexpr first_attempt_sent_t first_attempt_sent{};
  /// Continues a call whose first attempt the driver sent at once (sends_first_attempt_at_once,
  /// at elapsed time 0) with `state`: the same machine as start() would have left.
  retry_protocol(const retry_policy& policy, const call_state& state, first_attempt_sent_t /*sent*/) noexcept
      : policy_(&policy), state_(state), stage_(stage::attempting), sent_(1) {}
  retry_protocol(retry_policy&&, const call_state&, first_attempt_sent_t) = delete;
  retry_protocol(const retry_protocol&) = delete;  // one call, one owner of its attempt
  retry_protocol& operator=(const retry_protocol&) = delete;
  // A call destroyed during an attempt (its io_context destroyed, its coroutine frame freed):
  // the attempt will never be answered, so a breaker's probe place it holds is freed now.
  ~retry_protocol() {
    if (stage_ == stage::attempting && sent_ > 0) [[unlikely]]
      state_.abandoned();
  }

  /// The one clock rule: the driver measures elapsed time (one clock read when the call
  /// starts and one per step) only when a deadline, an attempt time limit or a schedule restart
  /// applies.
  [[gnu::always_inline]] bool needs_clock() const noexcept { return needs_clock(*policy_, state_); }
  /// Whether the clock must be the precise one (an inherited deadline), not its coarse variant.
  bool precise_clock() const noexcept { return precise_clock(*policy_); }
  static bool precise_clock(const retry_policy& policy) noexcept { return policy.deadline_since_epoch().has_value(); }
  [[gnu::always_inline]] static bool needs_clock(const retry_policy& policy, const call_state& state) noexcept {
    return needs_clock(policy, state.switches());
  }
  [[gnu::always_inline]] static bool needs_clock(const retry_policy& policy, global_config switches) noexcept {
    return backoff::needs_clock(policy, switches);
  }

  /// The call's state (switches, name, protections).
  call_state& state() noexcept { return state_; }
  const call_state& state() const noexcept { return state_; }

  /// The first step of every call: the first attempt (or, if the throttle holds it back, a wait).
  [[gnu::always_inline]] action start(duration elapsed) {
    assert(stage_ == stage::idle);
    // No throttle in effect (the call state asked when it was made, a moment ago) and no
    // attempt limit: the first attempt goes, with nothing to decide.
    if (sends_first_attempt_at_once(*policy_, state_)) [[likely]] {
      stage_ = stage::attempting;
      sent_ = 1;
      attempt_started_ = elapsed.count();
      return action::attempt(std::nullopt);
    }
    return next_attempt(elapsed);
  }
  /// The first step, for a driver whose call may have inherited a deadline: `origin` is when
  /// the call started, in seconds since the epoch of its clock (`stopwatch::origin()`). A
  /// deadline that has passed already ends the call before anything is sent.
  action start(duration elapsed, double origin) {
    return start(elapsed, [origin] { return origin; });
  }
  /// The same, with `origin()` giving it: read only when the call inherited a deadline.
  template <class Origin>
  requires std::is_invocable_r_v<double, const Origin&> action start(duration elapsed, const Origin& origin) {
    const std::optional<double> at = policy_->deadline_since_epoch();
    if (!at || !state_.active() || state_.testing()) [[likely]]
      return start(elapsed);
    // Kept in a float's range (a hostile -inf or a huge value must not become "no deadline").
    constexpr double largest = std::numeric_limits<float>::max();
    const double left = std::clamp(*at - origin(), -largest, largest);
    deadline_left_ = static_cast<float>(left);
    if (double(deadline_left_) > left)  // rounded up: a deadline is never moved later
      deadline_left_ = std::nextafter(deadline_left_, -std::numeric_limits<float>::infinity());
    return next_attempt(elapsed);  // nothing, if the deadline has passed already
  }

  /// The context of the attempt that an `attempt` action just started, in `scope` (owned by the
  /// driver, alive until the attempt completed), for an op that asks for it. `origin`: as for
  /// start(). A call made within the attempt through it (retry_policy::within) is seen by the
  /// machine itself when the attempt's outcome is reported.
  const attempt_context& context(attempt_scope& scope, duration elapsed, double origin) {
    return context_access::fill(scope.context, attempts(), state_.id(), state_.name(), state_.nested_call_flag(),
                                origin + elapsed.count(), deadline_in_call_time() - now(elapsed).count());
  }

  /// Whether a stamina call was made within the current attempt (`retry_policy::within` on its
  /// context): then the call does not retry the attempt (only the innermost layer retries).
  bool made_nested_call() noexcept { return state_.nested_call(); }

  /// The attempt succeeded and no `on_result` judges it: deliver it.
  [[gnu::always_inline]] action attempt_succeeded() noexcept {
    assert(stage_ == stage::attempting);
    if (!state_.unguarded() || failed_) [[unlikely]]
      return succeeded_after_all();
    stage_ = stage::done;  // nothing to tell a throttle or a budget, nothing to release
    return action::deliver();
  }

  /// The attempt succeeded with `values`: the policy's `on_result` (if any) decides whether the
  /// result is delivered or retried like a failure. A give-up after a retried result delivers
  /// that result as the success it is. `elapsed()` is called only when the result is retried:
  /// a success reads no clock.
  template <class Elapsed, class... V>
  action attempt_succeeded(const Elapsed& elapsed, bool cancelled, const V&... values) {
    if (!state_.judges_results()) [[likely]]
      return attempt_succeeded();
    const decision verdict = state_.judge(values...);
    const bool pushed_back = verdict.what() == decision::kind::pushback;
    if (!verdict.should_retry() && !pushed_back) return attempt_succeeded();
    assert(stage_ == stage::attempting);
    // A result the policy retries counts as the failure it stands for (a 503 as a value).
    state_.answered(verdict.overload() ? answer::overloaded : answer::failed, false);
    last_ = give_up_result::last_attempt;
    const failure what = call_state::retried_result_failure(values...);
    if (cancelled) return give_up(give_up_reason::cancelled, what);
    // "Do not retry" from the layer below (its marker, or a call made within the attempt):
    // the result is delivered as it is.
    if (pushed_back || made_nested_call()) return give_up(give_up_reason::pushback, what);
    return after_failure(verdict, what, elapsed());
  }

  /// The attempt failed with `what`, `elapsed` after the call started. `cancelled`: the caller
  /// asked to cancel during the attempt; a cancelled attempt is never retried. An attempt within
  /// which a stamina call was made (`retry_policy::within`) is not retried either: that call
  /// retried already (only the innermost layer retries).
  action attempt_failed(const failure& what, duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    last_ = give_up_result::last_attempt;
    if (cancelled) {
      state_.abandoned();
      return give_up(give_up_reason::cancelled, what);
    }
    const decision verdict = state_.classify(what);
    if (!verdict.should_retry()) {
      // A 404 is an answer; "do not retry" from the layer below is a sign of overload.
      const bool pushed_back = verdict.what() == decision::kind::pushback;
      state_.answered(pushed_back ? answer::overloaded : answer::accepted, false);
      return give_up(pushed_back ? give_up_reason::pushback : give_up_reason::not_retryable, what);
    }
    if (made_nested_call()) {
      // The call within the attempt retried its dependency already: not retried here.
      state_.answered(verdict.overload() ? answer::overloaded : answer::failed, false);
      return give_up(give_up_reason::pushback, what);
    }
    restart_if_long_lived(elapsed);
    state_.answered(verdict.overload() ? answer::overloaded : answer::failed, false);
    return after_failure(verdict, what, elapsed);
  }

  /// The attempt was cut by its time limit: a retryable failure whatever `on` says, and a sign
  /// of overload; if the call gives up, it completes with `attempt_timeout`.
  action attempt_timed_out(duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    last_ = give_up_result::attempt_timeout;
    const failure what = call_state::timed_out_failure();
    if (cancelled) {
      state_.abandoned();
      return give_up(give_up_reason::cancelled, what);
    }
    if (cut_by_caller(elapsed)) {
      // Cut because the caller's time ran out, not because the dependency was slow: no verdict
      // for the protections (a caller with 5 ms left must not open a breaker for the others).
      state_.abandoned();
      return give_up(give_up_reason::deadline, what);
    }
    state_.answered(answer::overloaded, false);
    if (made_nested_call()) return give_up(give_up_reason::pushback, what);  // the call within it retried
    return after_failure(decision::overloaded(), what, elapsed);
  }

  /// The wait for a place under the concurrency limit ended: `granted`, the attempt holds one
  /// now; `interrupted`, the call was cancelled (async) or a stop was requested (sync); neither:
  /// the call's deadline passed.
  /// `ticket`: the granted place's (concurrency_limit::try_acquire, limit_waiter::ticket).
  action place_wait_finished(duration elapsed, bool granted, bool interrupted, std::uint32_t ticket) {
    assert(stage_ == stage::queued);
    stage_ = stage::attempting;
    if (granted && interrupted) state_.place_unused(ticket);
    if (interrupted || !granted) {
      const failure what = failed_ ? failed_->last : unsent_failure();
      if (interrupted) return give_up(give_up_reason::cancelled, what, give_up_result::aborted);
      return give_up(give_up_reason::deadline, what);
    }
    if (past_inherited_deadline(elapsed)) [[unlikely]] {  // granted too late
      state_.place_unused(ticket);
      return give_up(give_up_reason::deadline, failed_ ? failed_->last : call_state::deadline_failure());
    }
    switch (state_.admit_granted(ticket)) {
      case admission::send:
        return sent_attempt(elapsed);
      case admission::refused:
        return give_up(give_up_reason::circuit_open, call_state::circuit_open_failure());
      case admission::held_back:
      case admission::queued:
        break;
    }
    if (const std::optional<action> after = held_back(elapsed)) return *after;  // paced after all
    return next_attempt(elapsed);
  }

  /// The wait ended; `interrupted`: it was cancelled (async) or a stop was requested (sync).
  action wait_finished(duration elapsed, bool interrupted) {
    assert(stage_ == stage::waiting);
    if (interrupted) {
      const failure last = failed_->last;  // give_up ends the failure state
      return give_up(give_up_reason::cancelled, last, give_up_result::aborted);
    }
    return next_attempt(elapsed);
  }

  /// The wait that follows if the attempt now running fails with an ordinary retryable
  /// failure (Python's `next_wait`): the same draw the failure will make, or 0 in testing mode.
  /// It ignores the deadline, the attempt limit and server-given waits.
  duration next_wait() { return failed().waits.peek_wait(); }

  /// Attempts so far, sent or held back: the number of the current one.
  unsigned attempts() const noexcept { return saturating_sum(sent_, held_); }
  /// Attempts sent to the dependency.
  unsigned sent() const noexcept { return sent_; }
  /// Attempts the throttle held back (never sent).
  unsigned held_back() const noexcept { return held_; }
  /// Why the call gave up; nullopt while it runs or when it delivered a success.
  std::optional<give_up_reason> gave_up() const noexcept {
    if (gave_up_ == 0) return std::nullopt;
    return static_cast<give_up_reason>(gave_up_ - 1);
  }

 private:
  enum class stage : unsigned char { idle, attempting, waiting, queued, done };

  // What only a call that failed needs.
  struct failure_state {
    failure_state(const retry_policy& policy, global_config switches, std::uint64_t seed) noexcept
        : waits(policy, switches, seed) {}
    backoff waits;                        // wait arithmetic and the deadline
    retry_scope scope;                    // objects returned by on-retry hooks
    failure last{stamina::error_code()};  // the failure the current wait follows
  };

  // The failure state, made at the first failure; until then (and after the schedule restarts)
  // its room keeps the seed of the jitter: one room for both, since a call sits in every
  // coroutine frame.
  class failure_slot {
   public:
    explicit failure_slot(std::uint64_t seed = 0) noexcept : seed_(seed), seeded_(seed != 0) {}
    failure_slot(const failure_slot&) = delete;
    failure_slot& operator=(const failure_slot&) = delete;
    ~failure_slot() { reset(); }
    explicit operator bool() const noexcept { return made_; }
    failure_state& operator*() noexcept { return state_; }
    failure_state* operator->() noexcept { return &state_; }
    const failure_state* operator->() const noexcept { return &state_; }
    // Without a seed of its own, virtual time's (or a random one, drawn at the first wait).
    void emplace(const retry_policy& policy, global_config switches) noexcept {
      const std::uint64_t seed = seed_ != 0 || !switches.virtual_time() ? seed_ : virtual_time_seed();
      ::new (static_cast<void*>(&state_)) failure_state(policy, switches, seed);
      made_ = true;
    }
    // The failure state goes (the call ended).
    void reset() noexcept {
      if (!made_) return;
      state_.~failure_state();
      made_ = false;
      seed_ = 0;
    }
    // The schedule starts afresh: a later failure makes a new failure state, whose jitter is
    // random (virtual time: the next seed of virtual time) as the call's first one was; a call
    // given a seed goes on with its stream, so it stays repeatable.
    void restart() noexcept {
      if (!made_) return;
      const std::uint64_t next = seeded_ ? state_.waits.rng_ : 0;
      reset();
      seed_ = next;
    }

   private:
    union {
      std::uint64_t seed_;
      failure_state state_;
    };
    bool made_ : 1 = false;
    bool seeded_ : 1;  // given a seed when made
  };

  failure_state& failed() noexcept {
    if (!failed_) {
      failed_.emplace(*policy_, state_.switches());
      if (inherits_deadline()) [[unlikely]]
        failed_->waits.clamp_deadline(double(deadline_left_) - origin_);
    }
    return *failed_;
  }

  static unsigned saturating_sum(unsigned a, unsigned b) noexcept {
    return a > std::numeric_limits<unsigned>::max() - b ? std::numeric_limits<unsigned>::max() : a + b;
  }
  static void saturating_increment(unsigned& n) noexcept {
    if (n != std::numeric_limits<unsigned>::max()) ++n;
  }

  // The call's own time: since it started (or restarted), and in virtual time the sum of the
  // waits it skipped.
  duration now(duration elapsed) const noexcept {
    if (state_.virtual_time()) [[unlikely]]
      return duration(waited_);
    return duration(elapsed.count() - origin_);
  }

  // Whether an inherited deadline has passed: no attempt may start.
  bool past_inherited_deadline(duration elapsed) const noexcept {
    return inherits_deadline() && !(now(elapsed).count() < double(deadline_left_) - origin_);
  }
  bool inherits_deadline() const noexcept { return deadline_left_ != std::numeric_limits<float>::infinity(); }
  // Whether the attempt just cut was cut at the inherited deadline. In virtual time the call's
  // own clock (the waits it skipped) stands still during an attempt, while the cut came on the
  // real one: the limit the attempt was given (sent_attempt) tells instead.
  bool cut_by_caller(duration elapsed) {
    if (past_inherited_deadline(elapsed)) return true;
    if (!state_.virtual_time() || !inherits_deadline() || !state_.active()) return false;
    const double left = std::max(0.0, double(deadline_left_) - origin_ - now(elapsed).count());
    const std::optional<duration> own =
        policy_->attempt_timeout() ? failed().waits.attempt_limit(now(elapsed)) : std::nullopt;
    return !own || left <= own->count();
  }
  // Whether the inherited deadline comes before the policy's own timeout (it is the one a give-up
  // for `deadline` is about).
  bool inherited_deadline_binds() const noexcept {
    if (!inherits_deadline()) return false;
    const auto timeout = policy_->timeout();
    return !timeout || state_.testing() || double(deadline_left_) - origin_ <= timeout->count();
  }
  // What a give-up that sent nothing reports when no attempt failed: the deadline it inherited,
  // or the throttle.
  failure unsent_failure() const noexcept {
    return inherited_deadline_binds() ? call_state::deadline_failure() : call_state::throttled_failure();
  }

  // The call's deadline in its own time (now()): the earlier of the policy's timeout and the
  // inherited deadline; +inf: none (or testing mode, or inactive).
  double deadline_in_call_time() const noexcept {
    double d = double(deadline_left_) - origin_;
    if (const auto timeout = policy_->timeout(); timeout && !state_.testing() && state_.active())
      d = std::min(d, timeout->count());
    return d;
  }

  // An attempt that ran healthy for at least `reset_after` before failing starts the schedule
  // afresh: a reconnect loop around a long session does not drift to its longest waits.
  void restart_if_long_lived(duration elapsed) noexcept {
    const auto reset = policy_->reset_after();
    if (!reset || elapsed.count() - attempt_started_ < reset->count()) return;
    failed_.restart();
    sent_ = 1;  // the attempt that just failed
    held_ = 0;
    waited_ = 0;
    origin_ = attempt_started_;
  }

  // Starts the next attempt, unless the throttle holds it back: a held-back attempt is not sent,
  // waits the backoff of the next real retry, charges no budget and is not reported as a retry.
  action next_attempt(duration elapsed) {
    if (failed_) failed_->scope.clear();  // hook scopes live until the next attempt starts
    stage_ = stage::attempting;
    if (past_inherited_deadline(elapsed)) [[unlikely]]  // a wait that ended late: start nothing more
      return give_up(give_up_reason::deadline, failed_ ? failed_->last : call_state::deadline_failure());
    for (;;) {
      const admission admitted = state_.admit();
      if (admitted == admission::send) [[likely]]
        return sent_attempt(elapsed);
      if (admitted == admission::refused)  // the breaker is open: fail now, send nothing more
        return give_up(give_up_reason::circuit_open, call_state::circuit_open_failure());
      if (admitted == admission::queued) return queued(elapsed);
      if (const std::optional<action> after = held_back(elapsed)) return *after;
    }
  }

  // The attempt goes out (the protections let it).
  action sent_attempt(duration elapsed) {
    saturating_increment(sent_);
    attempt_started_ = elapsed.count();
    state_.attempt_started();
    if (!state_.active()) return action::attempt(std::nullopt);
    if (inherits_deadline()) [[unlikely]] {
      // An inherited deadline cuts every attempt, with or without an attempt_timeout (which
      // keeps its own rule); the policy's timeout does not cut attempts, as without one.
      const double left = std::max(0.0, double(deadline_left_) - origin_ - now(elapsed).count());
      const std::optional<duration> own =
          policy_->attempt_timeout() ? failed().waits.attempt_limit(now(elapsed)) : std::nullopt;
      return action::attempt(duration(own ? std::min(own->count(), left) : left));
    }
    if (!policy_->attempt_timeout()) return action::attempt(std::nullopt);
    return action::attempt(failed().waits.attempt_limit(now(elapsed)));
  }

  // The concurrency limit is full: the attempt waits for a place, at most until the deadline
  // (fail_fast: not at all). It is the same attempt, waiting: nothing is counted.
  [[gnu::noinline]] action queued(duration elapsed) {
    const failure what = failed_ ? failed_->last : unsent_failure();
    if (policy_->fail_fast()) return give_up(give_up_reason::throttled, what);
    std::optional<duration> at_most;
    if (const double deadline = deadline_in_call_time(); !std::isinf(deadline)) {
      // The deadline of the call (the policy's timeout from its start, or the inherited one;
      // none in testing mode, which reads no clock).
      const double left = deadline - now(elapsed).count();
      if (!(left > 0)) return give_up(give_up_reason::deadline, what);
      at_most = duration(left);
    }
    stage_ = stage::queued;
    return action::queue(at_most);
  }

  // A held-back attempt: it uses up one of `attempts` only when the call has no deadline (the
  // deadline bounds the pacing otherwise); its wait does not make the backoff grow.
  [[gnu::noinline]] std::optional<action> held_back(duration elapsed) {
    saturating_increment(held_);
    if (policy_->fail_fast()) return give_up(give_up_reason::throttled, call_state::throttled_failure());
    failure_state& f = failed();
    const auto limit = f.waits.max_attempts();
    const bool counts = !f.waits.deadline().has_value();
    if (limit && (counts ? attempts() : sent_) >= *limit)
      return give_up(give_up_reason::throttled, call_state::throttled_failure());
    const double wait = f.waits.testing() ? 0.0 : f.waits.draw_wait(saturating_sum(f.waits.failures(), 1)).count();
    // Pacing needs a wait: a held-back attempt with none (testing mode, zero waits) ends the call.
    if (!(wait > 0) || past_deadline(f, elapsed, wait))
      return give_up(give_up_reason::throttled, call_state::throttled_failure());
    return then_wait(wait, call_state::throttled_failure(), false);
  }

  bool past_deadline(const failure_state& f, duration elapsed, double wait) const noexcept {
    const auto deadline = f.waits.deadline();
    return deadline && now(elapsed).count() + wait >= deadline->count();
  }

  // After a failure the dependency produced (or a retried result): the budget, then the
  // backoff's verdict (attempts, deadline, the wait), then the wait or the next attempt.
  action after_failure(decision verdict, const failure& what, duration elapsed) {
    failure_state& f = failed();
    const bool allowed = state_.budget_allows_retry();  // every retryable failure costs a token, the last too
    // Without a deadline, held-back attempts use up `attempts` too (so that the call ends).
    const unsigned held_counting = f.waits.deadline() ? 0 : held_;
    const backoff::step next = f.waits.on_failure(verdict, now(elapsed), held_counting);
    if (!next.retry && next.reason != give_up_reason::deadline) return give_up(next.reason, what);
    if (!allowed) return give_up(give_up_reason::budget_exhausted, what);
    if (!next.retry) return give_up(next.reason, what);
    // The breaker opened (this failure may have opened it): no retry could be sent.
    if (state_.refused_now()) return give_up(give_up_reason::circuit_open, what);
    f.last = what;  // what a give-up reports if no later attempt is sent
    if (state_.reports_retries()) {
      retry_details d{state_.name(), next.retry_num, next.wait, duration(waited_), what};
      d.call_id = state_.id();
      state_.report_retry(d, f.scope);
    }
    if (const auto wait = then_wait(next.wait.count(), what, true)) return *wait;
    return next_attempt(elapsed);
  }

  // Schedules a wait of `wait` seconds after `what`; nullopt: attempt again at once (a zero
  // wait, or virtual time, where the wait is skipped and the call's time moves by it).
  std::optional<action> then_wait(double wait, const failure& what, bool /*sent*/) {
    waited_ += wait;
    if (!(wait > 0)) return std::nullopt;
    if (state_.virtual_time()) {
      skip_virtual_wait(duration(wait));
      return std::nullopt;
    }
    failed_->last = what;
    stage_ = stage::waiting;
    return action::wait_for(duration(wait));
  }

  // Gives up with `reason`; delivers the last result the dependency produced (`last_`), or
  // `throttled` / `circuit_open` when nothing was ever sent, unless the driver says otherwise
  // (`forced`).
  action give_up(give_up_reason reason, const failure& what, std::optional<give_up_result> forced = std::nullopt) {
    // Nothing sent: the breaker refused; the inherited deadline passed with nothing held back
    // (before the first attempt, or while it waited for a place); else the throttle held back.
    const give_up_result unsent = reason == give_up_reason::circuit_open ? give_up_result::circuit_open
                                  : reason == give_up_reason::deadline && inherited_deadline_binds() && held_ == 0
                                      ? give_up_result::deadline_exceeded
                                      : give_up_result::throttled;
    const give_up_result result = forced ? *forced : sent_ > 0 ? last_ : unsent;
    if (state_.reports_give_ups()) {
      const failure reported = sent_ == 0 ? what : last_failure(what);
      give_up_details d{state_.name(), reason, sent_, duration(waited_), reported};
      d.held_back = held_;
      d.call_id = state_.id();
      state_.report_give_up(d);
    }
    finish();
    gave_up_ = static_cast<std::uint8_t>(static_cast<unsigned>(reason) + 1);
    return action::give_up(result);
  }

  // A success the protections are told of, or that ends a call which had failed.
  [[gnu::noinline]] action succeeded_after_all() noexcept {
    state_.answered(answer::accepted, true);
    return finish();
  }

  // The failure a give-up reports: the last real one (a held-back attempt is not news).
  failure last_failure(const failure& what) const noexcept {
    if (call_state::never_sent(what) && failed_) return failed_->last;
    return what;
  }

  action finish() noexcept {
    failed_.reset();  // hook scopes end with the call
    stage_ = stage::done;
    return action::deliver();
  }

  // Laid out to leave no padding (a call sits in every coroutine frame): the fields after
  // failed_ take the room after its one byte of flags (no_unique_address lets them).
  const retry_policy* policy_;
  call_state state_;
  double waited_ = 0;  // every wait scheduled (sent or held back)
  double origin_ = 0;  // when the schedule last started, in elapsed seconds
  double attempt_started_ = 0;
  [[no_unique_address]] failure_slot failed_;
  give_up_result last_ = give_up_result::last_attempt;  // what the last sent attempt left
  std::uint8_t gave_up_ = 0;  // why the call gave up, plus one; 0: it did not (one byte, not an optional's two)
  stage stage_ = stage::idle;
  // The inherited deadline, in elapsed seconds since the call started; +inf: none. A float:
  // microseconds at a minute.
  float deadline_left_ = std::numeric_limits<float>::infinity();
  unsigned sent_ = 0;
  unsigned held_ = 0;
};

// The layout above leaves no padding on the Itanium ABI (g++, clang; 64-bit): a field added or
// moved shows here, not only in the frame sizes the benchmarks print.
#if !defined(_MSC_VER)
static_assert(sizeof(void*) != 8 || sizeof(retry_protocol) <= 208, "retry_protocol grew: see its layout");
#endif

/// The machine of one call, made when the call needs it: at once, or, for a call whose first
/// attempt is plain (sends_plain_first_attempt, or may_pass_closed_breaker and the breaker is
/// closed when the call starts; the driver says whether its op allows it), when that attempt
/// fails. Until then it keeps only what making it takes: the policy, the switches the call
/// started with, its place in the code and the breaker's ticket (in the machine's room: a call
/// sits in every coroutine frame).
class deferred_protocol {
 public:
  [[gnu::always_inline]] deferred_protocol(const retry_policy& policy, const caller& where, bool op_allows) noexcept {
    const global_config switches = load_global_config();
    if (op_allows && retry_protocol::sends_plain_first_attempt(policy, switches)) {
      ::new (static_cast<void*>(&pending_)) pending{&policy, switches, where, 0};
    } else if (op_allows && retry_protocol::may_pass_closed_breaker(policy, switches)) {
      // The breaker is asked in start(), when the attempt is due (a deferred initiation may
      // start much later than it was made).
      ::new (static_cast<void*>(&pending_)) pending{&policy, switches, where, 0};
      kind_ = kind::past_breaker;
    } else {
      ::new (static_cast<void*>(&call_)) retry_protocol(policy, call_state(policy.call_spec(), switches, &where));
      kind_ = kind::made;
    }
  }
  deferred_protocol(retry_policy&&, const caller&, bool) = delete;
  deferred_protocol(const deferred_protocol&) = delete;
  deferred_protocol& operator=(const deferred_protocol&) = delete;
  ~deferred_protocol() {
    if (kind_ == kind::made) call_.~retry_protocol();
  }

  /// Whether the machine is made (a plain call's is not until its first attempt fails).
  explicit operator bool() const noexcept { return kind_ == kind::made; }
  retry_protocol& operator*() noexcept {
    assert(kind_ == kind::made);
    return call_;
  }
  retry_protocol* operator->() noexcept { return &**this; }

  /// The switches the call started with.
  global_config switches() const noexcept { return kind_ == kind::made ? call_.state().switches() : pending_.switches; }
  /// The first step: the machine's (`clock`, the call's stopwatch), or a plain call's first attempt.
  template <class Stopwatch>
  [[gnu::always_inline]] action start(const Stopwatch& clock) {
    if (kind_ == kind::plain) [[likely]]
      return action::attempt(std::nullopt);
    return start_with_machine_or_breaker(clock);
  }
  /// A plain call's first attempt succeeded (it is delivered): a closed breaker that let it
  /// through hears it.
  [[gnu::always_inline]] void plain_attempt_succeeded() const noexcept {
    assert(kind_ != kind::made);
    if (kind_ == kind::past_breaker) [[unlikely]]
      breaker_heard_success();
  }
  /// A plain call's first attempt failed: the machine is made as if it had sent it (the
  /// throttle in effect is looked up now, as retry's does; a breaker's answer goes with the
  /// ticket the attempt was let through with).
  retry_protocol& make_after_first_attempt() noexcept {
    assert(kind_ != kind::made);
    const retry_policy& policy = *pending_.policy;
    call_state state = pending_state();
    if (kind_ == kind::past_breaker) state.first_attempt_admitted(pending_.ticket);
    ::new (static_cast<void*>(&call_)) retry_protocol(policy, state, retry_protocol::first_attempt_sent);
    kind_ = kind::made;
    return call_;
  }

 private:
  // start() for a call whose machine is made, or whose breaker is asked now: out of line, so
  // that the plain call's start stays one test.
  template <class Stopwatch>
  [[gnu::noinline]] action start_with_machine_or_breaker(const Stopwatch& clock) {
    if (kind_ == kind::past_breaker) {
      if (call_state::closed_breaker_admits(pending_.policy->call_spec(), pending_.switches, pending_.ticket))
        return action::attempt(std::nullopt);
      // The breaker is not closed: the machine, made now, asks it (and decides what follows).
      const retry_policy& policy = *pending_.policy;
      const call_state state = pending_state();
      ::new (static_cast<void*>(&call_)) retry_protocol(policy, state);
      kind_ = kind::made;
    }
    return call_.start(duration(0), [&clock] { return clock.origin(); });
  }
  // The call state of a call whose machine is not made yet, as it would have been made at the
  // start. Read before the machine is made: the machine takes the pending data's room.
  call_state pending_state() const noexcept {
    return call_state(pending_.policy->call_spec(), pending_.switches, &pending_.where);
  }
  [[gnu::noinline]] void breaker_heard_success() const noexcept {
    call_state::closed_breaker_heard_success(pending_.policy->call_spec(), pending_.ticket);
  }

  struct pending {
    const retry_policy* policy;
    global_config switches;
    caller where;
    std::uint32_t ticket;  // the closed breaker's generation (past_breaker, once started)
  };
  enum class kind : unsigned char {
    plain,         // the first attempt goes at once, nobody to tell of its success
    past_breaker,  // the same once the policy's breaker, asked in start(), let it through
    made,          // the machine is made
  };
  union {
    pending pending_;
    retry_protocol call_;
  };
  kind kind_ = kind::plain;
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
