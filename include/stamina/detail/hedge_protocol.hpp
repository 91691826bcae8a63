#ifndef STAMINA_DETAIL_HEDGE_PROTOCOL_HPP
#define STAMINA_DETAIL_HEDGE_PROTOCOL_HPP

// The hedging strategy (gRPC A6 hedging), written once: a sans-I/O state machine over the call's
// state (call_state.hpp), like retry_protocol. The driver (hedge_op.hpp) reports what happened —
// an attempt succeeded or failed, the hedging delay or an attempt's time limit passed, the caller
// cancelled — and performs the step the machine returns. The machine reads no clock, starts
// nothing and waits for nothing.
//
// Owned here: when a hedge starts (after the delay; at once after a failure `on` accepts, or a
// result `on_result` retries), the attempt limit, the deadline (no attempt starts after it), each
// attempt's time limit, the budget, the adaptive delay's samples, which attempt's result the call
// delivers, that the call completes only once every attempt it started has returned, the
// switches (inactive: one attempt; testing: forced attempts, no delay, no deadline; virtual time:
// delays skipped on the virtual clock), the layers rules (a deadline inherited from the
// caller cuts the attempts and ends the call; an attempt within which a stamina call was made is
// not hedged again on its failure), each attempt's context, and the counters, hook events and
// give-up report.

#include <stamina/attempt_context.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/detail/describe.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/failure.hpp>
#include <stamina/global.hpp>
#include <stamina/hedging_policy.hpp>
#include <stamina/instrumentation.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cmath>
#include <limits>
#include <optional>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// What the driver does after an event, in this order. Several parts may be set at once.
struct hedge_step {
  bool keep_result = false;           // store the reporting attempt's arguments: the call's result so far
  unsigned cancel_mask = 0;           // cancel these attempts (bit n-1: attempt n)
  bool disarm = false;                // cancel the delay and the attempts' time limit: nothing more to wait for
  bool start_attempt = false;         // start the next attempt now (numbered `started()`)
  std::optional<duration> arm_delay;  // (re)arm the delay: report delay_elapsed after this
  std::optional<duration> arm_limit;  // (re)arm the attempts' time limit: report limit_reached after this
  bool queue = false;                 // wait for a place under the limit (at most `queue_at_most`, when set),
                                      // then report place_wait_finished; attempt `started() + 1` takes it
  std::optional<duration> queue_at_most;
  bool cancel_queue = false;  // cancel the wait for a place
  bool complete = false;      // every attempt has returned: complete the call as `outcome()` says
};

// What the call completes with.
enum class hedge_outcome : unsigned char {
  kept_result,  // the stored arguments (the winner, or the failure that ended the call)
  timed_out,    // stamina::error::attempt_timeout, the other values value-initialised
  refused,      // stamina::error::circuit_open: the breaker let no attempt through
  expired,      // stamina::error::deadline_exceeded: the inherited deadline had passed before any attempt
  throttled,    // stamina::error::throttled: no attempt was sent (no place under the limit)
  aborted,      // operation_aborted: cancelled while waiting for a place (as a cancelled wait between retries)
};

class hedge_protocol {
 public:
  explicit hedge_protocol(const hedging_policy& policy, const caller* where = nullptr) noexcept
      : policy_(&policy), state_(policy.call_spec(), where) {}
  hedge_protocol(hedging_policy&&, const caller* = nullptr) = delete;
  hedge_protocol(const hedge_protocol&) = delete;
  hedge_protocol& operator=(const hedge_protocol&) = delete;
  // A call destroyed with attempts in flight (its io_context destroyed): they will never be
  // answered, so a breaker's probe places they hold are freed now.
  ~hedge_protocol() {
    if (completed_) return;
    for (unsigned n = 1; n <= started_; ++n)
      if ((in_flight_mask_ & bit(n)) != 0) returned(n, std::nullopt, false);
  }

