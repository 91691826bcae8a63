#ifndef STAMINA_GIVE_UP_REASON_HPP
#define STAMINA_GIVE_UP_REASON_HPP

#include <stamina/detail/namespace.hpp>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

/// Why a call stopped retrying and delivered its last failure.
enum class give_up_reason : unsigned char {
  attempts_exhausted,  ///< the policy's `attempts` were used up (or retrying is inactive)
  deadline,            ///< the next wait would end at or after the `timeout` deadline
  not_retryable,       ///< the policy's `on` rejected the failure
  budget_exhausted,    ///< the shared `retry_budget` refused the retry
  cancelled,           ///< async cancellation or a `std::stop_token` stop request
  throttled,           ///< the last attempt was shed by the policy's `adaptive_throttle`
  circuit_open,        ///< the policy's `circuit_breaker` is open: nothing more is sent
  pushback,            ///< the layer below said "do not retry" (`decision::pushback()`: its marker,
                       ///< or a nested stamina call that already retried, see `retry_policy::within`)
};

constexpr std::string_view to_string(give_up_reason r) noexcept {
  switch (r) {
    case give_up_reason::attempts_exhausted:
      return "attempts_exhausted";
    case give_up_reason::deadline:
      return "deadline";
    case give_up_reason::not_retryable:
      return "not_retryable";
    case give_up_reason::budget_exhausted:
      return "budget_exhausted";
    case give_up_reason::cancelled:
      return "cancelled";
    case give_up_reason::throttled:
      return "throttled";
    case give_up_reason::circuit_open:
      return "circuit_open";
    case give_up_reason::pushback:
      return "pushback";
  }
  return "unknown";
}

STAMINA_NAMESPACE_END

#endif
