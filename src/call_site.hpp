#ifndef STAMINA_SRC_CALL_SITE_HPP
#define STAMINA_SRC_CALL_SITE_HPP

#include <string>

namespace stamina::detail {

// A policy's default name: "client.cpp:42", the file's own name and the line (enough to find
// the call site, and short).
std::string call_site_name(const char* file, unsigned line);

}  // namespace stamina::detail

#endif