  /// The call's state (switches, name, hooks).
  call_state& state() noexcept { return state_; }
  /// Whether the driver must measure elapsed time (a deadline, attempt limits, the adaptive
  /// delay's samples, or an `on_hedge` report need it).
  bool needs_clock() const noexcept { return true; }

  // The call starts: its first attempt, and the delay until the first hedge. `origin` is when
  // the call started, in seconds since its clock's epoch: where an inherited deadline falls
  // (without it, the policy's inherited deadline is not read).
  hedge_step start(duration elapsed = duration(0), std::optional<double> origin = std::nullopt) {
    const hedging_policy& p = *policy_;
    p.counters().calls.fetch_add(1, std::memory_order_relaxed);
    limit_ = p.attempts();
    if (state_.testing()) {
      const unsigned forced = std::max(1u, state_.switches().testing_attempts());
      limit_ = state_.switches().cap() ? std::min(limit_, forced) : forced;
    } else if (p.timeout() && state_.active()) {
      deadline_ = p.timeout()->count();
    }
    if (!state_.active()) limit_ = 1;  // Python stamina's switch: one attempt
    limit_ = std::min<unsigned>(limit_, hedging_policy::max_attempts_limit);
    // As for retries, testing mode and the inactive switch ignore an inherited deadline.
    if (const auto at = p.deadline_since_epoch(); at && origin && state_.active() && !state_.testing()) [[unlikely]] {
      inherited_ = *at - *origin;
      deadline_ = std::min(deadline_, inherited_);
    }
    hedge_step step;
    if (!before_deadline(elapsed)) [[unlikely]] {  // the caller's time is up: send nothing
      reason_ = give_up_reason::deadline;
      outcome_ = hedge_outcome::expired;
      last_ = call_state::deadline_failure();
      finish(step, elapsed);
      return step;
    }
    if (!state_.breaker_allows(tickets_[0])) {  // open: the call sends nothing (nor earns hedges)
      refused_ = true;
      reason_ = give_up_reason::circuit_open;
      outcome_ = hedge_outcome::refused;
      last_ = call_state::circuit_open_failure();
      finish(step, elapsed);
      return step;
    }
    if (!placed(1)) {  // the limit is full: the first attempt waits for a place
      queue(step, elapsed);
      return step;
    }
    launch_first(step, elapsed);
    return step;
  }

  // Attempt `attempt` (from 1) succeeded with `values`; `elapsed()` is the time since the call
  // started (read only when needed). A result that `on_result` retries is handled like a failure
  // `on` accepts: the next hedge starts at once, and it is delivered if nothing better comes.
  template <class Elapsed, class... V>
  hedge_step attempt_succeeded(unsigned attempt, Elapsed&& elapsed, const V&... values) {
    if (state_.judges_results()) {
      const decision verdict = state_.judge(values...);
      const bool pushed_back = verdict.what() == decision::kind::pushback;
      if (verdict.should_retry() || pushed_back)
        return failed_after(attempt, call_state::retried_result_failure(values...), elapsed(),
                            verdict.overload() ? answer::overloaded : answer::failed, pushed_back);
    }
    returned(attempt, answer::accepted, true);
    hedge_step step = attempt_returned(attempt);
    if (decided_) return step;
    decided_ = true;
    step.keep_result = true;
    outcome_ = hedge_outcome::kept_result;
    reason_.reset();
    const hedging_policy& p = *policy_;
    const bool reports = p.on_hedge() != nullptr || state_.reports_hedges();
    if (latency_window* w = p.window(); w != nullptr || attempt > 1 || reports) {
      const duration now = elapsed();
      if (w != nullptr) w->record(now);
      if (attempt > 1) {
        p.counters().won.fetch_add(1, std::memory_order_relaxed);
        notify(hedge_event_kind::won, attempt, now);
      }
      end_in_flight(step, now);
    } else {
      end_in_flight(step, duration(0));
    }
    return step;
  }

