#ifndef STAMINA_ATTEMPT_CONTEXT_HPP
#define STAMINA_ATTEMPT_CONTEXT_HPP

// What an attempt knows of its call, for an operation that talks to another service: its
// number, the time left, the call's id and name — what goes into an outgoing request's headers
// so that the layers below neither outlive the caller nor multiply its retries.

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

namespace detail {
struct context_access;
}  // namespace detail

/// The context of one attempt, handed to an operation that asks for it: `retry(policy, f)` with
/// `f(const attempt_context&)`, `async_retry` and `async_hedge` with `op(const attempt_context&)`
/// (returning an awaitable) or `op(const attempt_context&, token)`, and `attempt::context()` of a
/// `retry_context`. The forms without a context are unchanged. (The attempts of a hedged call
/// run at once: each has its own context.)
///
/// Lifetime: the object belongs to the call and is valid until the attempt it describes has
/// completed (as a buffer handed to an Asio operation must stay valid); it is neither copyable
/// nor movable: take it by reference, and copy out the values you need beyond the attempt. The
/// name it returns lives as long as the policy the call was given.
///
/// A stamina call made inside the attempt (a middle layer calling the next service in-process)
/// is given the context through `retry_policy::within(ctx)` (or `hedging_policy::within(ctx)`):
/// it inherits the deadline, and the outer call does not retry an attempt that made such a call
/// (only the innermost call retries; see docs/layered-retries.md).
class attempt_context {
 public:
  attempt_context() = default;
  /// Not copyable: it refers to its call, which a copy could outlive. Read the values out.
  attempt_context(const attempt_context&) = delete;
  attempt_context& operator=(const attempt_context&) = delete;

  /// The attempt's number, from 1 (attempts the throttle held back included).
  unsigned attempt() const noexcept { return attempt_; }
  /// The time left before the call's deadline (its `timeout`, or the deadline it inherited if
  /// earlier), when this attempt started; nullopt when the call has no deadline (none, testing
  /// mode, or retrying inactive). Put it into an outgoing deadline header
  /// (`format_grpc_timeout`).
  std::optional<duration> remaining() const noexcept {
    return std::isinf(deadline_) ? std::nullopt : std::optional<duration>(duration(std::max(0.0, deadline_ - now_)));
  }
  /// The call's deadline on `Clock` (the call's clock: `steady_clock` unless a test gives the
  /// call another), or nullopt as for `remaining()`.
  /// A deadline beyond what the clock can hold saturates at its `time_point::max()`.
  template <class Clock = std::chrono::steady_clock>
  std::optional<typename Clock::time_point> deadline() const {
    using clock_duration = typename Clock::duration;
    using rep = typename clock_duration::rep;
    if (std::isinf(deadline_)) return std::nullopt;
    const double ticks = std::chrono::duration_cast<std::chrono::duration<double, typename clock_duration::period>>(
                             std::chrono::duration<double>(deadline_))
                             .count();
    if (ticks >= static_cast<double>(std::numeric_limits<rep>::max())) return Clock::time_point::max();
    if (ticks <= static_cast<double>(std::numeric_limits<rep>::lowest())) return Clock::time_point::min();
    return typename Clock::time_point(clock_duration(static_cast<rep>(ticks)));
  }
  /// A process-wide id of the call (the same for all its attempts), as hooks report it.
  std::uint64_t call_id() const noexcept { return call_id_; }
  /// The policy's name (its `name(...)`, else the call's place in the code).
  std::string_view policy_name() const noexcept { return name_; }

 private:
  friend struct detail::context_access;

  unsigned attempt_ = 0;
  std::uint64_t call_id_ = 0;
  std::string_view name_;
  // On the call's clock, in seconds since its epoch: when the attempt started, and the
  // deadline (+inf: none).
  double now_ = 0;
  double deadline_ = std::numeric_limits<double>::infinity();
  // Set when a stamina call was made within this attempt (retry_policy::within): the call
  // then does not retry the attempt's failure. Owned by the call.
  bool* nested_ = nullptr;
};

namespace detail {
// What a driver keeps for an op that takes a context: the context of its current attempt.
struct attempt_scope {
  attempt_context context;
};

// An inherited deadline (retry_policy::deadline, hedging_policy::deadline) in seconds since its
// clock's epoch, the form the protocols compare with the call's origin.
template <class Clock, class Dur>
double deadline_seconds(std::chrono::time_point<Clock, Dur> at) noexcept {
  static_assert(Clock::is_steady,
                "stamina: deadline(...) takes a time point of std::chrono::steady_clock (or of the steady test clock "
                "the call runs on); a system_clock time would be read as decades away");
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// The one place that writes a context and reads what a nested call takes from it, for the
// protocols that hand contexts out and the policies that inherit from them.
struct context_access {
  // Fills `c` for an attempt starting at `now` (seconds since the call clock's epoch) of a call
  // whose deadline is `left` seconds away (+inf: none; never negative in the context).
  static const attempt_context& fill(attempt_context& c, unsigned attempt, std::uint64_t call_id, std::string_view name,
                                     bool* nested, double now, double left) noexcept {
    c.attempt_ = attempt;
    c.call_id_ = call_id;
    c.name_ = name;
    c.nested_ = nested;
    c.now_ = now;
    c.deadline_ = std::isinf(left) ? left : now + std::max(0.0, left);
    return c;
  }
  // A call made within the attempt of `outer`: it inherits the deadline (only ever earlier), and
  // the outer call learns that this attempt made a nested call.
  static void inherit(double& deadline, const attempt_context& outer) noexcept {
    deadline = std::min(deadline, outer.deadline_);
    if (outer.nested_ != nullptr) std::atomic_ref<bool>(*outer.nested_).store(true, std::memory_order_relaxed);
  }
};
}  // namespace detail

STAMINA_NAMESPACE_END

#endif
