#ifndef STAMINA_HEDGE_BUDGET_HPP
#define STAMINA_HEDGE_BUDGET_HPP

#include <cstdint>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/token_bucket.hpp>

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
  void deposit() noexcept { bucket_.fill(ratio_milli_, burst_milli_); }

  /// Takes one token for a hedge; false (and nothing taken) when less than one is left.
  bool try_spend() noexcept { return bucket_.try_take(detail::token_bucket::one_token); }

  /// Tokens left now.
  double tokens() const noexcept { return static_cast<double>(bucket_.milli()) / 1000.0; }
  /// Tokens each call puts in.
  double ratio() const noexcept { return static_cast<double>(ratio_milli_) / 1000.0; }
  /// The bucket's size.
  double burst() const noexcept { return static_cast<double>(burst_milli_) / 1000.0; }

 private:
  std::int64_t ratio_milli_;
  std::int64_t burst_milli_;
  detail::token_bucket bucket_{0};
};

STAMINA_NAMESPACE_END

#endif