  // Attempt `attempt` failed with `f` (a timed-out attempt fails with whatever its cancellation
  // produced; the machine knows it was cut). As on the retry path, "do not retry" from the layer
  // below (a pushback verdict, or a failure after a call made within the attempt) starts no more
  // hedges; the attempts in flight go on, and the first success still wins (gRPC A6).
  hedge_step attempt_failed(unsigned attempt, const failure& f, duration elapsed) {
    if ((timed_out_mask_ & bit(attempt)) != 0)
      return failed_after(attempt, call_state::timed_out_failure(), elapsed, answer::overloaded, false);
    const decision verdict = state_.classify(f);
    const bool pushed_back = verdict.what() == decision::kind::pushback;
    if (!verdict.should_retry() && !pushed_back)
      return failed_after(attempt, f, elapsed, answer::accepted, false, /*ends_call=*/true);
    return failed_after(attempt, f, elapsed, verdict.overload() ? answer::overloaded : answer::failed, pushed_back);
  }

  // The context of attempt `attempt`, which the last step started, in `scope` (owned by the
  // driver, alive until the attempt returned); `origin` as for start(). A call made within it
  // through `within` is seen here when the attempt's outcome is reported.
  const attempt_context& context(unsigned attempt, attempt_scope& scope, duration elapsed, double origin) noexcept {
    return context_access::fill(scope.context, attempt, state_.id(), state_.name(), &nested_[attempt - 1],
                                origin + elapsed.count(), deadline_ - now(elapsed));
  }

  // The delay armed by the last step expired.
  hedge_step delay_elapsed(duration elapsed) {
    hedge_step step;
    if (decided_ || queued_ || !may_hedge() || started_ >= limit_ || !before_deadline(elapsed)) return step;
    const hedge_start started = start_hedge(step, elapsed);
    // Started, or no place was free: the next one is due a full delay later (a skipped hedge
    // is not due again at once: with no real delay, it waits for the next failure).
    if (started == hedge_start::started || (started == hedge_start::limit_full && delay_is_real()))
      schedule_next(step, elapsed);
    return step;
  }

  // The wait for a place under the limit (the queue step) ended: `granted`, attempt
  // `started() + 1` holds one now (`ticket`); `failed`, the wait completed with an error (it
  // was cancelled); neither: the call's deadline passed.
  hedge_step place_wait_finished(duration elapsed, bool granted, bool failed, std::uint32_t ticket) {
    assert(queued_);
    queued_ = false;
    hedge_step step;
    const unsigned n = started_ + 1;
    const bool interrupted = cancelled_ || (failed && !granted);
    if (granted && (interrupted || !before_deadline(elapsed))) {  // cancelled meanwhile, or granted too late
      state_.place_unused(ticket);
      granted = false;
    }
    if (interrupted) {  // operation_aborted, as a cancelled wait between retries
      cancelled_ = true;
      unsent(step, give_up_reason::cancelled, hedge_outcome::aborted, elapsed);
      outcome_ = hedge_outcome::aborted;
      return step;
    }
    if (!granted) {
      waited_too_long(step, elapsed);
      return step;
    }
    // The breaker is asked again: it may have opened while the attempt waited.
    if (!state_.breaker_allows(tickets_[n - 1])) {
      state_.place_unused(ticket);
      refused_ = true;
      if (n > 1) notify(hedge_event_kind::breaker_open, n, elapsed);
      unsent(step, give_up_reason::circuit_open, hedge_outcome::refused, elapsed);
      return step;
    }
    keep_place(n, state_.granted_place(ticket));
    if (n == 1) {
      launch_first(step, elapsed);
      return step;
    }
    if (!send_hedge(step, elapsed)) {  // the budget: none left for it
      unsent(step, give_up_reason::budget_exhausted, hedge_outcome::kept_result, elapsed);
      return step;
    }
    schedule_next(step, elapsed);
    return step;
  }

