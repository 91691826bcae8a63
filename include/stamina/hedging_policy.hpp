#ifndef STAMINA_HEDGING_POLICY_HPP
#define STAMINA_HEDGING_POLICY_HPP

#include <stamina/attempt_context.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/detail/call_site.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>
#include <stamina/hedge_budget.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/result_typed.hpp>
#include <stamina/retry_on.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

STAMINA_NAMESPACE_BEGIN

/// Counters of every call made with a policy and its copies (`hedging_policy::stats`).
struct hedge_stats {
  std::uint64_t calls = 0;      ///< hedged calls started
  std::uint64_t hedges = 0;     ///< attempts after the first that were started (the extra requests)
  std::uint64_t won = 0;        ///< calls whose result came from a hedge
  std::uint64_t cancelled = 0;  ///< attempts cancelled in flight
  std::uint64_t denied = 0;     ///< hedges the budget did not allow
};

namespace detail {

struct hedge_counters {
  std::atomic<std::uint64_t> calls{0}, hedges{0}, won{0}, cancelled{0}, denied{0};
};

// The latencies of a policy's recent successful calls, and their quantile. Recording takes a
// short lock; the quantile is recomputed every `refresh_every` samples and read lock-free, so
// a call that only asks for its delay pays one atomic load.
class latency_window {
 public:
  static constexpr std::size_t capacity = 512;
  static constexpr std::size_t refresh_every = 32;
  static constexpr std::size_t min_samples = 32;  // below this the policy's constant delay is used

  explicit latency_window(double quantile) noexcept : quantile_(quantile) {}
  void record(duration latency) noexcept;
  /// The quantile of the window, or nullopt before `min_samples` were recorded.
  std::optional<duration> current() const noexcept {
    const double s = cached_.load(std::memory_order_relaxed);
    return s < 0 ? std::nullopt : std::optional<duration>(duration(s));
  }
  double quantile() const noexcept { return quantile_; }

 private:
  double quantile_;
  std::mutex mutex_;
  std::array<double, capacity> samples_{};
  std::size_t count_ = 0;  // samples recorded, saturating at capacity
  std::size_t next_ = 0;   // where the next sample goes
  std::size_t since_refresh_ = 0;
  std::atomic<double> cached_{-1.0};
};

}  // namespace detail

/// How a call is hedged (`stamina::async_hedge`): when to start another attempt in parallel
/// with a slow one, how many, which failures start one at once, and how much extra load all
/// calls together may add. A value type with validating setters, like `retry_policy`; the
/// words they share mean the same: `attempts`, `timeout`, `attempt_timeout`, `on`, `on_result`,
/// `name`.
///
/// Copies share the budget, the latency window of `adaptive_delay` and the counters of
/// `stats()`: make the policy once per dependency and reuse it (a policy made per call would
/// start each call with a full budget and an empty window).
class hedging_policy {
 public:
  /// More attempts than this are treated as this many, as gRPC caps its `maxAttempts`.
  static constexpr unsigned max_attempts_limit = 10;

  /// `on` says which failures start the next hedge at once (a failure it rejects ends the
  /// call). Unnamed, a call is named after where it is made (`"client.cpp:42"`), like
  /// `retry_policy`'s; `file` and `line` are filled in by the compiler.
  hedging_policy(retry_on on,  // NOLINT(google-explicit-constructor): a retry_on is all a policy needs
                 const char* file = __builtin_FILE(), unsigned line = __builtin_LINE());

