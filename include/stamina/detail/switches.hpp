#ifndef STAMINA_DETAIL_SWITCHES_HPP
#define STAMINA_DETAIL_SWITCHES_HPP

// The process-wide switches as one word (set by global.hpp's functions, read once per call by
// the call state).

#include <stamina/detail/namespace.hpp>

#include <atomic>
#include <cstdint>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// The process-wide switches, packed into one word so a retrying call reads them with a
// single relaxed load and always sees a consistent combination.
struct global_config {
  static constexpr std::uint64_t inactive_bit = 1;  // set = retries disabled
  static constexpr std::uint64_t testing_bit = 2;
  static constexpr std::uint64_t cap_bit = 4;
  static constexpr std::uint64_t no_default_throttle_bit = 8;  // set = default throttles off
  static constexpr std::uint64_t virtual_time_bit = 16;        // waits are skipped, on the virtual clock
  static constexpr std::uint64_t quiet_logs_bit = 32;          // the default logging hooks write nothing

  std::uint64_t bits;

  bool active() const noexcept { return (bits & inactive_bit) == 0; }
  bool testing() const noexcept { return (bits & testing_bit) != 0; }
  bool cap() const noexcept { return (bits & cap_bit) != 0; }
  bool virtual_time() const noexcept { return (bits & virtual_time_bit) != 0; }
  /// Policies without a throttle of their own use their name's default throttle (not in
  /// testing mode or virtual time, and not when turned off with set_default_throttling(false)).
  bool default_throttling() const noexcept {
    return (bits & (no_default_throttle_bit | testing_bit | virtual_time_bit)) == 0;
  }
  bool quiet_logs() const noexcept { return (bits & quiet_logs_bit) != 0; }
  unsigned testing_attempts() const noexcept { return static_cast<unsigned>(bits >> 32); }
};

inline std::atomic<std::uint64_t> global_config_bits{0};

inline global_config load_global_config() noexcept { return {global_config_bits.load(std::memory_order_acquire)}; }

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
