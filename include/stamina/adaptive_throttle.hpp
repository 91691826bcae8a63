#ifndef STAMINA_ADAPTIVE_THROTTLE_HPP
#define STAMINA_ADAPTIVE_THROTTLE_HPP

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>

namespace stamina {

/// Client-side throttling shared by the calls to one dependency. It notices overload the way
/// Google SRE's client-side throttling does, then paces attempts the way AWS SDKs' adaptive
/// retry mode does, and lets go when the dependency keeps up again.
///
/// - **Healthy** (the usual state): every attempt is sent, and a success costs one relaxed
///   atomic load — nothing is written, so calls on many threads do not contend.
/// - **Watching** starts at a failure the policy retries (or a timed-out attempt). The
///   throttle then counts attempts sent and attempts *accepted* — answered with a success or
///   with a failure the policy does not retry (a 404 is an answer; a refused connection, a 503
///   or a timed-out attempt is not) — forgetting half of both every `window` attempts. Once
///   `window` attempts in a row show no trouble (`sent <= k * accepted`), it is healthy again.
/// - **Pacing** starts when at least `min_sent` attempts are counted and `sent > k * accepted`
///   (SRE's condition for shedding). Attempts, first attempts included, are then admitted by a
///   token bucket at `rate` per second, starting from the accepted rate seen while watching.
///   Every `interval` the rate follows what happened: more than 10 % of the answers were
///   failures → halve it (a pace that fails right after a good interval becomes the ceiling);
///   answers lag behind what was sent (a queue is building) → 0.9 × the answered rate, also
///   the new ceiling; all fine but attempts were held back → double up to the ceiling, then
///   +25 % per interval; all fine and nothing held back → healthy again.
///
/// An attempt that is not admitted never reaches the dependency: it fails locally with
/// `stamina::error::throttled` and, like any retryable failure, waits its backoff before the
/// next attempt, which asks again, so callers are paced rather than dropped. It costs nothing
/// from a `retry_budget`, and when the policy has a deadline (`timeout`) it does not use up
/// one of the policy's `attempts`: the deadline bounds how long a call is paced. A call whose
/// last attempt was held back gives up with reason `throttled`.
///
/// Safe to share between threads (`std::shared_ptr<adaptive_throttle>` in
/// `retry_policy::throttle`); while watching it costs two relaxed atomic additions per
/// attempt, while pacing admission takes a mutex.
class adaptive_throttle {
 public:
  /// Seconds on a monotonic clock; injectable for tests and simulations.
  using clock_function = double (*)();

  /// Throws `std::invalid_argument` naming the parameter unless `k` is finite and in
  /// [1, 100], `window` in [10, 1e6] and `min_sent` in [1, 2 * window].
  explicit adaptive_throttle(double k = 2.0, unsigned window = 100, unsigned min_sent = 20);

  adaptive_throttle(const adaptive_throttle&) = delete;
  adaptive_throttle& operator=(const adaptive_throttle&) = delete;

  /// The lowest pacing rate, attempts per second (default 1; finite, > 0).
  adaptive_throttle& min_rate(double per_second);
  /// How often the pacing rate is revised (default 0.5 s; finite, > 0).
  adaptive_throttle& interval(double seconds);
  /// The clock (default: the monotonic clock). Set it before sharing the throttle.
  adaptive_throttle& clock(clock_function now) noexcept;

  /// Asks to send one attempt: true = send it, false = held back.
  bool admit() noexcept {
    const mode m = mode_.load(std::memory_order_acquire);
    if (m == mode::healthy) [[likely]]
      return true;
    if (m == mode::pacing) return admit_paced();
    const std::uint64_t after = state_.fetch_add(one_sent, std::memory_order_relaxed) + one_sent;
    if (sent_of(after) >= 2 * window_) forget_half();
    if (sent_of(after) >= min_sent_ && sent_of(after) > k_ * accepted_of(after)) start_pacing();
    return true;
  }

