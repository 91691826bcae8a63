#ifndef STAMINA_ERROR_HPP
#define STAMINA_ERROR_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/detail/system.hpp>

#include <stdexcept>
#include <type_traits>

STAMINA_NAMESPACE_BEGIN

namespace error {

/// Errors stamina itself reports, in the `stamina` error category.
enum errors {
  /// An attempt ran longer than `retry_policy::attempt_timeout` (or than the time left before
  /// the deadline) and was cancelled.
  attempt_timeout = 1,
  /// `op` threw an exception that is not a `stamina::system_error` when it was called to
  /// start an attempt whose completion signature begins with an error code.
  op_threw = 2,
  /// The policy's `adaptive_throttle` shed the attempt: it was never sent to the dependency.
  throttled = 3,
  /// The operation succeeded but the policy's `on_result` asked for a retry (how such a
  /// retry appears in hooks, logs and metrics; the caller receives the result itself).
  retried_result = 4,
  /// The policy's `circuit_breaker` is open: the attempt was never sent to the dependency.
  circuit_open = 5,
  /// The call's deadline (`retry_policy::deadline`, or the outer call's through `within`) had
  /// passed before any attempt could be sent: nothing was sent.
  deadline_exceeded = 6,
};

/// The `stamina` error category.
const stamina::error_category& category() noexcept;

/// Makes `e` an error code in the `stamina` category (found by argument-dependent lookup).
inline stamina::error_code make_error_code(errors e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace error

/// How hooks, logs and metrics see a successful result that `on_result` retried: its
/// description (`what()`: "result 503", the value of a number or a string, the status of an
/// HTTP response, ...). The caller never receives it: a give-up delivers the result itself.
class retried_result_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

STAMINA_NAMESPACE_END

/// @cond
STAMINA_ERROR_CODE_ENUM(stamina::error::errors)
/// @endcond

#endif
