#ifndef STAMINA_HEDGING_POLICY_HPP
#define STAMINA_HEDGING_POLICY_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>
#include <stamina/hedge_budget.hpp>
#include <stamina/retry_on.hpp>

#include <array>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

STAMINA_NAMESPACE_BEGIN

/// What happened to one attempt of a hedged call (`hedging_policy::on_hedge`).
enum class hedge_event_kind : unsigned char {
  started,        ///< a hedge (an attempt after the first) was started
  won,            ///< a hedge succeeded first: its result is the call's
  cancelled,      ///< an attempt still in flight was cancelled (another won, or the call ended)
  budget_denied,  ///< a hedge was due but the budget had no token left, so it was not started
};

/// `"started"`, `"won"`, `"cancelled"` or `"budget_denied"`.
const char* to_string(hedge_event_kind kind) noexcept;

/// One hedging event, handed to the policy's `on_hedge` hook. A value: it may be kept.
struct hedge_event {
  std::string name;       ///< the policy's name
  hedge_event_kind kind;  ///< what happened
  unsigned attempt;       ///< which attempt, from 1 (the first, unhedged one)
  duration elapsed;       ///< since the call started
};

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
/// calls together may add. A value type with validating setters, like `retry_policy`.
///
/// Copies share the budget, the latency window of `adaptive_delay` and the counters of
/// `stats()`: make the policy once per dependency and reuse it (a policy made per call would
/// start each call with a full budget and an empty window).
class hedging_policy {
 public:
  /// More attempts than this are treated as this many, as gRPC caps its `maxAttempts`.
  static constexpr unsigned max_attempts_limit = 10;

  /// `on` says which failures start the next hedge at once (a failure it rejects ends the
  /// call). Named after where it is made (`"client.cpp:42"`), like `retry_policy`; `file`
  /// and `line` are filled in by the compiler.
  hedging_policy(retry_on on,  // NOLINT(google-explicit-constructor): a retry_on is all a policy needs
                 const char* file = __builtin_FILE(), unsigned line = __builtin_LINE());

  // --- setters: throw std::invalid_argument naming the field and the value ---------------
  /// Which failures start the next hedge at once instead of ending the call.
  hedging_policy& on(retry_on value) &;
  /// Which failures start the next hedge at once (see above).
  hedging_policy&& on(retry_on value) && { return std::move(on(std::move(value))); }
  /// Attempts at most, the first included (so 2 = one hedge); at least 1; values above
  /// `max_attempts_limit` saturate.
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy& max_attempts(I value) & {
    if (value <= 0) throw_invalid_max_attempts(static_cast<long long>(value));
    max_attempts_ =
        static_cast<unsigned long long>(value) > max_attempts_limit ? max_attempts_limit : static_cast<unsigned>(value);
    return *this;
  }
  /// Attempts at most (see above).
  template <std::integral I>
  requires(!std::same_as<I, bool>) hedging_policy && max_attempts(I value) && {
    return std::move(max_attempts(value));
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
  /// Budget of the whole call: when it is over, every attempt in flight is cancelled and the
  /// call completes with `stamina::error::attempt_timeout`; > 0; nullopt = none (the default).
  hedging_policy& timeout(std::optional<duration> value) &;
  /// Budget of the whole call (see above).
  hedging_policy&& timeout(std::optional<duration> value) && { return std::move(timeout(value)); }
  /// The name reported to the hook.
  hedging_policy& name(std::string value) &;
  /// The name (see above).
  hedging_policy&& name(std::string value) && { return std::move(name(std::move(value))); }
  /// The budget that caps hedges; null = unlimited. Default: one of its own
  /// (`hedge_budget()`: 5 % of calls, bursts of 10), shared by the policy's copies.
  hedging_policy& budget(std::shared_ptr<hedge_budget> value) &;
  /// The budget (see above).
  hedging_policy&& budget(std::shared_ptr<hedge_budget> value) && { return std::move(budget(std::move(value))); }
  /// Called for every hedge started, won or cancelled and every hedge the budget denied, in
  /// the call's completion context; one that throws is reported on standard error and
  /// ignored. Replaces an earlier one; an empty function removes it.
  hedging_policy& on_hedge(std::function<void(const hedge_event&)> hook) &;
  /// The hook (see above).
  hedging_policy&& on_hedge(std::function<void(const hedge_event&)> hook) && {
    return std::move(on_hedge(std::move(hook)));
  }

  // --- getters -------------------------------------------------------------------------
  /// Which failures start the next hedge at once.
  const retry_on& on() const noexcept { return config_->on; }
  /// Attempts at most (default 2).
  unsigned max_attempts() const noexcept { return max_attempts_; }
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
  std::optional<duration> timeout() const noexcept { return timeout_; }
  /// The name (default: where the policy was made).
  const std::string& name() const noexcept { return config_->name; }
  /// The budget; null = unlimited.
  const std::shared_ptr<hedge_budget>& budget() const noexcept { return budget_; }
  /// The hook, or null.
  const std::function<void(const hedge_event&)>* on_hedge() const noexcept {
    return config_->hook ? &config_->hook : nullptr;
  }
  /// Counters of the calls made with this policy and its copies so far.
  hedge_stats stats() const noexcept;

  /// @cond
  detail::hedge_counters& counters() const noexcept { return *counters_; }
  detail::latency_window* window() const noexcept { return window_.get(); }
  /// @endcond

 private:
  [[noreturn]] static void throw_invalid_max_attempts(long long value);

  struct config {
    explicit config(retry_on o) : on(std::move(o)) {}
    retry_on on;
    std::string name;
    std::function<void(const hedge_event&)> hook;
  };
  template <class Change>
  void change_config(Change&& change);

  std::shared_ptr<const config> config_;
  std::shared_ptr<hedge_budget> budget_;
  std::shared_ptr<detail::hedge_counters> counters_;
  std::shared_ptr<detail::latency_window> window_;
  unsigned max_attempts_ = 2;
  duration delay_{0.1};
  std::optional<duration> timeout_;
};

STAMINA_NAMESPACE_END

#endif
