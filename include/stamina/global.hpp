#ifndef STAMINA_GLOBAL_HPP
#define STAMINA_GLOBAL_HPP

#include <atomic>
#include <cstdint>

namespace stamina {

namespace detail {

// The process-wide switches, packed into one word so a retrying call reads them with a
// single relaxed load and always sees a consistent combination.
struct global_config {
  static constexpr std::uint64_t inactive_bit = 1;  // set = retries disabled
  static constexpr std::uint64_t testing_bit = 2;
  static constexpr std::uint64_t cap_bit = 4;
  static constexpr std::uint64_t no_default_throttle_bit = 8;  // set = default throttles off

  std::uint64_t bits;

  bool active() const noexcept { return (bits & inactive_bit) == 0; }
  bool testing() const noexcept { return (bits & testing_bit) != 0; }
  bool cap() const noexcept { return (bits & cap_bit) != 0; }
  /// Policies without a throttle of their own use their name's default throttle (not in
  /// testing mode, and not when turned off with set_default_throttling(false)).
  bool default_throttling() const noexcept { return (bits & (no_default_throttle_bit | testing_bit)) == 0; }
  unsigned testing_attempts() const noexcept { return static_cast<unsigned>(bits >> 32); }
};

inline std::atomic<std::uint64_t> global_config_bits{0};

inline global_config load_global_config() noexcept { return {global_config_bits.load(std::memory_order_acquire)}; }

}  // namespace detail

/// Globally enable or disable retrying (thread-safe). When inactive, every call runs its
/// operation exactly once: no waits, no hooks, no budget accounting.
void set_active(bool active) noexcept;
bool is_active() noexcept;

/// Testing mode (thread-safe): all waits are zero, `timeout` is ignored and the number of
/// attempts is forced to `attempts` (or, with `cap`, limited to at most `attempts`).
/// `attempts == 0` is treated as 1.
void set_testing(bool testing, unsigned attempts = 1, bool cap = false) noexcept;
bool is_testing() noexcept;

/// Default throttling (thread-safe; on by default): a policy that was given no
/// `adaptive_throttle` of its own (`retry_policy::throttle`) uses the process-wide one of its
/// `name` (`stamina::default_throttle(name)`). Testing mode turns it off too.
void set_default_throttling(bool on) noexcept;
bool is_default_throttling() noexcept;

/// Enables testing mode for a scope and restores the previous state (testing or not, and
/// its attempts and cap) on destruction, also during unwinding. Scopes nest; like any
/// save-and-restore guard of a process-wide setting, overlapping scopes on different threads
/// do not nest and leave whichever state was restored last.
class testing_scope {
 public:
  /// Turns testing mode on with `attempts` (and `cap`), remembering the previous state.
  explicit testing_scope(unsigned attempts = 1, bool cap = false) noexcept;
  ~testing_scope();
  testing_scope(const testing_scope&) = delete;
  testing_scope& operator=(const testing_scope&) = delete;

 private:
  std::uint64_t previous_;
};

}  // namespace stamina

#endif