  // The attempts' time limit armed by the last step passed: attempts whose limit is over are
  // cancelled (their results will count as timed out).
  hedge_step limit_reached(duration elapsed) {
    hedge_step step;
    if (decided_) return step;
    for (unsigned n = 1; n <= started_; ++n)
      if ((in_flight_mask_ & bit(n)) != 0 && (timed_out_mask_ & bit(n)) == 0 && expiry_[n - 1] <= elapsed.count()) {
        timed_out_mask_ |= bit(n);
        step.cancel_mask |= bit(n);
        policy_->counters().cancelled.fetch_add(1, std::memory_order_relaxed);
        notify(hedge_event_kind::cancelled, n, elapsed);
      }
    arm_limit(step, elapsed);
    return step;
  }

  // The caller cancelled the whole call: no more hedges; every attempt in flight is
  // cancelled, and the first of them to succeed anyway still wins (else the last failure).
  hedge_step cancelled(duration elapsed) {
    hedge_step step;
    if (decided_ || cancelled_) return step;
    cancelled_ = true;
    step.disarm = true;
    step.cancel_queue = queued_;  // the call ends when the wait does
    cancel_all(step, elapsed);
    return step;
  }

  hedge_outcome outcome() const noexcept { return outcome_; }
  // Why the call gave up, once it completes without a success; nullopt otherwise.
  std::optional<give_up_reason> gave_up() const noexcept { return reason_; }
  // Attempts started so far (the number of the last one).
  unsigned started() const noexcept { return started_; }
  unsigned in_flight() const noexcept { return in_flight_; }
  // Bit n-1 is set while attempt n is in flight.
  unsigned in_flight_mask() const noexcept { return in_flight_mask_; }
  bool decided() const noexcept { return decided_; }
  bool completed() const noexcept { return completed_; }
  /// The call waits for a place under the limit (the last queue step).
  bool queued() const noexcept { return queued_; }

 private:
  enum class hedge_start : unsigned char {
    started,     // sent
    denied,      // the breaker or the budget said no: no more hedges until the next failure
    limit_full,  // no place under the limit while other attempts are in flight: due again after a delay
    queued,      // no attempt in flight and no place: the call waits for one (or gave up: fail_fast, deadline)
  };

  // A failed attempt (or a retried result, or a timed-out attempt): `said` is what it says of
  // the dependency, for the breaker. `ends_call`: a failure `on` rejects, which ends the call
  // with it (gRPC: a fatal status). Otherwise the next hedge starts at once, unless the layer
  // below retried already (`pushed_back`: the classifier's pushback verdict, or a stamina call
  // made within the attempt): then no more hedges start and the attempts in flight go on. An
  // attempt cut at the inherited deadline says nothing (no verdict, reason `deadline`), whatever
  // came back.
  hedge_step failed_after(unsigned attempt, const failure& f, duration elapsed, answer said, bool pushed_back,
                          bool ends_call = false) {
    const bool cut = (timed_out_mask_ & bit(attempt)) != 0;
    const bool no_verdict = cut && (cut_by_caller_mask_ & bit(attempt)) != 0;
    const bool stops_hedging = !ends_call && (pushed_back || nested(attempt)) && !no_verdict;
    // An attempt we cancelled (a loser, or any attempt once the caller cancelled) ended without
    // an answer; one cut by its time limit before that is a failure (as on the retry path).
    if (cancelled_ || (decided_ && !cut) || no_verdict)
      returned(attempt, std::nullopt, false);
    else
      returned(attempt, said, false);
    hedge_step step = attempt_returned(attempt);
    if (decided_) return step;
    step.keep_result = true;  // the last failure, delivered if nothing better comes
    outcome_ = cut ? hedge_outcome::timed_out : hedge_outcome::kept_result;
    last_ = f;
    expired_ = expired_ || no_verdict;
    if (!cancelled_ && ends_call) {
      reason_ = give_up_reason::not_retryable;
      decided_ = true;
      end_in_flight(step, elapsed);
      return step;
    }
    pushed_back_ = pushed_back_ || stops_hedging;
    if (may_hedge() && started_ < limit_ && before_deadline(elapsed)) {
      switch (start_hedge(step, elapsed)) {
        case hedge_start::started:
          schedule_next(step, elapsed);  // the next hedge after this one is a full delay away
          return step;
        case hedge_start::limit_full:  // as after the delay (attempts are in flight)
          if (delay_is_real()) schedule_next(step, elapsed);
          return step;
        case hedge_start::queued:
          return step;
        case hedge_start::denied:
          break;
      }
    }
    if (in_flight_ == 0) {
      reason_ = why_every_attempt_failed(elapsed);  // and the last failure is delivered
      finish(step, elapsed);
    }
    return step;
  }

