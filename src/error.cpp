#include <stamina/detail/namespace.hpp>
#include <stamina/error.hpp>

#include "immortal.hpp"

#include <string>

STAMINA_NAMESPACE_BEGIN
namespace error {

namespace {
class category_impl final : public stamina::error_category {
 public:
#if defined(STAMINA_STANDALONE_ASIO)
  category_impl() noexcept = default;  // std categories compare by address
#else
  // A fixed identifier keeps comparisons working across shared-library boundaries.
  constexpr category_impl() noexcept : error_category(0x5a3f1c2e9b7d4061ULL) {}
#endif
  const char* name() const noexcept override { return "stamina"; }
  std::string message(int value) const override {
    switch (value) {
      case attempt_timeout:
        return "attempt timed out";
      case op_threw:
        return "the operation threw when it was started";
      case throttled:
        return "attempt shed by the client-side throttle";
      case retried_result:
        return "result retried by on_result";
      case circuit_open:
        return "circuit breaker open: nothing sent";
      case deadline_exceeded:
        return "deadline passed before any attempt: nothing sent";
      default:
        return "unknown stamina error";
    }
  }
};
}  // namespace

const stamina::error_category& category() noexcept {
  // Never destroyed: a retry may run during exit (see src/immortal.hpp).
  static detail::immortal<category_impl> instance;
  return instance.get();
}

}  // namespace error
STAMINA_NAMESPACE_END
