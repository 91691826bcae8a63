#ifndef STAMINA_DETAIL_TOKEN_BUCKET_HPP
#define STAMINA_DETAIL_TOKEN_BUCKET_HPP

// The lock-free token bucket under retry_budget and hedge_budget: tokens in thousandths (as
// gRPC keeps its retry tokens), filled up to a maximum and taken one way or the other.

#include <stamina/detail/namespace.hpp>

#include <atomic>
#include <cstdint>

STAMINA_NAMESPACE_BEGIN

namespace detail {

class token_bucket {
 public:
  static constexpr std::int64_t one_token = 1000;

  explicit token_bucket(std::int64_t initial_milli) noexcept : milli_(initial_milli) {}

  /// Adds `amount` (thousandths), up to `max`. A full bucket is not written, so that its cache
  /// line stays shared while nothing is taken from it.
  void fill(std::int64_t amount, std::int64_t max) noexcept {
    if (amount == 0) return;
    std::int64_t now = milli_.load(std::memory_order_relaxed);
    while (now < max) {
      const std::int64_t next = now + amount < max ? now + amount : max;
      if (milli_.compare_exchange_weak(now, next, std::memory_order_relaxed)) return;
    }
  }

  /// Takes `amount`, down to zero at most; returns what is left.
  std::int64_t drain(std::int64_t amount) noexcept {
    std::int64_t now = milli_.load(std::memory_order_relaxed);
    std::int64_t next = 0;
    do {
      next = now > amount ? now - amount : 0;
    } while (!milli_.compare_exchange_weak(now, next, std::memory_order_relaxed));
    return next;
  }

  /// Takes `amount` only if that much is left; whether it did.
  bool try_take(std::int64_t amount) noexcept {
    std::int64_t now = milli_.load(std::memory_order_relaxed);
    while (now >= amount) {
      if (milli_.compare_exchange_weak(now, now - amount, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  /// Sets the level (when the owner is made, before it is shared).
  void set(std::int64_t milli) noexcept { milli_.store(milli, std::memory_order_relaxed); }

  /// Thousandths left now.
  std::int64_t milli() const noexcept { return milli_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> milli_;
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
