#ifndef STAMINA_VERSION_HPP
#define STAMINA_VERSION_HPP

// MAJOR * 10000 + MINOR * 100 + PATCH
#define STAMINA_VERSION 100
#define STAMINA_VERSION_STRING "0.1.0"

namespace stamina {
/// The version this library was compiled as, e.g. "0.1.0".
const char* version() noexcept;
}  // namespace stamina

#endif
