#ifndef STAMINA_DETAIL_CALL_SITE_HPP
#define STAMINA_DETAIL_CALL_SITE_HPP

// A place in the code, known by its file and line: the default name of the policies made (or
// the calls made) there, and the slot of that name's default throttle. Interned once per place
// and never destroyed, so a policy made per call refers to one for the cost of a pointer.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/detail/namespace.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// The default throttle of one name, looked up when a call first needs it (a failure, or an
// unhealthy throttle). Written once; copies start empty (a copy may be renamed).
struct throttle_slot {
  throttle_slot() = default;
  throttle_slot(const throttle_slot& /*other*/) noexcept {}
  throttle_slot& operator=(const throttle_slot&) = delete;
  ~throttle_slot() = default;
  adaptive_throttle* get() const noexcept { return ptr.load(std::memory_order_acquire); }
  std::shared_ptr<adaptive_throttle> owner;      // keeps it registered while the slot lives
  std::atomic<adaptive_throttle*> ptr{nullptr};  // published after `owner` is set
  std::mutex mutex;                              // serialises the one write
  // The registry's count of registrations when the name was last looked for and not found:
  // until another name is registered, it is not looked for again.
  std::atomic<std::uint64_t> absent_since{0};
};

// The throttle of `name` for `slot`: from the slot, else from the registry (made if `make`;
// otherwise only if it may be unhealthy), kept in the slot when found.
adaptive_throttle* resolve_throttle(throttle_slot& slot, const std::string& name, bool make) noexcept;

struct call_site {
  std::string name;  // "client.cpp:42"
  mutable throttle_slot throttle;
};

// The call site of `file` and `line` (from __builtin_FILE/__builtin_LINE, so string literals
// that live as long as the program): a per-thread cache in front of a process-wide table.
const call_site& intern_call_site(const char* file, unsigned line) noexcept;

/// Where a call is made, filled in by the compiler as a defaulted last argument of `retry`,
/// `async_retry`, `async_hedge` and `retry_context`: an unnamed policy's call is named after it.
/// Interned only when the call needs its name (a report, a default throttle).
struct caller {
  caller(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) noexcept  // NOLINT: implicit on purpose
      : file(file), line(line) {}
  const call_site& site() const noexcept { return intern_call_site(file, line); }
  // By value across an out-of-line call, so that the inline path stores nothing for it: none
  // is a null file.
  static caller of(const caller* where) noexcept { return where != nullptr ? *where : caller(nullptr, 0); }
  const caller* or_null() const noexcept { return file != nullptr ? this : nullptr; }
  const char* file;
  unsigned line;
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