  give_up_reason why_every_attempt_failed(duration elapsed) const noexcept {
    if (cancelled_) return give_up_reason::cancelled;
    if (expired_) return give_up_reason::deadline;  // the caller's time ran out
    if (pushed_back_) return give_up_reason::pushback;
    if (refused_) return give_up_reason::circuit_open;
    if (denied_) return give_up_reason::budget_exhausted;
    if (!before_deadline(elapsed) && started_ < limit_) return give_up_reason::deadline;
    return give_up_reason::attempts_exhausted;
  }

  hedge_step attempt_returned(unsigned attempt) noexcept {
    assert(in_flight_ > 0 && (in_flight_mask_ & bit(attempt)) != 0);
    --in_flight_;
    in_flight_mask_ &= ~bit(attempt);
    hedge_step step;
    if (decided_ && in_flight_ == 0) finish(step, duration(0));
    return step;
  }

  bool before_deadline(duration elapsed) const noexcept { return now(elapsed) < deadline_; }

  // The call's own time: in virtual time, the delays it skipped.
  double now(duration elapsed) const noexcept { return state_.virtual_time() ? skipped_ : elapsed.count(); }

  // Starts the next attempt if the breaker, the limit and the budget allow. With no place under
  // the limit, a hedge beside attempts in flight is skipped (it would only add load to a
  // dependency that is queueing); with none in flight, the call cannot go on without it, so it
  // waits for a place.
  hedge_start start_hedge(hedge_step& step, duration elapsed) {
    const unsigned n = started_ + 1;
    // The limit first: a hedge skipped for want of a place takes no probe from the breaker.
    const bool has_place = placed(n);
    if (!has_place && in_flight_ > 0) {
      if (passed_over_ == 0) notify(hedge_event_kind::limit_full, n, elapsed);  // once per hedge, not per retry of it
      passed_over_ = std::min(passed_over_ + 1, max_doublings);
      return hedge_start::limit_full;
    }
    refused_ = !state_.breaker_allows(tickets_[n - 1]);  // the latest hedge due: refused, or not
    if (refused_) {
      give_back_unused(n);
      notify(hedge_event_kind::breaker_open, n, elapsed);
      return hedge_start::denied;
    }
    if (!has_place) {  // nothing in flight: the call cannot go on without it
      if (hedge_budget* b = policy_->budget().get(); b != nullptr && b->tokens() < 1) {
        deny(n, elapsed);  // it would be refused once granted: not worth a place in the queue
        return hedge_start::denied;
      }
      queue(step, elapsed);
      return hedge_start::queued;
    }
    return send_hedge(step, elapsed) ? hedge_start::started : hedge_start::denied;
  }

  // The budget refuses hedge `n`: a probe the breaker let through and its place are given back.
  void deny(unsigned n, duration elapsed) {
    state_.breaker_abandoned(tickets_[n - 1]);
    give_back_unused(n);
    policy_->counters().denied.fetch_add(1, std::memory_order_relaxed);
    denied_ = true;
    notify(hedge_event_kind::budget_denied, n, elapsed);
  }

  // Attempt `n`, not sent after all, gives back the place it took (if it took one).
  void give_back_unused(unsigned n) noexcept {
    if ((placed_mask_ & bit(n)) == 0) return;
    placed_mask_ &= ~bit(n);
    state_.place_unused(place_ticket_);
  }

