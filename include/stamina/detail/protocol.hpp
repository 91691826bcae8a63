#ifndef STAMINA_DETAIL_PROTOCOL_HPP
#define STAMINA_DETAIL_PROTOCOL_HPP

// The rules of one retrying call, written once: a sans-I/O state machine. A driver (the
// blocking loop in retry.hpp, the caller coroutine and the composed operation in
// async_retry.hpp) reports what happened — an attempt succeeded, failed, timed out or was
// cancelled; a wait ended or was interrupted — and performs the action the machine returns.
// The machine reads no clock (elapsed time is passed in), starts nothing and waits for nothing.
//
// Owned here: the switch snapshot (read once when the call starts), the order of steps,
// classification of timed-out, shed and cancelled attempts, budget refunds on success, hook reports
// and the lifetime of hook scopes, the attempt count and the give-up result. The arithmetic
// it applies — waits, deadline, attempt limits, the clock rule, attempt counting under the
// switches, classification and budget charges — is backoff's (backoff.hpp), fed the same
// snapshot.

#include <stamina/backoff.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/error.hpp>
#include <stamina/instrumentation.hpp>

#include <cassert>
#include <chrono>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#if defined(__linux__)
#include <time.h>
#endif

STAMINA_NAMESPACE_BEGIN
namespace detail {

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
  throttled,        ///< `stamina::error::throttled`; other values value-initialised
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
  static action deliver() noexcept { return {action_kind::deliver, {}, false, {}}; }
  static action give_up(give_up_result r) noexcept { return {action_kind::give_up, r, false, {}}; }
};

/// The start of a call, before the machine exists: the switch snapshot and the first attempt.
/// A driver whose success path must stay tiny (the blocking one) begins with this and builds
/// the retry_protocol from it only if the first attempt fails; the outcome is the same as
/// retry_protocol(policy).start() followed by attempt_succeeded() or attempt_failed().
class first_attempt {
 public:
  // The throttle in effect is looked up once: the fast path asks it twice.
  explicit first_attempt(const retry_policy& policy) noexcept
      : policy_(&policy),
        switches_(load_global_config()),
        throttle_(switches_.active() ? policy.throttle_in_effect(switches_) : nullptr) {}
  first_attempt(retry_policy&&) = delete;

  bool needs_clock() const noexcept { return backoff::needs_clock(*policy_, switches_); }
  /// Whether a success must be shown to the policy's `on_result` (then the driver continues
  /// with retry_protocol(first).attempt_succeeded(elapsed, cancelled, values...)).
  bool judges_results() const noexcept { return policy_->result_classifier() != nullptr; }
  /// Asks the throttle in effect whether the first attempt may be sent; when not, the driver
  /// continues with retry_protocol(first).attempt_held_back(...).
  bool admit() const noexcept { return throttle_ == nullptr || throttle_->admit(); }
  /// The first attempt succeeded: the call delivers it (as backoff::record_success).
  void succeeded() const noexcept {
    if (switches_.active()) backoff::record_success(*policy_, throttle_);
  }

 private:
  friend class retry_protocol;
  const retry_policy* policy_;
  global_config switches_;
  adaptive_throttle* throttle_;
};

class retry_protocol {
 public:
  /// Snapshots the global switches: the one moment every driver reads them. Refers to
  /// `policy`, which must outlive the machine. Cheap: what a failure needs is made at the
  /// first failure.
  explicit retry_protocol(const retry_policy& policy) noexcept : policy_(&policy), switches_(load_global_config()) {}
  retry_protocol(retry_policy&&) = delete;

  /// With a fixed jitter seed (simulations, tests): the same seed gives the same waits.
  retry_protocol(const retry_policy& policy, std::uint64_t seed) noexcept : retry_protocol(policy) { seed_ = seed; }
  retry_protocol(retry_policy&&, std::uint64_t) = delete;

