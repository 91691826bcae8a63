#ifndef STAMINA_SRC_SETTINGS_HPP
#define STAMINA_SRC_SETTINGS_HPP

// What the shared protections (adaptive_throttle, circuit_breaker) need alike: their default
// clock, and one wording for a setting they refuse.

#include <stamina/detail/namespace.hpp>

#include <chrono>
#include <sstream>
#include <stdexcept>

STAMINA_NAMESPACE_BEGIN
namespace detail {

/// Seconds on the monotonic clock: the protections' default clock.
inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Throws `std::invalid_argument` "stamina::<who>: <field> must be <rule>, got <value>".
template <class T>
[[noreturn]] void throw_invalid_setting(const char* who, const char* field, const char* rule, const T& value) {
  std::ostringstream out;
  out << "stamina::" << who << ": " << field << " must be " << rule << ", got " << value;
  throw std::invalid_argument(out.str());
}

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
