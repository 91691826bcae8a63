#ifndef STAMINA_GLOBAL_HPP
#define STAMINA_GLOBAL_HPP

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stamina/detail/namespace.hpp>
#include <vector>

STAMINA_NAMESPACE_BEGIN

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

/// The clock of virtual time (`testing_scope(stamina::virtual_time)`): it starts at 0 and moves only
/// when a retrying call skips a wait in virtual time, by that wait. A test reads it to assert
/// how long its code would have waited, without waiting. Thread-safe.
struct virtual_clock {
  using rep = std::int64_t;                                   ///< nanoseconds
  using period = std::nano;                                   ///< nanoseconds
  using duration = std::chrono::nanoseconds;                  ///< its duration
  using time_point = std::chrono::time_point<virtual_clock>;  ///< its time point
  static constexpr bool is_steady = true;                     ///< it never goes back
  /// Now, in virtual time.
  static time_point now() noexcept;
};

/// The tag that selects virtual time: `stamina::testing_scope scope(stamina::virtual_time, seed);`
struct virtual_time_t {
  explicit virtual_time_t() = default;
};
/// See virtual_time_t.
inline constexpr virtual_time_t virtual_time{};

/// For tests, a scope with a process-wide retry mode that is restored on destruction (also
/// during unwinding):
/// - `testing_scope(attempts, cap)`: testing mode, as `set_testing`: waits are zero, the
///   `timeout` is ignored and attempts are forced to `attempts` (or capped, with `cap`).
/// - `testing_scope(stamina::virtual_time, seed)`: the policies apply as written (attempts, waits,
///   deadline), but no call sleeps: each wait is skipped at once and advances `virtual_clock`
///   and the call's own elapsed time by exactly the wait; every call's jitter is drawn from
///   `seed`, so the schedule is the same on every run, and `waits()` lists it.
///
/// Both turn default throttling off, and quiet the default logging hooks (a test suite's
/// retries are not news; `log()` turns them back on for the scope). Scopes nest; like any
/// save-and-restore guard of a process-wide setting, overlapping scopes on different threads do
/// not nest and leave whichever state was restored last.
class testing_scope {
 public:
  /// Turns testing mode on with `attempts` (and `cap`), remembering the previous state.
  explicit testing_scope(unsigned attempts = 1, bool cap = false) noexcept;
  /// Virtual time with a fixed jitter seed (see above).
  explicit testing_scope(virtual_time_t /*tag*/, std::uint64_t seed = 1) noexcept;
  ~testing_scope();
  testing_scope(const testing_scope&) = delete;
  testing_scope& operator=(const testing_scope&) = delete;

  /// The waits skipped in virtual time since this scope began, in the order they were
  /// scheduled, by every call of the process (empty outside virtual time).
  std::vector<std::chrono::duration<double>> waits() const;

  /// Whether the default logging hooks write their lines within this scope (default: no).
  testing_scope& log(bool on = true) noexcept;

 private:
  std::uint64_t previous_;
  std::uint64_t previous_seed_ = 0;
  std::size_t first_wait_ = 0;
  bool virtual_ = false;
};

namespace detail {
// Virtual time: the jitter seed every call uses (0 = random), and a skipped wait's bookkeeping.
std::uint64_t virtual_time_seed() noexcept;
void skip_virtual_wait(std::chrono::duration<double> wait) noexcept;
}  // namespace detail

STAMINA_NAMESPACE_END

#endif