  // --- setters: throw std::invalid_argument naming the field and the value ---------------
  /// Which failures start the next hedge at once instead of ending the call.
  hedging_policy& on(retry_on value) &;
  /// Which failures start the next hedge at once (see above).
  hedging_policy&& on(retry_on value) && { return std::move(on(std::move(value))); }
  /// Retry a *successful* result too, as `retry_policy::on_result` does: a result the
  /// predicate retries starts the next hedge at once, and is delivered (as the success it is)
  /// only if no attempt does better. Its parameter types are checked against the operation's
  /// success values before the first attempt.
  template <class F>
  hedging_policy& on_result(F pred) & {
    set_on_result(detail::make_result_classifier(std::move(pred)));
    return *this;
  }
  /// Retry a successful result (see above).
  /// On a temporary policy, the result keeps the predicate's types for a compile-time check
  /// (see `result_typed`).
  template <class F>
  result_typed<hedging_policy, typename detail::result_values_of<F>::type> on_result(F pred) && {
    on_result(std::move(pred));
    return result_typed<hedging_policy, typename detail::result_values_of<F>::type>(std::move(*this));
  }
  /// Attempts at most, the first included (so 2 = one hedge); at least 1; values above
  /// `max_attempts_limit` saturate. The same word as `retry_policy::attempts`.
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy& attempts(I value) & {
    if (value <= 0) throw_invalid_attempts(static_cast<long long>(value));
    attempts_ =
        static_cast<unsigned long long>(value) > max_attempts_limit ? max_attempts_limit : static_cast<unsigned>(value);
    return *this;
  }
  /// Attempts at most (see above).
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy && attempts(I value) && {
    return std::move(attempts(value));
  }
  /// The former name of `attempts`.
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy& max_attempts(I value) & { return attempts(value); }
  /// The former name of `attempts`.
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy && max_attempts(I value) && {
    return std::move(attempts(value));
  }
  /// How long an attempt may run before the next one starts in parallel; >= 0 and finite.
  /// With `adaptive_delay`, used until the latency window has enough samples.
  hedging_policy& delay(duration value) &;
  /// The hedging delay (see above).
  hedging_policy&& delay(duration value) && { return std::move(delay(value)); }
  /// Follow the `quantile` (in (0, 1), e.g. 0.95) of the latencies of this policy's recent
  /// successful calls instead of the constant delay; nullopt = constant delay (the default).
  hedging_policy& adaptive_delay(std::optional<double> quantile) &;
  /// The adaptive delay (see above).
  hedging_policy&& adaptive_delay(std::optional<double> quantile) && { return std::move(adaptive_delay(quantile)); }
  /// Budget of the whole call, as `retry_policy::timeout`: once it has passed, no attempt
  /// starts (attempts in flight go on, unless `attempt_timeout` limits them); > 0; nullopt =
  /// none (the default).
  hedging_policy& timeout(std::optional<duration> value) &;
  /// Budget of the whole call (see above).
  hedging_policy&& timeout(std::optional<duration> value) && { return std::move(timeout(value)); }
  /// An attempt still running after this long (or after the time left before `timeout`, if
  /// sooner) is cancelled and counts as a timed-out, retryable failure; a call whose attempts all
  /// timed out completes with `stamina::error::attempt_timeout`. > 0; nullopt = none (default).
  /// `timeout(t).attempt_timeout(t)` cuts every attempt at the call's deadline.
  hedging_policy& attempt_timeout(std::optional<duration> value) &;
  /// A time limit per attempt (see above).
  hedging_policy&& attempt_timeout(std::optional<duration> value) && { return std::move(attempt_timeout(value)); }
  /// An absolute deadline inherited from the caller, as `retry_policy::deadline`: the `timeout`
  /// is clamped to it, every attempt in flight is cut at it (as by `attempt_timeout`), no attempt
  /// or hedge starts once it has passed (so no hedge is armed whose delay ends past it), and a
  /// call whose deadline has passed when it starts sends nothing and completes with
  /// `stamina::error::deadline_exceeded` (reason `deadline`). A steady clock's time point (or the
  /// test clock a call is given); only ever moves earlier, so set it on a copy made for one
  /// request, never on a shared policy. Throws `std::invalid_argument` for NaN.
  template <class Clock, class Dur>
  hedging_policy& deadline(std::chrono::time_point<Clock, Dur> at) & {
    set_deadline(detail::deadline_seconds(at));
    return *this;
  }
  /// The inherited deadline (see above).
  template <class Clock, class Dur>
  hedging_policy&& deadline(std::chrono::time_point<Clock, Dur> at) && {
    return std::move(deadline(at));
  }
  /// No inherited deadline (the default).
  hedging_policy& deadline(std::nullopt_t) & noexcept {
    deadline_ = std::numeric_limits<double>::infinity();
    return *this;
  }
  /// No inherited deadline (see above).
  hedging_policy&& deadline(std::nullopt_t none) && noexcept { return std::move(deadline(none)); }
  /// A call made inside an attempt of another stamina call (`outer`: that attempt's context), as
  /// `retry_policy::within`: it inherits the outer call's deadline, and the outer call will not
  /// retry that attempt's failure. Call it during the outer attempt.
  hedging_policy& within(const attempt_context& outer) & noexcept {
    detail::context_access::inherit(deadline_, outer);
    return *this;
  }
  /// Inside another call's attempt (see above).
  hedging_policy&& within(const attempt_context& outer) && noexcept { return std::move(within(outer)); }
  /// The name reported to hooks and metrics.
  hedging_policy& name(std::string value) &;
  /// The name (see above).
  hedging_policy&& name(std::string value) && { return std::move(name(std::move(value))); }
  /// The budget that caps hedges; null = unlimited. Default: one of its own
  /// (`hedge_budget()`: 5 % of calls, bursts of 10), shared by the policy's copies.
  hedging_policy& budget(std::shared_ptr<hedge_budget> value) &;
  /// The budget (see above).
  hedging_policy&& budget(std::shared_ptr<hedge_budget> value) && { return std::move(budget(std::move(value))); }
  /// Called for every hedge started, won or cancelled and every hedge the budget denied, in
  /// the call's completion context (after the global on-hedge hooks); one that throws is
  /// reported on standard error and ignored. Replaces an earlier one; an empty function
  /// removes it.
  hedging_policy& on_hedge(std::function<void(const hedge_event&)> hook) &;
  /// The hook (see above).
  hedging_policy&& on_hedge(std::function<void(const hedge_event&)> hook) && {
    return std::move(on_hedge(std::move(hook)));
  }

