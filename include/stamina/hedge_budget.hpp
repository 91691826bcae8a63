#ifndef STAMINA_HEDGE_BUDGET_HPP
#define STAMINA_HEDGE_BUDGET_HPP

#include <atomic>
#include <cstdint>
#include <stamina/detail/namespace.hpp>

STAMINA_NAMESPACE_BEGIN

/// Caps the extra load hedging adds: a token bucket shared by hedged calls. Every call puts
/// `ratio` tokens in (up to `burst`); every hedge (an attempt after the first) takes one out,
/// and is not started when less than one is left. Over `n` calls there are therefore at most
/// `burst + ratio * n` hedges: when everything is slow, hedging stops instead of doubling the
/// load. It starts full.
///
/// Lock-free and safe to share between threads and policies (`hedging_policy::budget`).
/// Tokens are kept in thousandths.
class hedge_budget {
 public:
  /// Throws `std::invalid_argument` naming the field unless `ratio` is finite and in [0, 1]
  /// and `burst` is finite and in [1, 1e9].
  explicit hedge_budget(double ratio = 0.05, double burst = 10);

  hedge_budget(const hedge_budget&) = delete;
  hedge_budget& operator=(const hedge_budget&) = delete;

  /// A call started: puts `ratio` tokens in, up to `burst`.
  void deposit() noexcept {
    if (ratio_milli_ == 0) return;
    std::int64_t now = milli_.load(std::memory_order_relaxed);
    // A budget that is not being spent stays full: skip the write so the cache line stays shared.
    while (now < burst_milli_) {
      const std::int64_t next = now + ratio_milli_ < burst_milli_ ? now + ratio_milli_ : burst_milli_;
      if (milli_.compare_exchange_weak(now, next, std::memory_order_relaxed)) return;
    }
  }

  /// Takes one token for a hedge; false (and nothing taken) when less than one is left.
  bool try_spend() noexcept {
    std::int64_t now = milli_.load(std::memory_order_relaxed);
    while (now >= one_token) {
      if (milli_.compare_exchange_weak(now, now - one_token, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  /// Tokens left now.
  double tokens() const noexcept { return static_cast<double>(milli_.load(std::memory_order_relaxed)) / 1000.0; }
  /// Tokens each call puts in.
  double ratio() const noexcept { return static_cast<double>(ratio_milli_) / 1000.0; }
  /// The bucket's size.
  double burst() const noexcept { return static_cast<double>(burst_milli_) / 1000.0; }

 private:
  static constexpr std::int64_t one_token = 1000;
  std::int64_t ratio_milli_;
  std::int64_t burst_milli_;
  std::atomic<std::int64_t> milli_;
};

STAMINA_NAMESPACE_END

#endif
