#ifndef STAMINA_DURATION_HPP
#define STAMINA_DURATION_HPP

#include <chrono>
#include <stamina/detail/namespace.hpp>

STAMINA_NAMESPACE_BEGIN

/// Every wait, timeout and budget in stamina is a floating-point number of seconds, so any
/// chrono literal converts implicitly (`100ms`, `0.5s`, `5s`) and huge values saturate instead
/// of overflowing an integer tick count.
using duration = std::chrono::duration<double>;

STAMINA_NAMESPACE_END

#endif
