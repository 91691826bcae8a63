// Built by ctest only: with STAMINA_WITHOUT_ON it must fail to compile.
#include <stamina/retry_policy.hpp>

#include <stdexcept>

int main() {
#ifndef STAMINA_WITHOUT_ON
  stamina::retry_policy p = stamina::on_exception<std::runtime_error>();
#else
  stamina::retry_policy p;
#endif
  return p.attempts() ? 0 : 1;
}
