#ifndef STAMINA_DETAIL_PROTOCOL_HPP
#define STAMINA_DETAIL_PROTOCOL_HPP

// The rules of one retrying call, written once: a sans-I/O state machine. A driver (the
// blocking loop in retry.hpp, the caller coroutine and the composed operation in
// async_retry.hpp) reports what happened — an attempt succeeded, failed, timed out or was
// cancelled; a wait ended or was interrupted — and performs the action the machine returns.
// The machine reads no clock (elapsed time is passed in), starts nothing and waits for nothing.
//
// Owned here: the switch snapshot (via backoff, read once when the call starts), the clock
// rule (needs_clock), attempt time limits, classification of timed-out and cancelled
// attempts, budget refunds on success, hook reports and the lifetime of hook scopes, the
// attempt count and the give-up outcome. The wait arithmetic, deadline, attempt limit,
// classification and budget charge are backoff's (backoff.hpp), which this machine drives.

#include <stamina/backoff.hpp>
#include <stamina/error.hpp>
#include <stamina/instrumentation.hpp>

#include <cassert>
#include <chrono>
#include <optional>

namespace stamina::detail {

/// What the driver does next.
enum class action_kind : unsigned char {
  attempt,  ///< start an attempt, limited to `action::limit` when set
  wait,     ///< wait `action::wait` (> 0), then report wait_finished
  deliver,  ///< complete with the successful attempt's result
  give_up,  ///< complete with `action::result`
};

/// What a call that gives up completes with.
enum class give_up_result : unsigned char {
  last_attempt,     ///< the last attempt's result, unchanged
  aborted,          ///< `operation_aborted` (a wait was cancelled); other values value-initialised
  attempt_timeout,  ///< `stamina::error::attempt_timeout`; other values value-initialised
};

struct action {
  action_kind kind = action_kind::deliver;
  give_up_result result = give_up_result::last_attempt;  ///< give_up only
  duration wait{0};                                      ///< wait only
  std::optional<duration> limit;                         ///< attempt only

  static action attempt(std::optional<duration> limit) noexcept { return {action_kind::attempt, {}, {}, limit}; }
  static action wait_for(duration d) noexcept { return {action_kind::wait, {}, d, {}}; }
  static action deliver() noexcept { return {action_kind::deliver, {}, {}, {}}; }
  static action give_up(give_up_result r) noexcept { return {action_kind::give_up, r, {}, {}}; }
};

class retry_protocol {
 public:
  /// Snapshots the global switches. Refers to `policy`, which must outlive the machine.
  explicit retry_protocol(const retry_policy& policy) noexcept : backoff_(policy) {}
  retry_protocol(retry_policy&&) = delete;

  /// The one clock rule: the driver measures elapsed time (one clock read when the call
  /// starts and one per step) only when a deadline or an attempt time limit applies.
  bool needs_clock() const noexcept { return backoff_.needs_clock(); }

  /// The first step of every call: the first attempt.
  action start(duration elapsed) {
    assert(stage_ == stage::idle);
    return next_attempt(elapsed);
  }

  /// The attempt succeeded (also when it raced a cancellation): deliver it.
  action attempt_succeeded() noexcept {
    assert(stage_ == stage::attempting);
    backoff_.on_success();  // budget refund (not when retrying is inactive)
    return finish();
  }

  /// The attempt failed with `what`, `elapsed` after the call started. `cancelled`: the
  /// caller asked to cancel during the attempt; a cancelled attempt is never retried.
  action attempt_failed(const failure& what, duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    if (cancelled) return give_up(give_up_reason::cancelled, what, give_up_result::last_attempt);
    return after_failure(backoff_.classify(what), what, elapsed, give_up_result::last_attempt);
  }

  /// The attempt was cut by its time limit: a retryable failure whatever `on` says; if the
  /// call gives up, it completes with `attempt_timeout`.
  action attempt_timed_out(duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    const failure what(make_error_code(error::attempt_timeout));
    if (cancelled) return give_up(give_up_reason::cancelled, what, give_up_result::attempt_timeout);
    return after_failure(decision::retry(), what, elapsed, give_up_result::attempt_timeout);
  }

  /// The wait ended; `interrupted`: it was cancelled (async) or a stop was requested (sync).
  action wait_finished(duration elapsed, bool interrupted) {
    assert(stage_ == stage::waiting);
    if (interrupted) return give_up(give_up_reason::cancelled, *last_failure_, give_up_result::aborted);
    return next_attempt(elapsed);
  }

  /// Attempts started so far.
  unsigned attempts() const noexcept { return attempts_; }
  /// The wait arithmetic this machine drives.
  const backoff& waits() const noexcept { return backoff_; }

 private:
  enum class stage : unsigned char { idle, attempting, waiting, done };

  action next_attempt(duration elapsed) {
    scope_.clear();  // hook scopes live until the next attempt starts
    if (attempts_ != ~0u) ++attempts_;
    stage_ = stage::attempting;
    return action::attempt(backoff_.attempt_limit(elapsed));
  }

  action after_failure(decision verdict, const failure& what, duration elapsed, give_up_result result) {
    const backoff::step next = backoff_.on_failure(verdict, elapsed);
    if (!next.retry) return give_up(next.reason, what, result);
    if (backoff_.active() && has_on_retry_hooks()) {
      const retry_details d{backoff_.policy().name(), next.retry_num, next.wait, next.waited_so_far, what};
      notify_retry(d, scope_);
    }
    if (next.wait.count() <= 0) return next_attempt(elapsed);  // a zero wait is no wait
    last_failure_ = what;                                      // reported if the wait is interrupted
    stage_ = stage::waiting;
    return action::wait_for(next.wait);
  }

  action give_up(give_up_reason reason, const failure& what, give_up_result result) {
    if (backoff_.active() && has_on_give_up_hooks()) {
      const give_up_details d{backoff_.policy().name(), reason, attempts_, backoff_.waited_so_far(), what};
      notify_give_up(d);
    }
    finish();
    return action::give_up(result);
  }

  action finish() noexcept {
    scope_.clear();
    last_failure_.reset();
    stage_ = stage::done;
    return action::deliver();
  }

  backoff backoff_;
  retry_scope scope_;
  std::optional<failure> last_failure_;
  unsigned attempts_ = 0;
  stage stage_ = stage::idle;
};

// Converts a wait to a clock's integer duration, saturating: an absurd wait (a hostile
// Retry-After, +inf) becomes about a century instead of overflowing the tick count.
template <class ClockDuration>
ClockDuration to_clock_duration(duration d) noexcept {
  constexpr double century = 100.0 * 365 * 24 * 3600;
  const double s = d.count() > 0 ? (d.count() < century ? d.count() : century) : 0.0;
  return std::chrono::ceil<ClockDuration>(duration(s));
}

/// Elapsed time since the call started, read from `Clock` only when the protocol needs it.
template <class Clock>
class stopwatch {
 public:
  explicit stopwatch(bool running) noexcept : start_(running ? Clock::now() : typename Clock::time_point{}) {
    running_ = running;
  }
  duration elapsed() const noexcept { return running_ ? duration(Clock::now() - start_) : duration(0); }

 private:
  typename Clock::time_point start_;
  bool running_;
};

}  // namespace stamina::detail

#endif