  // Sends attempt `started_ + 1` (after the first: a hedge), which the breaker and the limit let
  // through, if the budget allows.
  bool send_hedge(hedge_step& step, duration elapsed) {
    const hedging_policy& p = *policy_;
    const unsigned n = started_ + 1;
    if (hedge_budget* b = p.budget().get(); b != nullptr && !b->try_spend()) {
      deny(n, elapsed);
      return false;
    }
    passed_over_ = 0;
    launch(step, elapsed);
    p.counters().hedges.fetch_add(1, std::memory_order_relaxed);
    notify(hedge_event_kind::started, started_, elapsed);
    return true;
  }

  // Sends the first attempt (it has its place, if a limit applies): the call earns its share of
  // the budget, and the first hedge is a delay away.
  void launch_first(hedge_step& step, duration elapsed) {
    if (limit_ > 1)
      if (hedge_budget* b = policy_->budget().get()) b->deposit();
    launch(step, elapsed);
    schedule_next(step, elapsed);
  }

  // Whether the delay until a hedge takes real time (not testing mode, virtual time or a zero
  // delay): only then is a hedge skipped for want of a place due again after it.
  bool delay_is_real() const noexcept {
    return !state_.testing() && !state_.virtual_time() && policy_->current_delay().count() > 0;
  }

  // Attempt `n` holds `place`.
  void keep_place(unsigned n, const held_place& place) noexcept {
    if (placed_mask_ == 0) place_base_ = place.taken_at;  // no place held: a new base
    // Places carry the limit's generation, which changes only in a forked child, where the
    // places taken before are forgotten by the limit: they are not given back.
    if (place.ticket != place_ticket_) placed_mask_ = 0;
    place_ticket_ = place.ticket;
    place_offsets_[n - 1] = static_cast<float>(place.taken_at - place_base_);
    placed_mask_ |= bit(n);
  }

  // Whether attempt `n` may be sent as far as the concurrency limit goes: none applies, or it
  // took a free place.
  bool placed(unsigned n) noexcept {
    if (state_.limit() == nullptr) return true;
    held_place taken;
    if (!state_.take_place(taken)) return false;
    keep_place(n, taken);
    return true;
  }

  // No place under the limit, and no attempt in flight: attempt `started_ + 1` waits for one, at
  // most until the call's deadline (`fail_fast`: not at all; none in testing mode, which reads no
  // clock). Waiting is not an attempt: nothing is counted.
  void queue(hedge_step& step, duration elapsed) {
    assert(!queued_ && in_flight_ == 0);
    state_.breaker_abandoned(tickets_[started_]);  // a probe it let through is not sent; asked again when granted
    if (policy_->fail_fast()) {
      unsent(step, give_up_reason::throttled, hedge_outcome::throttled, elapsed);
      return;
    }
    if (!std::isinf(deadline_)) {
      const double left = deadline_ - now(elapsed);
      if (!(left > 0)) {
        waited_too_long(step, elapsed);
        return;
      }
      step.queue_at_most = duration(left);
    }
    queued_ = true;
    step.queue = true;
    step.disarm = true;  // nothing in flight: no delay or time limit to wait for
  }

  // The call's deadline passed before attempt `started_ + 1` had a place.
  void waited_too_long(hedge_step& step, duration elapsed) {
    // The caller's deadline (the earlier of the two): deadline_exceeded if nothing was sent.
    const bool inherited = !std::isinf(inherited_) && inherited_ <= deadline_;
    unsent(step, give_up_reason::deadline, inherited ? hedge_outcome::expired : hedge_outcome::throttled, elapsed);
  }

  // The call ends without sending attempt `started_ + 1`, with `reason`: if no attempt was
  // sent, with `nothing_sent` (the protections' error); else with the last failure kept.
  void unsent(hedge_step& step, give_up_reason reason, hedge_outcome nothing_sent, duration elapsed) {
    assert(in_flight_ == 0);
    if (started_ == 0) {
      outcome_ = nothing_sent;
      last_ = nothing_sent == hedge_outcome::aborted ? failure(make_error_code(stamina::net::error::operation_aborted))
              : nothing_sent == hedge_outcome::refused ? call_state::circuit_open_failure()
              : nothing_sent == hedge_outcome::expired ? call_state::deadline_failure()
                                                       : call_state::throttled_failure();
    }
    reason_ = reason;
    finish(step, elapsed);
  }