  /// A circuit breaker asked before each attempt, the first and every hedge (see
  /// `circuit_breaker`): while it is open the call sends nothing more; a call refused before
  /// its first attempt completes with `stamina::error::circuit_open`. Null: none (the default).
  hedging_policy& breaker(std::shared_ptr<circuit_breaker> value) &;
  /// The breaker (see above).
  hedging_policy&& breaker(std::shared_ptr<circuit_breaker> value) && { return std::move(breaker(std::move(value))); }
  /// An adaptive limit on attempts in flight to the dependency, shared with the other calls to
  /// it, retried or hedged (see `concurrency_limit`): every attempt holds a place while it runs.
  /// An attempt the call cannot do without (the first, or the next one once every attempt in
  /// flight has failed) waits for a place in the limit's queue, at most until the call's
  /// deadline (`fail_fast`: fails at once); a hedge, which only adds load while attempts are in
  /// flight, is not started when no place is free (`hedge_event_kind::limit_full`, once) and is
  /// due again after twice the delay, doubling per skip. Null: none (the default).
  hedging_policy& limit(std::shared_ptr<concurrency_limit> value) &;
  /// The concurrency limit (see above).
  hedging_policy&& limit(std::shared_ptr<concurrency_limit> value) && { return std::move(limit(std::move(value))); }
  /// Fail at once instead of waiting for a place under the limit, as `retry_policy::fail_fast`:
  /// with the last failure if an attempt was answered, else `stamina::error::throttled` (reason
  /// `throttled`). For interactive paths that would rather answer "busy" than wait.
  hedging_policy& fail_fast(bool value = true) & noexcept {
    fail_fast_ = value;
    return *this;
  }
  /// Fail at once (see above).
  hedging_policy&& fail_fast(bool value = true) && noexcept { return std::move(fail_fast(value)); }