  /// The dependency answered an admitted attempt (a success, or a failure not retried).
  void on_accepted() noexcept {
    const mode m = mode_.load(std::memory_order_relaxed);
    if (m == mode::healthy) [[likely]]
      return;
    state_.fetch_add(1, std::memory_order_relaxed);
    if (m == mode::pacing) interval_accepted_.fetch_add(1, std::memory_order_relaxed);
  }

  /// An admitted attempt failed in a way the policy retries, or timed out.
  void on_rejected() noexcept {
    const mode m = mode_.load(std::memory_order_relaxed);
    if (m == mode::healthy) start_watching();
    if (m == mode::pacing) interval_rejected_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Whether attempts are being paced now.
  bool pacing() const noexcept { return mode_.load(std::memory_order_relaxed) == mode::pacing; }
  /// Whether failures are being watched (or attempts paced): the dependency had trouble lately.
  bool watching() const noexcept { return mode_.load(std::memory_order_relaxed) != mode::healthy; }
  /// The pacing rate, attempts per second (meaningful while pacing).
  double rate() const;
  /// Attempts held back since the throttle was made (they are not reported to on-retry hooks).
  std::uint64_t held_back() const noexcept { return held_back_.load(std::memory_order_relaxed); }
  /// Attempts counted as sent while watching.
  std::uint32_t sent() const noexcept { return sent_of(state_.load(std::memory_order_relaxed)); }
  /// Attempts counted as accepted (answered) while watching.
  std::uint32_t accepted() const noexcept { return accepted_of(state_.load(std::memory_order_relaxed)); }

  /// Pacing starts when `sent > k * accepted`.
  double k() const noexcept { return k_; }
  /// Both counts are halved every `window` attempts.
  unsigned window() const noexcept { return window_; }
  /// Pacing needs at least this many attempts counted.
  unsigned min_sent() const noexcept { return min_sent_; }

 private:
  // sent in the high half, accepted in the low half: one atomic word, so a reader never sees
  // one count halved and the other not.
  static constexpr std::uint64_t one_sent = std::uint64_t{1} << 32;
  static std::uint32_t sent_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> 32); }
  static std::uint32_t accepted_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s); }

  enum class mode : unsigned char { healthy, watching, pacing };

  void start_watching() noexcept;
  void forget_half() noexcept;
  void start_pacing() noexcept;
  bool admit_paced() noexcept;

  double k_;
  unsigned window_;
  unsigned min_sent_;
  double min_rate_ = 1.0;
  double interval_ = 0.5;
  clock_function now_;
  std::atomic<std::uint64_t> state_{0};
  std::atomic<mode> mode_{mode::healthy};
  std::atomic<std::uint32_t> interval_accepted_{0};
  std::atomic<std::uint32_t> interval_rejected_{0};
  std::atomic<std::uint64_t> held_back_{0};

  mutable std::mutex mutex_;           // guards what follows
  double watching_since_ = 0;          // when watching started
  std::uint32_t accepted_before_ = 0;  // counts forgotten since then
  std::uint32_t sent_before_ = 0;
  double rate_ = 0;
  double ceiling_ = 0;     // the last pace that proved too much, or the healthy accepted rate
  bool last_good_ = true;  // the last interval had no overload
  double tokens_ = 0;
  double refilled_at_ = 0;
  double interval_start_ = 0;
  std::uint32_t interval_admitted_ = 0;
  std::uint32_t interval_held_ = 0;
};

/// The process-wide throttle of the calls named `name` (`retry_policy::name`), made on first
/// use and kept until the process ends. Every policy that was given no throttle of its own
/// uses it while default throttling is on (`set_default_throttling`): calls to one dependency
/// share what they learn about it, and a policy opts out with `throttle(nullptr)`. Names are
/// meant to be a program's fixed call-site names: each distinct one keeps a throttle.
adaptive_throttle& default_throttle(std::string_view name);

}  // namespace stamina

#endif
