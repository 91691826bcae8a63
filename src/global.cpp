#include <stamina/detail/namespace.hpp>
#include <stamina/detail/switches.hpp>
#include <stamina/global.hpp>

#include "fork_safety.hpp"
#include "immortal.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

STAMINA_NAMESPACE_BEGIN

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

// The bits a testing scope sets besides the mode itself.
constexpr std::uint64_t scope_bits = global_config::quiet_logs_bit;

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

namespace {
std::atomic<std::uint64_t> seed_in_effect{0};
std::atomic<std::int64_t> virtual_ticks{0};

// The waits skipped in virtual time; the index of the first one each scope reports.
struct wait_log {
  std::mutex mutex;
  std::vector<std::chrono::duration<double>> waits;
};
wait_log& skipped_waits() {
  static detail::immortal<wait_log> log;  // calls may run during exit
  static const bool held = (detail::hold_across_fork(log.get().mutex), true);
  (void)held;
  return log.get();
}
[[maybe_unused]] const bool skipped_waits_made_at_load = (skipped_waits(), true);  // see fork_safety.hpp
}  // namespace

virtual_clock::time_point virtual_clock::now() noexcept {
  return time_point(duration(virtual_ticks.load(std::memory_order_acquire)));
}

std::uint64_t detail::virtual_time_seed() noexcept { return seed_in_effect.load(std::memory_order_acquire); }

void detail::skip_virtual_wait(std::chrono::duration<double> wait) noexcept {
  // Saturated like every wait a driver performs (at about a century).
  const double s = std::min(std::max(wait.count(), 0.0), 100.0 * 365 * 24 * 3600);
  virtual_ticks.fetch_add(static_cast<std::int64_t>(std::ceil(s * 1e9)), std::memory_order_acq_rel);
  try {
    wait_log& log = skipped_waits();
    std::lock_guard lock(log.mutex);
    log.waits.push_back(wait);
  } catch (...) {
    // Out of memory: the schedule misses one entry; the call itself is unaffected.
  }
}

testing_scope::testing_scope(unsigned attempts, bool cap) noexcept
    : previous_(global_config_bits.load(std::memory_order_acquire) & testing_mask),
      previous_seed_(seed_in_effect.load(std::memory_order_acquire)) {
  store_testing_bits(testing_bits(true, attempts, cap) | scope_bits);
}

testing_scope::testing_scope(virtual_time_t /*tag*/, std::uint64_t seed) noexcept
    : previous_(global_config_bits.load(std::memory_order_acquire) & testing_mask),
      previous_seed_(seed_in_effect.load(std::memory_order_acquire)) {
  {
    wait_log& log = skipped_waits();
    std::lock_guard lock(log.mutex);
    first_wait_ = log.waits.size();
  }
  virtual_ = true;
  seed_in_effect.store(seed, std::memory_order_release);
  store_testing_bits(global_config::virtual_time_bit | scope_bits);
}

testing_scope& testing_scope::log(bool on) noexcept {
  if (on)
    global_config_bits.fetch_and(~global_config::quiet_logs_bit, std::memory_order_acq_rel);
  else
    global_config_bits.fetch_or(global_config::quiet_logs_bit, std::memory_order_acq_rel);
  return *this;
}

testing_scope::~testing_scope() {
  store_testing_bits(previous_);
  seed_in_effect.store(previous_seed_, std::memory_order_release);
  if (virtual_ && (previous_ & global_config::virtual_time_bit) == 0) {
    // The outermost virtual-time scope ended: nobody can ask for the schedule any more.
    wait_log& log = skipped_waits();
    std::lock_guard lock(log.mutex);
    log.waits.clear();
  }
}

std::vector<std::chrono::duration<double>> testing_scope::waits() const {
  if (!virtual_) return {};
  wait_log& log = skipped_waits();
  std::lock_guard lock(log.mutex);
  return {log.waits.begin() + static_cast<std::ptrdiff_t>(std::min(first_wait_, log.waits.size())), log.waits.end()};
}

STAMINA_NAMESPACE_END