  /// Continues a call whose first attempt (started as `first`) is running or has failed.
  explicit retry_protocol(const first_attempt& first) noexcept
      : policy_(first.policy_), switches_(first.switches_), attempts_(1), stage_(stage::attempting) {}

  /// The one clock rule: the driver measures elapsed time (one clock read when the call
  /// starts and one per step) only when a deadline or an attempt time limit applies.
  bool needs_clock() const noexcept { return backoff::needs_clock(*policy_, switches_); }

  /// The first step of every call: the first attempt.
  action start(duration elapsed) {
    assert(stage_ == stage::idle);
    return next_attempt(elapsed);
  }

  /// The attempt succeeded (also when it raced a cancellation) and the policy has no
  /// `on_result`: deliver it.
  action attempt_succeeded() noexcept {
    assert(stage_ == stage::attempting);
    backoff::record_success(*policy_, switches_);  // budget refund, as first_attempt::succeeded
    return finish();
  }

  /// The attempt succeeded with `values`: the policy's `on_result` (if any) decides whether the
  /// result is delivered or retried like a failure. A give-up after a retried result has
  /// result `last_attempt`: the driver delivers that result as the success it is.
  /// `elapsed()` is called only when the result is retried: a success reads no clock.
  template <class Elapsed, class... V>
  action attempt_succeeded(const Elapsed& elapsed, bool cancelled, const V&... values) {
    const result_classifier* judge = policy_->result_classifier();
    if (judge == nullptr) [[likely]]
      return attempt_succeeded();
    return result_judged(judge_result(*judge, values...), elapsed, cancelled);
  }

  /// The attempt failed with `what`, `elapsed` after the call started. `cancelled`: the
  /// caller asked to cancel during the attempt; a cancelled attempt is never retried.
  action attempt_failed(const failure& what, duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    if (cancelled) return give_up(give_up_reason::cancelled, what, give_up_result::last_attempt);
    failure_state& f = failed();
    return then_attempt(
        after_failure(f.waits.on_failure(f.waits.classify(what), now(elapsed)), what, give_up_result::last_attempt),
        elapsed);
  }

  /// The attempt was cut by its time limit: a retryable failure whatever `on` says, and a sign
  /// of overload for the throttle; if the call gives up, it completes with `attempt_timeout`.
  action attempt_timed_out(duration elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    const failure what = timed_out_failure();
    if (cancelled) return give_up(give_up_reason::cancelled, what, give_up_result::attempt_timeout);
    return then_attempt(after_failure(failed().waits.on_failure(decision::overloaded(), now(elapsed)), what,
                                      give_up_result::attempt_timeout),
                        elapsed);
  }

