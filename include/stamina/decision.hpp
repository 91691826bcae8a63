#ifndef STAMINA_DECISION_HPP
#define STAMINA_DECISION_HPP

#include <stamina/duration.hpp>

namespace stamina {

/// What a classifier says about one failure.
class decision {
 public:
  /// The three answers a classifier can give.
  enum class kind : unsigned char {
    no_retry,    ///< deliver the failure now
    retry,       ///< retry with the policy's backoff
    retry_after  ///< retry after at least `wait()`, spread after it
  };

  /// `true` = retry with the policy's backoff, `false` = deliver the failure now.
  decision(bool retry) noexcept  // NOLINT(google-explicit-constructor): predicates return bool
      : kind_(retry ? kind::retry : kind::no_retry) {}

  /// Deliver the failure now.
  static decision no_retry() noexcept { return decision(false); }
  /// Retry with the policy's backoff.
  static decision retry() noexcept { return decision(true); }

  /// Retry after at least `wait` (no cap), e.g. a server's `Retry-After`: never earlier, and
  /// spread after it by `U(0, min(wait, wait_jitter))` so that clients turned away together
  /// do not return together (the spread stays inside the deadline). The wait still never
  /// extends past the policy's deadline: if `wait` itself would, the call gives up.
  /// Throws `std::invalid_argument` for a negative or NaN wait; `+inf` means "never" and so
  /// gives up at the deadline (or waits "forever" without one, saturated).
  static decision retry_after(duration wait);

  /// Which answer this is.
  kind what() const noexcept { return kind_; }
  /// True for `retry` and `retry_after`.
  bool should_retry() const noexcept { return kind_ != kind::no_retry; }
  /// The requested wait; meaningful only for `kind::retry_after`.
  duration wait() const noexcept { return wait_; }

 private:
  decision(kind k, duration w) noexcept : kind_(k), wait_(w) {}
  kind kind_;
  duration wait_{0};
};

}  // namespace stamina

#endif
