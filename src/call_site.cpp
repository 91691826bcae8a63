// Call sites: the default names of policies, interned per place in the code.

#include <stamina/detail/call_site.hpp>

#include "call_site.hpp"
#include "fork_safety.hpp"
#include "immortal.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

STAMINA_NAMESPACE_BEGIN

namespace detail {

namespace {

struct call_site_table {
  call_site_table() { hold_across_fork(mutex); }
  std::mutex mutex;
  // Keyed by the address of the file name (a string literal) and the line; never shrinks: a
  // program has as many call sites as it has lines that make policies.
  std::map<std::pair<const char*, unsigned>, call_site> sites;
};

call_site_table& table() {
  static immortal<call_site_table> t;
  return t.get();
}
[[maybe_unused]] const bool table_made_at_load = (table(), true);  // see fork_safety.hpp

const call_site& lookup(const char* file, unsigned line) noexcept {
  static const call_site unnamed{};  // out of memory: an empty name rather than no call
  try {
    call_site_table& t = table();
    std::lock_guard lock(t.mutex);
    auto [it, made] = t.sites.try_emplace({file, line});
    if (made) it->second.name = call_site_name(file, line);
    return it->second;
  } catch (...) {
    return unnamed;
  }
}

}  // namespace

const call_site& intern_call_site(const char* file, unsigned line) noexcept {
  // A small direct-mapped cache per thread: the same few call sites make policy after policy.
  struct entry {
    const char* file = nullptr;
    unsigned line = 0;
    const call_site* site = nullptr;
  };
  thread_local std::array<entry, 16> cache{};
  entry& e = cache[(reinterpret_cast<std::uintptr_t>(file) / 8 + line) % cache.size()];
  if (e.file == file && e.line == line && e.site != nullptr) [[likely]]
    return *e.site;
  const call_site& site = lookup(file, line);
  e = {file, line, &site};
  return site;
}

}  // namespace detail

STAMINA_NAMESPACE_END
