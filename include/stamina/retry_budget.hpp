#ifndef STAMINA_RETRY_BUDGET_HPP
#define STAMINA_RETRY_BUDGET_HPP

#include <cstdint>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/token_bucket.hpp>

STAMINA_NAMESPACE_BEGIN

/// A token bucket shared by many retrying calls, with gRPC's retry-throttling semantics:
/// it starts full; every failure a policy's `on` accepts costs one token (the last failure of
/// a call too); every success returns `token_ratio`, up to `max_tokens`; a retry is allowed
/// only while more than `max_tokens / 2` tokens are left, otherwise the failure is delivered
/// at once (give-up reason `budget_exhausted`). During an outage this caps the extra load
/// that retries add to roughly the success traffic times `token_ratio`.
///
/// Lock-free and safe to share between threads (`std::shared_ptr<retry_budget>` in
/// `retry_policy::budget`). Tokens are kept in thousandths, as gRPC does.
class retry_budget {
 public:
  /// Throws `std::invalid_argument` unless `max_tokens` is finite and in (0, 1e9] and
  /// `token_ratio` is finite and in [0, max_tokens].
  explicit retry_budget(double max_tokens = 100, double token_ratio = 0.1);

  retry_budget(const retry_budget&) = delete;
  retry_budget& operator=(const retry_budget&) = delete;

  /// Charges one token for a retryable failure; returns whether a retry is still allowed.
  bool on_failure() noexcept { return bucket_.drain(detail::token_bucket::one_token) > threshold_; }

  /// Returns `token_ratio` tokens, up to the maximum.
  void on_success() noexcept { bucket_.fill(ratio_milli_, max_milli_); }

  /// Whether a retry would be allowed right now (tokens above half the maximum).
  bool retry_allowed() const noexcept { return bucket_.milli() > threshold_; }

  /// Tokens left now.
  double tokens() const noexcept { return static_cast<double>(bucket_.milli()) / 1000.0; }
  /// The bucket's size.
  double max_tokens() const noexcept { return static_cast<double>(max_milli_) / 1000.0; }
  /// Tokens returned per success.
  double token_ratio() const noexcept { return static_cast<double>(ratio_milli_) / 1000.0; }

 private:
  std::int64_t max_milli_;
  std::int64_t ratio_milli_;
  std::int64_t threshold_;
  detail::token_bucket bucket_{0};
};

STAMINA_NAMESPACE_END

#endif