  // Attempt `attempt` returned: the breaker and the limit hear what it says (nullopt: it ended
  // without an answer).
  void returned(unsigned attempt, std::optional<answer> said, bool success) noexcept {
    const bool held = (placed_mask_ & bit(attempt)) != 0;
    placed_mask_ &= ~bit(attempt);
    const held_place place{place_base_ + place_offsets_[attempt - 1], place_ticket_};
    state_.attempt_returned(said, success, tickets_[attempt - 1], held ? &place : nullptr);
  }

  // Starts attempt `started_ + 1`, with its time limit.
  void launch(hedge_step& step, duration elapsed) {
    ++started_;
    ++in_flight_;
    in_flight_mask_ |= bit(started_);
    step.start_attempt = true;
    double limit = std::numeric_limits<double>::infinity();
    if (const auto per_attempt = policy_->attempt_timeout(); per_attempt && state_.active())
      limit = std::min(per_attempt->count(), std::max(0.0, deadline_ - now(elapsed)));
    // An inherited deadline cuts every attempt, with or without an attempt_timeout.
    if (!std::isinf(inherited_))
      if (const double caller_left = std::max(0.0, inherited_ - now(elapsed)); caller_left <= limit) {
        limit = caller_left;
        cut_by_caller_mask_ |= bit(started_);
      }
    if (!std::isinf(limit)) {
      expiry_[started_ - 1] = elapsed.count() + limit;
      arm_limit(step, elapsed);
    }
  }

  // Whether another hedge may start: not after the caller cancelled, the layer below pushed
  // back, or the caller's deadline cut an attempt (final, whatever the call's clock says: in
  // virtual time the call's own time lags the real cut).
  bool may_hedge() const noexcept { return !cancelled_ && !pushed_back_ && !expired_; }

  // Whether a stamina call was made within attempt `attempt` (`within` on its context).
  bool nested(unsigned attempt) noexcept {
    return std::atomic_ref<bool>(nested_[attempt - 1]).load(std::memory_order_relaxed);
  }

  // Arms the attempts' time limit at the earliest expiry of an attempt in flight not yet cut.
  void arm_limit(hedge_step& step, duration elapsed) const noexcept {
    double earliest = std::numeric_limits<double>::infinity();
    for (unsigned n = 1; n <= started_; ++n)
      if ((in_flight_mask_ & bit(n)) != 0 && (timed_out_mask_ & bit(n)) == 0)
        earliest = std::min(earliest, expiry_[n - 1]);
    if (!std::isinf(earliest)) step.arm_limit = duration(std::max(0.0, earliest - elapsed.count()));
  }

  // The delay until the next hedge, if one may come. In testing mode there is none; in
  // virtual time it is skipped on the virtual clock, and the hedge is due at once.
  void schedule_next(hedge_step& step, duration elapsed) {
    if (!may_hedge() || started_ >= limit_ || !before_deadline(elapsed)) return;
    if (state_.testing()) {
      step.arm_delay = duration(0);
      return;
    }
    // A hedge skipped for want of a place is due again after the delay, doubled per skip (up to
    // 1024 times): a limit that stays full is asked less and less often.
    const duration delay = policy_->current_delay() * double(1U << passed_over_);
    if (now(elapsed) + delay.count() >= deadline_) return;  // no hedge may start after the deadline
    if (state_.virtual_time()) {
      skipped_ += delay.count();
      skip_virtual_wait(delay);
      step.arm_delay = duration(0);
      return;
    }
    step.arm_delay = delay;
  }

  // The call is decided: cancel what is still running, or complete now.
  void end_in_flight(hedge_step& step, duration elapsed) {
    step.disarm = true;
    if (in_flight_ == 0)
      finish(step, elapsed);
    else
      cancel_all(step, elapsed);
  }

