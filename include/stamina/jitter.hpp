#ifndef STAMINA_JITTER_HPP
#define STAMINA_JITTER_HPP

#include <stamina/detail/namespace.hpp>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

/// How the random part of a wait is computed. With `e = min(wait_max, wait_initial *
/// wait_exp_base^(n-1))` for retry number `n`:
/// - `additive` (default): `e + U(0, wait_jitter)`; jitter after the cap, at every step.
/// - `full`: `U(0, e)`.
/// - `equal`: `e/2 + U(0, e/2)`.
/// - `decorrelated`: `min(wait_max, U(wait_initial, 3 * previous_wait))`.
enum class jitter : unsigned char { additive, full, equal, decorrelated };

constexpr std::string_view to_string(jitter j) noexcept {
  switch (j) {
    case jitter::additive:
      return "additive";
    case jitter::full:
      return "full";
    case jitter::equal:
      return "equal";
    case jitter::decorrelated:
      return "decorrelated";
  }
  return "unknown";
}

STAMINA_NAMESPACE_END

#endif
