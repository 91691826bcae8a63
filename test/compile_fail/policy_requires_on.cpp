// Built by ctest only: without STAMINA_CONTROL it must fail to compile.
#include <stamina/retry_policy.hpp>

#include <stdexcept>

int main() {
#ifdef STAMINA_CONTROL
  stamina::retry_policy p = stamina::on_exception<std::runtime_error>();
#else
  stamina::retry_policy p;
#endif
  return p.attempts() ? 0 : 1;
}