  void cancel_all(hedge_step& step, duration elapsed) {
    const unsigned running = in_flight_mask_ & ~timed_out_mask_;  // the ones cut already were cancelled
    if (running == 0) return;
    step.cancel_mask |= running;
    for (unsigned n = 1; n <= started_; ++n)
      if ((running & bit(n)) != 0) {
        policy_->counters().cancelled.fetch_add(1, std::memory_order_relaxed);
        notify(hedge_event_kind::cancelled, n, elapsed);
      }
  }

  void finish(hedge_step& step, duration elapsed) noexcept {
    assert(!completed_);
    decided_ = completed_ = true;
    step.disarm = true;
    step.complete = true;
    if (reason_ && state_.reports_give_ups()) {
      give_up_details d{state_.name(), *reason_, started_, duration(state_.virtual_time() ? skipped_ : 0.0), last_};
      d.call_id = state_.id();
      (void)elapsed;
      state_.report_give_up(d);
    }
  }

  void notify(hedge_event_kind kind, unsigned attempt, duration elapsed) const noexcept {
    const auto* hook = policy_->on_hedge();
    const bool global = state_.reports_hedges();
    if (hook == nullptr && !global) return;
    try {
      const hedge_event event{state_.name(), kind, attempt, elapsed};
      if (global) state_.report_hedge(event);
      if (hook != nullptr) {
        try {
          (*hook)(event);
        } catch (...) {
          report_hedge_hook_failure();
        }
      }
    } catch (...) {
      report_hedge_hook_failure();  // out of memory making the event
    }
  }
  static unsigned bit(unsigned attempt) noexcept { return 1U << (attempt - 1); }
  static constexpr unsigned max_doublings = 10;  // a skipped hedge's delay grows to 1024 times at most

  const hedging_policy* policy_;
  call_state state_;
  unsigned limit_ = 1;
  unsigned started_ = 0;
  unsigned in_flight_ = 0;
  unsigned in_flight_mask_ = 0;
  unsigned timed_out_mask_ = 0;      // attempts cut by their time limit
  unsigned cut_by_caller_mask_ = 0;  // attempts whose time limit is the inherited deadline
  unsigned passed_over_ = 0;         // times in a row the next hedge was skipped for want of a place (capped)
  double deadline_ = std::numeric_limits<double>::infinity();   // the timeout or the inherited one, if earlier
  double inherited_ = std::numeric_limits<double>::infinity();  // the inherited deadline alone
  double skipped_ = 0;                                          // virtual time: the delays skipped
  std::array<double, hedging_policy::max_attempts_limit> expiry_{};
  std::array<std::uint32_t, hedging_policy::max_attempts_limit> tickets_{};  // the breaker's, per attempt
  std::array<bool, hedging_policy::max_attempts_limit> nested_{};            // a call was made within attempt n (n-1)
  // Each attempt's place under the limit: its ticket, and when it was taken, as an offset from
  // a base taken while no other place was held (a float: the state of a hedged call is kept
  // under the ~1 KiB Asio recycles).
  std::array<float, hedging_policy::max_attempts_limit> place_offsets_{};
  double place_base_ = 0;           // the limit's clock
  std::uint32_t place_ticket_ = 0;  // the limit's generation the places were taken in
  unsigned placed_mask_ = 0;        // attempts holding a place
  failure last_{stamina::error_code()};
  std::optional<give_up_reason> reason_;
  bool decided_ = false;      // the call's result is fixed
  bool cancelled_ = false;    // the caller cancelled: no more hedges
  bool completed_ = false;    // the complete step was returned
  bool denied_ = false;       // the budget refused a hedge
  bool refused_ = false;      // the breaker refused an attempt
  bool pushed_back_ = false;  // the layer below retried already: no more hedges
  bool expired_ = false;      // an attempt was cut at the inherited deadline
  bool queued_ = false;       // waiting for a place under the limit
  hedge_outcome outcome_ = hedge_outcome::kept_result;
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
