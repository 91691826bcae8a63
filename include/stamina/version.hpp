#ifndef STAMINA_VERSION_HPP
#define STAMINA_VERSION_HPP

#include <stamina/detail/namespace.hpp>

// MAJOR * 10000 + MINOR * 100 + PATCH
#define STAMINA_VERSION 300
#define STAMINA_VERSION_STRING "0.3.0"

STAMINA_NAMESPACE_BEGIN
/// The version this library was compiled as, e.g. "0.3.0".
const char* version() noexcept;
STAMINA_NAMESPACE_END

#endif
