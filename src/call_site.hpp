#ifndef STAMINA_SRC_CALL_SITE_HPP
#define STAMINA_SRC_CALL_SITE_HPP

#include <stamina/detail/namespace.hpp>
#include <string>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// A policy's default name: "client.cpp:42", the file's own name and the line (enough to find
// the call site, and short).
std::string call_site_name(const char* file, unsigned line);

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
