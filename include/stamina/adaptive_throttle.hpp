#ifndef STAMINA_ADAPTIVE_THROTTLE_HPP
#define STAMINA_ADAPTIVE_THROTTLE_HPP

#include <atomic>
#include <cstdint>

namespace stamina {

/// Client-side throttling shared by the calls to one dependency (Google SRE, "Handling
/// Overload"): it remembers how many attempts were sent and how many the dependency
/// *accepted* — answered with a success or with a failure the policy does not retry (a 404 is
/// an answer; a refused connection, a 503 or a timed-out attempt is not) — and sheds each new
/// attempt, first attempts included, with probability
///
///     max(0, (sent - k * accepted) / (sent + 1))    once at least `min_sent` are remembered.
///
/// A shed attempt never reaches the dependency: it fails locally with
/// `stamina::error::throttled` and, like any retryable failure, waits its backoff before the
/// next attempt (which is asked again), so callers are paced rather than dropped while their
/// deadline lasts; it costs nothing from a `retry_budget`. A call whose last attempt was shed
/// gives up with reason `throttled`. As the dependency recovers, the admitted attempts succeed
/// and the shed probability falls back to zero.
///
/// Memory is counted in attempts, not seconds: when `sent` reaches `2 * window`, both counts
/// are halved, so the throttle forgets at the pace of the traffic and reads no clock.
///
/// Lock-free and safe to share between threads (`std::shared_ptr<adaptive_throttle>` in
/// `retry_policy::throttle`). On the success path it costs two relaxed atomic additions.
class adaptive_throttle {
 public:
  /// Throws `std::invalid_argument` naming the parameter unless `k` is finite and in
  /// [1, 100], `window` in [10, 1e6] and `min_sent` in [1, 2 * window]. `seed` = 0 draws a
  /// random seed for the shedding decisions.
  explicit adaptive_throttle(double k = 2.0, unsigned window = 100, unsigned min_sent = 20, std::uint64_t seed = 0);

  adaptive_throttle(const adaptive_throttle&) = delete;
  adaptive_throttle& operator=(const adaptive_throttle&) = delete;

  /// Asks to send one attempt: counts it and returns true, or returns false (shed, not counted).
  bool admit() noexcept {
    const std::uint64_t now = state_.load(std::memory_order_relaxed);
    if (shedding(now) && uniform() < shed_probability(now)) return false;
    const std::uint64_t after = state_.fetch_add(one_sent, std::memory_order_relaxed) + one_sent;
    if (sent_of(after) >= 2 * window_) forget_half();
    return true;
  }

  /// The dependency answered an admitted attempt.
  void on_accepted() noexcept { state_.fetch_add(1, std::memory_order_relaxed); }

  /// The probability that the next attempt is shed.
  double shed_probability() const noexcept { return shed_probability(state_.load(std::memory_order_relaxed)); }
  /// Attempts remembered as sent.
  std::uint32_t sent() const noexcept { return sent_of(state_.load(std::memory_order_relaxed)); }
  /// Attempts remembered as accepted.
  std::uint32_t accepted() const noexcept { return accepted_of(state_.load(std::memory_order_relaxed)); }

  /// The parameters.
  double k() const noexcept { return k_; }
  unsigned window() const noexcept { return window_; }
  unsigned min_sent() const noexcept { return min_sent_; }

 private:
  // sent in the high half, accepted in the low half: one atomic word, so a reader never sees
  // one count halved and the other not.
  static constexpr std::uint64_t one_sent = std::uint64_t{1} << 32;
  static std::uint32_t sent_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> 32); }
  static std::uint32_t accepted_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s); }

  // The cheap test first, so a healthy dependency costs no division and no random number.
  bool shedding(std::uint64_t s) const noexcept {
    const double sent = sent_of(s);
    return sent >= min_sent_ && sent > k_ * accepted_of(s);
  }
  double shed_probability(std::uint64_t s) const noexcept {
    if (!shedding(s)) return 0;
    const double sent = sent_of(s);
    return (sent - k_ * accepted_of(s)) / (sent + 1);
  }

  void forget_half() noexcept;
  double uniform() noexcept;

  double k_;
  unsigned window_;
  unsigned min_sent_;
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint64_t> rng_;
};

}  // namespace stamina

#endif