  /// The first attempt (begun with first_attempt) was held back by the throttle.
  action attempt_held_back(duration elapsed) {
    assert(stage_ == stage::attempting);
    return then_attempt(shed(elapsed), elapsed);
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

  /// The failure a timed-out attempt stands for.
  static failure timed_out_failure() noexcept { return failure(make_error_code(error::attempt_timeout)); }
  /// The failure a shed attempt stands for.
  static failure throttled_failure() noexcept { return failure(make_error_code(error::throttled)); }
  /// The failure a result retried by `on_result` stands for (in hooks and metrics).
  static failure retried_result_failure() noexcept { return failure(make_error_code(error::retried_result)); }

  /// Attempts started so far (shed ones included).
  unsigned attempts() const noexcept { return attempts_; }
  /// Why the call gave up; nullopt while it runs or when it delivered a success.
  std::optional<give_up_reason> gave_up() const noexcept { return gave_up_; }

 private:
  enum class stage : unsigned char { idle, attempting, waiting, done };

  // What only a call that failed needs.
  struct failure_state {
    failure_state(const retry_policy& policy, global_config switches, std::uint64_t seed) noexcept
        : waits(policy, switches, seed) {}
    backoff waits;                        // wait arithmetic, deadline, attempts, classification, budget charge
    retry_scope scope;                    // objects returned by on-retry hooks
    failure last{stamina::error_code()};  // the failure the current wait follows
  };

  failure_state& failed() noexcept {
    if (!failed_)
      failed_.emplace(*policy_, switches_, seed_ != 0 || !switches_.virtual_time() ? seed_ : virtual_time_seed());
    return *failed_;
  }

  // In virtual time a call's elapsed time is the sum of the waits it skipped.
  duration now(duration elapsed) const noexcept {
    if (!switches_.virtual_time()) [[likely]]
      return elapsed;
    return failed_ ? failed_->waits.waited_so_far() : duration(0);
  }

  template <class... V>
  static decision judge_result(const result_classifier& judge, const V&... values) noexcept {
    try {
      const std::tuple<const V*...> pointers(&values...);
      return judge.classify(&pointers);
    } catch (...) {
      report_classifier_failure();
      return decision::no_retry();
    }
  }

  template <class Elapsed>
  action result_judged(decision verdict, const Elapsed& elapsed, bool cancelled) {
    assert(stage_ == stage::attempting);
    if (!verdict.should_retry()) return attempt_succeeded();
    if (cancelled) return give_up(give_up_reason::cancelled, retried_result_failure(), give_up_result::last_attempt);
    return result_retried(verdict, elapsed());
  }

  action result_retried(decision verdict, duration elapsed) {
    failure_state& f = failed();
    return then_attempt(after_failure(f.waits.on_failure(verdict, now(elapsed)), retried_result_failure(),
                                      give_up_result::last_attempt),
                        elapsed);
  }

  // Starts the next attempt, unless the policy's throttle sheds it: a shed attempt is a local,
  // retryable failure (`error::throttled`), followed by its wait, another attempt or a give-up.
  action next_attempt(duration elapsed) {
    for (;;) {
      if (failed_) failed_->scope.clear();  // hook scopes live until the next attempt starts
      if (attempts_ != ~0u) ++attempts_;
      stage_ = stage::attempting;
      if (backoff::admit(*policy_, switches_)) [[likely]] {
        if (!policy_->attempt_timeout()) return action::attempt(std::nullopt);
        return limited_attempt(elapsed);
      }
      if (const std::optional<action> after = shed(elapsed)) return *after;
    }
  }

  [[gnu::noinline]] action limited_attempt(duration elapsed) {
    return action::attempt(failed().waits.attempt_limit(now(elapsed)));
  }

  [[gnu::noinline]] std::optional<action> shed(duration elapsed) {
    return after_failure(failed().waits.on_shed(now(elapsed)), throttled_failure(), give_up_result::throttled, false);
  }

  action then_attempt(const std::optional<action>& after, duration elapsed) {
    return after ? *after : next_attempt(elapsed);
  }

  // The wait or give-up that follows a failure; nullopt: attempt again at once.
  // `report`: tell the on-retry hooks. Held-back attempts are not reported: while pacing
  // there can be thousands a second, and none of them reached the dependency.
  std::optional<action> after_failure(const backoff::step& next, const failure& what, give_up_result result,
                                      bool report = true) {
    failure_state& f = *failed_;
    if (!next.retry) return give_up(next.reason, what, result);
    const instrumentation::on_retry_hook* own = policy_->own_on_retry();
    if (report && switches_.active() && (has_on_retry_hooks() || own != nullptr)) {
      const retry_details d{policy_->name(), next.retry_num, next.wait, next.waited_so_far, what};
      notify_retry(d, f.scope, own);
    }
    if (next.wait.count() <= 0) return std::nullopt;  // a zero wait is no wait
    if (switches_.virtual_time()) {
      skip_virtual_wait(next.wait);  // and the call's elapsed time, now(), moves with its waits
      return std::nullopt;
    }
    f.last = what;
    stage_ = stage::waiting;
    return action::wait_for(next.wait);
  }

  action give_up(give_up_reason reason, const failure& what, give_up_result result) {
    const instrumentation::on_give_up_hook* own = policy_->own_on_give_up();
    if (switches_.active() && (has_on_give_up_hooks() || own != nullptr)) {
      const duration waited = failed_ ? failed_->waits.waited_so_far() : duration(0);
      const give_up_details d{policy_->name(), reason, attempts_, waited, what};
      notify_give_up(d, own);
    }
    finish();
    gave_up_ = reason;
    return action::give_up(result);
  }

  action finish() noexcept {
    failed_.reset();  // hook scopes end with the call
    stage_ = stage::done;
    return action::deliver();
  }

  const retry_policy* policy_;
  global_config switches_;
  std::optional<failure_state> failed_;
  std::uint64_t seed_ = 0;  // 0: a random seed at the first failure
  unsigned attempts_ = 0;
  std::optional<give_up_reason> gave_up_;
  stage stage_ = stage::idle;
};

[[noreturn]] void throw_result_mismatch(const std::type_info& predicate, const std::type_info& values);

// The on_result predicate must take exactly the op's success values: checked by every
// driver before the first attempt (the policy is not typed by the op, so this is the first
// moment the two types meet).
template <class... V>
void check_result_values(const retry_policy& policy) {
  using values = std::tuple<std::decay_t<V>...>;
  const result_classifier* judge = policy.result_classifier();
  if (judge != nullptr && judge->values() != typeid(values)) throw_result_mismatch(judge->values(), typeid(values));
}

// Converts a wait to a clock's integer duration, saturating: an absurd wait (a hostile
// Retry-After, +inf) becomes about a century instead of overflowing the tick count.
template <class ClockDuration>
ClockDuration to_clock_duration(duration d) noexcept {
  constexpr double century = 100.0 * 365 * 24 * 3600;
  const double s = d.count() > 0 ? (d.count() < century ? d.count() : century) : 0.0;
  return std::chrono::ceil<ClockDuration>(duration(s));
}

// The clock every driver measures a call's elapsed time with when it waits on
// std::chrono::steady_clock. On Linux it is CLOCK_MONOTONIC_COARSE: a few nanoseconds to read
// instead of ~20, at a resolution of a few milliseconds, which is plenty for deadlines and
// attempt limits and keeps the success path cheap. (Timers still wait on steady_clock.)
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
struct coarse_steady_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<coarse_steady_clock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};
#else
using coarse_steady_clock = std::chrono::steady_clock;
#endif

