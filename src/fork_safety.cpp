#include "fork_safety.hpp"
#include <stamina/detail/namespace.hpp>

#include "immortal.hpp"

#include <array>
#include <cstddef>

#if defined(__unix__)
#include <pthread.h>
#endif

STAMINA_NAMESPACE_BEGIN
namespace detail {

namespace {

struct held_lock {
  std::mutex* mutex = nullptr;
  void (*lock)() noexcept = nullptr;
  void (*unlock)() noexcept = nullptr;
};

// A handful of process-wide locks, registered once each; fixed storage: nothing to allocate.
struct fork_locks {
  std::mutex registration;
  std::array<held_lock, 16> locks{};
  std::size_t count = 0;
};

fork_locks& locks() {
  static immortal<fork_locks> all;
  return all.get();
}

void prepare() noexcept {
  fork_locks& l = locks();
  l.registration.lock();
  for (std::size_t i = 0; i < l.count; ++i) {
    if (l.locks[i].mutex != nullptr)
      l.locks[i].mutex->lock();
    else
      l.locks[i].lock();
  }
}

void release() noexcept {
  fork_locks& l = locks();
  for (std::size_t i = l.count; i-- > 0;) {
    if (l.locks[i].mutex != nullptr)
      l.locks[i].mutex->unlock();
    else
      l.locks[i].unlock();
  }
  l.registration.unlock();
}

void add(held_lock lock) noexcept {
  fork_locks& l = locks();
  std::lock_guard guard(l.registration);
#if defined(__unix__)
  static const bool registered = pthread_atfork(&prepare, &release, &release) == 0;
  if (!registered) return;
#endif
  if (l.count < l.locks.size()) l.locks[l.count++] = lock;
}

}  // namespace

void hold_across_fork(std::mutex& m) noexcept { add({&m, nullptr, nullptr}); }

void hold_across_fork(void (*lock)() noexcept, void (*unlock)() noexcept) noexcept { add({nullptr, lock, unlock}); }

}  // namespace detail
STAMINA_NAMESPACE_END