  // --- getters -------------------------------------------------------------------------
  /// Which failures start the next hedge at once.
  const retry_on& on() const noexcept { return config_->on; }
  /// Attempts at most (default 2).
  unsigned attempts() const noexcept { return attempts_; }
  /// The former name of `attempts()`.
  unsigned max_attempts() const noexcept { return attempts_; }
  /// The constant delay (default 100 ms).
  duration delay() const noexcept { return delay_; }
  /// The quantile the delay follows, if adaptive.
  std::optional<double> adaptive_delay() const noexcept {
    return window_ ? std::optional<double>(window_->quantile()) : std::nullopt;
  }
  /// The delay a call starting now would use: the adaptive quantile once known, else `delay()`.
  duration current_delay() const noexcept {
    if (window_)
      if (const auto q = window_->current()) return *q;
    return delay_;
  }
  /// Budget of the whole call; nullopt = none (default).
  std::optional<duration> timeout() const noexcept {
    return timeout_.count() > 0 ? std::optional<duration>(timeout_) : std::nullopt;
  }
  /// Time limit per attempt; nullopt = none (default).
  std::optional<duration> attempt_timeout() const noexcept {
    return attempt_timeout_.count() > 0 ? std::optional<duration>(attempt_timeout_) : std::nullopt;
  }
  /// The inherited deadline, in seconds since the epoch of the call's clock; nullopt = none.
  std::optional<double> deadline_since_epoch() const noexcept {
    return deadline_ < std::numeric_limits<double>::infinity() ? std::optional<double>(deadline_) : std::nullopt;
  }
  /// The name: the one given to `name(...)`, else where the policy was made (a call made with
  /// an unnamed policy is named after the call).
  const std::string& name() const noexcept { return config_->named ? config_->name : config_->site->name; }
  /// The budget; null = unlimited.
  const std::shared_ptr<hedge_budget>& budget() const noexcept { return budget_; }
  /// The circuit breaker; null = none.
  const std::shared_ptr<circuit_breaker>& breaker() const noexcept { return config_->breaker; }
  /// The concurrency limit; null = none.
  const std::shared_ptr<concurrency_limit>& limit() const noexcept { return config_->limit; }
  /// Whether a call fails at once rather than wait for a place (default false).
  bool fail_fast() const noexcept { return fail_fast_; }
  /// The hook, or null.
  const std::function<void(const hedge_event&)>* on_hedge() const noexcept {
    return config_->hook ? &config_->hook : nullptr;
  }
  /// Counters of the calls made with this policy and its copies so far.
  hedge_stats stats() const noexcept;

  /// @cond
  detail::hedge_counters& counters() const noexcept { return *counters_; }
  detail::latency_window* window() const noexcept { return window_.get(); }
  const detail::result_classifier* result_classifier() const noexcept { return config_->on_result.get(); }
  // What a call needs to know (call_state.hpp); an unnamed policy's call is named after `caller`.
  detail::call_state_spec const& call_spec() const noexcept { return config_->spec; }
  /// @endcond

 private:
  [[noreturn]] static void throw_invalid_attempts(long long value);
  void set_on_result(std::shared_ptr<const detail::result_classifier> value);
  void set_deadline(double seconds_since_epoch);

  struct config {
    config(retry_on o, const detail::call_site* s) : on(std::move(o)), site(s) { refresh(); }
    retry_on on;
    const detail::call_site* site;
    bool named = false;
    std::string name;
    std::function<void(const hedge_event&)> hook;
    std::shared_ptr<const detail::result_classifier> on_result;
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<concurrency_limit> limit;
    detail::call_state_spec spec;  // what a call needs, pointing into this block
    // Points `spec` into this block: after it was made, and after a copy was changed.
    void refresh() noexcept {
      spec.on = &on;
      spec.on_result = on_result.get();
      spec.explicit_name = named ? &name : nullptr;
      spec.site = site;
      spec.own_throttle_set = true;  // hedges are paced by their own budget, not by a throttle
      spec.breaker = breaker.get();
      spec.limit = limit.get();
    }
  };
  template <class Change>
  void change_config(Change&& change);

  std::shared_ptr<const config> config_;
  std::shared_ptr<hedge_budget> budget_;
  std::shared_ptr<detail::hedge_counters> counters_;
  std::shared_ptr<detail::latency_window> window_;
  unsigned attempts_ = 2;
  duration delay_{0.1};
  // Without std::optional's flags (0: none; a set value is > 0): the policy is copied into the
  // state of every hedged call, which is kept under the ~1 KiB Asio recycles.
  duration timeout_{0};
  duration attempt_timeout_{0};
  double deadline_ = std::numeric_limits<double>::infinity();  // since the call clock's epoch
  bool fail_fast_ = false;
};

STAMINA_NAMESPACE_END

#endif
