// Built by ctest only: with STAMINA_WITHOUT_ON (or STAMINA_ALL_MISUSES) it must fail to compile.
#include <stamina/retry_policy.hpp>

#include <stdexcept>

int main() {
#if !defined(STAMINA_WITHOUT_ON) && !defined(STAMINA_ALL_MISUSES)
  stamina::retry_policy p = stamina::on_exception<std::runtime_error>();
#else
#line 1 "misuse_STAMINA_WITHOUT_ON"
  stamina::retry_policy p;
#endif
  return p.attempts() ? 0 : 1;
}
