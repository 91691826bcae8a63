// STAMINA_NO_FORCE_INLINE (docs/semantics.md): the blocking retry called from a function compiled
// for a narrower target, which GCC refuses to force-inline into ("target specific option
// mismatch"). With the macro, `retry` is an ordinary inline function: this file compiles, and the
// call retries as any other. Its own executable: the macro must hold for the whole program.

#define STAMINA_NO_FORCE_INLINE
#include <stamina/retry.hpp>
#include <stamina/retry_on.hpp>
#include <stamina/retry_policy.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

namespace {

struct transient : std::exception {};

int calls = 0;

int flaky() {
  if (++calls < 3) throw transient();
  return 42;
}

stamina::retry_policy quick_policy() {
  using namespace std::chrono_literals;
  return stamina::retry_policy(stamina::on_exception<transient>()).wait_initial(0s).wait_jitter(0s).throttle(nullptr);
}

// No floating point here: the general registers only.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target("general-regs-only")))
#endif
int narrow(const stamina::retry_policy& policy) {
  return stamina::retry(policy, flaky);
}

}  // namespace

int main() {
  const int result = narrow(quick_policy());
  std::printf("result %d after %d attempts\n", result, calls);
  return result == 42 && calls == 3 ? 0 : 1;
}
