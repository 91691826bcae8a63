#ifndef STAMINA_FALLBACK_HPP
#define STAMINA_FALLBACK_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/failure.hpp>
#include <stamina/give_up_reason.hpp>

#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN

/// What a fallback is told about the call it stands in for.
struct give_up_info {
  /// Why the call gave up (never `cancelled`: a cancelled call is not replaced).
  give_up_reason reason = give_up_reason::attempts_exhausted;
  /// Attempts sent to the dependency, the last one included; 0 when an open breaker or the
  /// throttle let none through.
  unsigned attempts = 0;
  /// The failure the call would have delivered, in the form it would have had: the last
  /// attempt's, or `stamina::error::throttled`, `circuit_open`, `deadline_exceeded` or
  /// `attempt_timeout` when that is what it would have completed with (`last.error()` gives the code whatever the
  /// form); for a result that `on_result` retried, `stamina::error::retried_result`.
  failure last{stamina::error_code()};
};

/// A substitute for the result of a call that gives up: passed to `retry`, `async_retry` or
/// `async_hedge` after the operation, it is called instead of delivering the failure, and what
/// it returns is delivered as the call's success.
///
/// `fn` is called as `fn(const give_up_info&)` or `fn()`, once, on the thread and executor the
/// call completes on, and returns what a success returns: for `retry`, what `f()` returns; for
/// the asynchronous calls, what `co_await` of the call returns (`T` for `awaitable<T>`; for an
/// `op(token)` whose signature is `void(error_code, V)`, a `V`; `void` when the signature
/// carries no value; a `std::tuple` when it carries several).
///
/// It replaces every give-up except a cancelled call (a caller that cancels wants its call to
/// end, not a substitute): an exhausted call, a deadline, a failure `on` rejects, an exhausted
/// budget, a throttle or an open breaker. It may throw: `retry`, and `async_retry` awaited with
/// `use_awaitable`, propagate the exception; otherwise (`async_hedge`, other completion tokens)
/// the call completes with it as its failure, as with `op` throwing when called.
template <class Fn>
class fallback {
 public:
  /// Keeps `fn` (moved or copied into the call).
  explicit fallback(Fn fn) noexcept(std::is_nothrow_move_constructible_v<Fn>) : fn_(std::move(fn)) {}

  /// Calls the function with `info`, or with nothing if it takes no argument, and converts what
  /// it returns to `R`.
  template <class R>
  R substitute(const give_up_info& info) {
    static_assert(std::is_invocable_v<Fn&, const give_up_info&> || std::is_invocable_v<Fn&>,
                  "stamina::fallback: the function must be callable as fn(const stamina::give_up_info&) or fn()");
    if constexpr (std::is_invocable_v<Fn&, const give_up_info&>)
      return converted<R, std::invoke_result_t<Fn&, const give_up_info&>>([&] { return fn_(info); });
    else if constexpr (std::is_invocable_v<Fn&>)
      return converted<R, std::invoke_result_t<Fn&>>([&] { return fn_(); });
  }

 private:
  template <class R, class Returned, class Call>
  static R converted(Call&& call) {
    static_assert(std::is_void_v<R> ? std::is_void_v<Returned> : std::is_convertible_v<Returned, R>,
                  "stamina::fallback: the function must return what the call returns on success (for async calls, "
                  "what co_await of the call returns)");
    if constexpr (std::is_void_v<R>)
      (void)call();
    else if constexpr (std::is_convertible_v<Returned, R>)
      return R(call());
  }

  Fn fn_;
};

template <class Fn>
fallback(Fn) -> fallback<Fn>;

namespace detail {

struct no_fallback {};  // a call without one

template <class T>
struct is_fallback : std::false_type {};
template <class Fn>
struct is_fallback<fallback<Fn>> : std::true_type {};

// The one rule, for every driver: a fallback stands in for every give-up but a cancelled call.
constexpr bool falls_back(const std::optional<give_up_reason>& reason) noexcept {
  return reason.has_value() && *reason != give_up_reason::cancelled;
}

// An async operation and the fallback of its call, travelling together through the drivers
// (which know of it through `with_fallback`); it is called exactly as the operation is.
template <class Op, class Fn>
class fallback_op {
 public:
  fallback_op(Op op, fallback<Fn> fb) : op_(std::move(op)), fallback_(std::move(fb)) {}
  template <class... Args>
  requires std::invocable<Op&, Args...>
  decltype(auto) operator()(Args&&... args) { return op_(std::forward<Args>(args)...); }
  fallback<Fn>& get_fallback() noexcept { return fallback_; }

 private:
  Op op_;
  fallback<Fn> fallback_;
};

template <class Op, class Fn>
fallback_op<Op, Fn> with_fallback_op(Op op, const fallback<Fn>& fb) {
  return fallback_op<Op, Fn>(std::move(op), fb);
}
template <class Op, class Fn>
fallback_op<Op, Fn> with_fallback_op(Op op, fallback<Fn>&& fb) {
  return fallback_op<Op, Fn>(std::move(op), std::move(fb));
}

template <class Op>
inline constexpr bool with_fallback = false;
template <class Op, class Fn>
inline constexpr bool with_fallback<fallback_op<Op, Fn>> = true;

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
