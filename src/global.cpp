#include <stamina/global.hpp>

namespace stamina {

namespace {
using detail::global_config;
using detail::global_config_bits;

// testing, cap, attempts
constexpr std::uint64_t testing_mask = ~(global_config::inactive_bit | global_config::no_default_throttle_bit);

std::uint64_t testing_bits(bool testing, unsigned attempts, bool cap) noexcept {
  if (!testing) return 0;
  const std::uint64_t n = attempts == 0 ? 1 : attempts;
  return global_config::testing_bit | (cap ? global_config::cap_bit : 0) | (n << 32);
}

// Replaces the testing part of the word and keeps the active switch as it is now.
void store_testing_bits(std::uint64_t bits) noexcept {
  std::uint64_t now = global_config_bits.load(std::memory_order_relaxed);
  while (!global_config_bits.compare_exchange_weak(now, (now & ~testing_mask) | (bits & testing_mask),
                                                   std::memory_order_acq_rel)) {
  }
}
}  // namespace

void set_active(bool active) noexcept {
  if (active)
    global_config_bits.fetch_and(~global_config::inactive_bit, std::memory_order_acq_rel);
  else
    global_config_bits.fetch_or(global_config::inactive_bit, std::memory_order_acq_rel);
}

bool is_active() noexcept { return detail::load_global_config().active(); }

void set_testing(bool testing, unsigned attempts, bool cap) noexcept {
  store_testing_bits(testing_bits(testing, attempts, cap));
}

bool is_testing() noexcept { return detail::load_global_config().testing(); }

void set_default_throttling(bool on) noexcept {
  if (on)
    global_config_bits.fetch_and(~global_config::no_default_throttle_bit, std::memory_order_acq_rel);
  else
    global_config_bits.fetch_or(global_config::no_default_throttle_bit, std::memory_order_acq_rel);
}

bool is_default_throttling() noexcept {
  return (global_config_bits.load(std::memory_order_acquire) & global_config::no_default_throttle_bit) == 0;
}

testing_scope::testing_scope(unsigned attempts, bool cap) noexcept
    : previous_(global_config_bits.load(std::memory_order_acquire) & testing_mask) {
  set_testing(true, attempts, cap);
}

testing_scope::~testing_scope() { store_testing_bits(previous_); }

}  // namespace stamina