template <class Clock>
struct elapsed_clock {
  using type = Clock;  // a test's virtual clock is used as it is
};
template <>
struct elapsed_clock<std::chrono::steady_clock> {
  using type = coarse_steady_clock;
};

/// Elapsed time since the call started, read only when the protocol needs it, from the
/// coarse variant of `WaitClock`.
template <class WaitClock>
class stopwatch {
  using Clock = typename elapsed_clock<WaitClock>::type;

 public:
  explicit stopwatch(bool running) noexcept : start_(running ? Clock::now() : typename Clock::time_point{}) {
    running_ = running;
  }
  duration elapsed() const noexcept { return running_ ? duration(Clock::now() - start_) : duration(0); }

 private:
  typename Clock::time_point start_;
  bool running_;
};

// Reads a stopwatch of any clock through one type (for the non-template half of a driver).
class duration_source {
 public:
  duration_source() = default;
  template <class Clock>
  explicit duration_source(const stopwatch<Clock>* watch) noexcept
      : watch_(watch),
        read_([](const void* w) noexcept { return static_cast<const stopwatch<Clock>*>(w)->elapsed(); }) {}
  duration operator()() const noexcept { return read_ != nullptr ? read_(watch_) : duration(0); }

 private:
  const void* watch_ = nullptr;
  duration (*read_)(const void*) noexcept = nullptr;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
