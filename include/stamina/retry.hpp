#ifndef STAMINA_RETRY_HPP
#define STAMINA_RETRY_HPP

#include <stamina/attempt_context.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/error.hpp>
#include <stamina/fallback.hpp>
#include <stamina/retry_policy.hpp>

#include <stamina/detail/system.hpp>
#if !defined(STAMINA_STANDALONE_ASIO)
#include <boost/system/result.hpp>
#endif

#include <cassert>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <tuple>
#include <type_traits>

// A thread cancelled (pthread_cancel) while in an attempt unwinds with abi::__forced_unwind,
// which must be rethrown: a catch (...) that swallows it aborts the process. libstdc++ only.
#if defined(__GLIBCXX__) && __has_include(<cxxabi.h>)
#include <cxxabi.h>
#define STAMINA_DETAIL_LET_FORCED_UNWIND_PASS \
  catch (abi::__forced_unwind&) {             \
    throw;                                    \
  }
#else
#define STAMINA_DETAIL_LET_FORCED_UNWIND_PASS
#endif

// The plain call's path is forced inline at the call site of `retry(policy, f)`, where the
// registers it keeps around the attempt are already the caller's (a success without a deadline
// counted 37 instructions instead of 63 when this was measured; 23 now). GCC refuses to
// force-inline into a caller compiled for a narrower target (e.g.
// `target("general-regs-only")`), or around a recursive callable that is always_inline itself:
// defining STAMINA_NO_FORCE_INLINE (for the whole program) makes it an ordinary inline function.
#if defined(STAMINA_NO_FORCE_INLINE)
#define STAMINA_DETAIL_FORCE_INLINE inline
#else
#define STAMINA_DETAIL_FORCE_INLINE [[gnu::always_inline]] inline
#endif

STAMINA_NAMESPACE_BEGIN

namespace detail {

// What a blocking call's function returns: f(), or f(ctx) for a function that takes the
// attempt's context (the form without it wins when both exist).
template <class F>
struct sync_op_result {};
template <class F>
requires std::is_invocable_v<F&>
struct sync_op_result<F> {
  using type = std::invoke_result_t<F&>;
};
template <class F>
requires(!std::is_invocable_v<F&> && std::is_invocable_v<F&, const attempt_context&>) struct sync_op_result<F> {
  using type = std::invoke_result_t<F&, const attempt_context&>;
};
template <class F>
using sync_op_result_t = typename sync_op_result<std::remove_reference_t<F>>::type;

// A blocking function that takes the attempt's context, called as f(): the protocol makes the
// context of each attempt.
template <class F, class Clock>
struct context_function {
  F& f;
  retry_protocol* call = nullptr;
  const stopwatch<Clock>* clock = nullptr;
  attempt_scope scope{};
  decltype(auto) operator()() { return f(call->context(scope, clock->elapsed(), clock->origin())); }
};
// How a synchronous result says "failed".
template <class R>
struct sync_result {
  static constexpr bool is_error_value = false;  // failures are exceptions
};
template <>
struct sync_result<stamina::error_code> {
  using values = std::tuple<>;
  template <class Fn>
  static decltype(auto) with_value(const stamina::error_code& /*ec*/, Fn&& fn) {
    return fn();  // a success carries no value
  }
  static constexpr bool is_error_value = true;
  static bool failed(const stamina::error_code& ec) noexcept { return code_failed(ec); }
  static failure to_failure(const stamina::error_code& ec) noexcept { return failure(ec); }
  static stamina::error_code from_error(stamina::error_code ec) noexcept { return ec; }
};
#if !defined(STAMINA_STANDALONE_ASIO)  // Boost.System's result<T>; std has no equivalent in C++20
template <class T, class E>
struct sync_result<boost::system::result<T, E>> {
  using values = std::conditional_t<std::is_void_v<T>, std::tuple<>, std::tuple<T>>;
  // Calls fn with the success value (none for result<void>).
  template <class Fn>
  static decltype(auto) with_value(const boost::system::result<T, E>& r, Fn&& fn) {
    if constexpr (std::is_void_v<T>)
      return fn();
    else
      return fn(*r);
  }
  static_assert(std::is_same_v<E, stamina::error_code> || std::is_same_v<E, std::exception_ptr>,
                "stamina::retry supports result<T, error_code> and result<T, exception_ptr>");
  static constexpr bool is_error_value = true;
  static bool failed(const boost::system::result<T, E>& r) noexcept { return !r.has_value(); }
  static failure to_failure(const boost::system::result<T, E>& r) noexcept { return failure(r.error()); }
  static boost::system::result<T, E> from_error(stamina::error_code ec) {
    if constexpr (std::is_same_v<E, std::exception_ptr>)
      return std::make_exception_ptr(stamina::system_error(ec));
    else
      return ec;
  }
};
#endif

struct thread_sleeper {
  bool operator()(duration d) const {
    std::this_thread::sleep_for(to_clock_duration<std::chrono::steady_clock::duration>(d));
    return true;
  }
};

// Returns false as soon as stop is requested (then the wait is abandoned).
struct stoppable_sleeper {
  std::stop_token stop;
  bool operator()(duration d) const {
    if (stop.stop_requested()) return false;
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    return !cv.wait_for(lock, stop, to_clock_duration<std::chrono::steady_clock::duration>(d), [] { return false; }) &&
           !stop.stop_requested();
  }
};

// One attempt of a blocking call and what it left: the value or the exception (f() returns T
// and throws), or the returned error value (f() returns error_code or result<T>).
template <class R, bool ErrorValue = sync_result<std::remove_cvref_t<R>>::is_error_value>
struct sync_attempt {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
  // What an on_result predicate is shown.
  using values = std::conditional_t<std::is_void_v<R>, std::tuple<>, std::tuple<std::decay_t<R>>>;

  template <class F>
  [[gnu::always_inline]] bool run(F& f) {
    try {
      if constexpr (std::is_void_v<R>) {
        f();
        value.emplace(true);
      } else {
        value.emplace(f());
      }
      if (error) [[unlikely]]
        error = nullptr;  // this attempt's outcome replaces the last one's
      return true;
    }
    STAMINA_DETAIL_LET_FORCED_UNWIND_PASS
    catch (...) {
      error = std::current_exception();
      return false;
    }
  }
  // A plain call's first attempt: its value returned as is (no copy kept), or, if it threw, what
  // `on_failure(attempt)` returns. The exception is taken out of the handler before the call
  // goes on, so the retries do not run inside a catch block. It is kept in a union until then:
  // the path that returns the value then has nothing to destroy (an exception_ptr made before
  // the attempt would be tested after it, once its address is taken).
  template <class F, class OnFailure>
  [[gnu::always_inline]] static R first(F& f, OnFailure&& on_failure) {
    union thrown_room {
      thrown_room() noexcept {}
      ~thrown_room() {}
      std::exception_ptr error;
    } thrown;
    try {
      return f();
    }
    STAMINA_DETAIL_LET_FORCED_UNWIND_PASS
    catch (...) {
      ::new (static_cast<void*>(&thrown.error)) std::exception_ptr(std::current_exception());
    }
    sync_attempt failed;
    failed.error = std::move(thrown.error);
    thrown.error.~exception_ptr();
    return on_failure(failed);
  }
  failure what() const noexcept { return failure(error); }
  // What a give-up would deliver, as a fallback is told of it.
  failure delivered_failure() const noexcept {
    return error ? failure(error) : failure(make_error_code(stamina::error::retried_result));
  }
  // The success, shown to the policy's on_result.
  template <class Elapsed>
  action succeeded(retry_protocol& call, const Elapsed& elapsed) {
    if constexpr (std::is_void_v<R>)
      return call.attempt_succeeded(elapsed, false);
    else
      return call.attempt_succeeded(elapsed, false, *value);
  }
  template <class Policy>
  static void check_values(const Policy& policy) {
    if constexpr (std::is_void_v<R>)
      check_result_values<>(policy.result_classifier());
    else
      check_result_values<R>(policy.result_classifier());
  }
  R take() {
    if constexpr (!std::is_void_v<R>) return std::move(*value);
  }
  // The last attempt's result: a success that on_result retried, or the same exception object.
  R give_up() {
    if (!error) return take();
    std::rethrow_exception(error);
  }
  [[noreturn]] R give_up(stamina::error_code ec) { throw stamina::system_error(ec); }
};

template <class R>
struct sync_attempt<R, true> {
  using traits = sync_result<std::remove_cvref_t<R>>;
  using values = typename traits::values;  // what an on_result predicate is shown
  std::optional<R> last;

  template <class F>
  [[gnu::always_inline]] bool run(F& f) {
    last.emplace(f());
    return !traits::failed(*last);
  }
  // A plain call's first attempt: its value returned as is when it did not fail, or what
  // `on_failure(attempt)` returns.
  template <class F, class OnFailure>
  [[gnu::always_inline]] static R first(F& f, OnFailure&& on_failure) {
    R value = f();
    if (!traits::failed(value)) [[likely]]
      return value;
    sync_attempt failed;
    failed.last.emplace(std::move(value));
    return on_failure(failed);
  }
  failure what() const noexcept { return traits::to_failure(*last); }
  failure delivered_failure() const noexcept {
    return traits::failed(*last) ? what() : failure(make_error_code(stamina::error::retried_result));
  }
  template <class Elapsed>
  action succeeded(retry_protocol& call, const Elapsed& elapsed) {
    return traits::with_value(*last, [&](const auto&... v) { return call.attempt_succeeded(elapsed, false, v...); });
  }
  template <class Policy>
  static void check_values(const Policy& policy) {
    check(policy, static_cast<typename traits::values*>(nullptr));
  }
  template <class Policy, class... V>
  static void check(const Policy& policy, std::tuple<V...>* /*values*/) {
    check_result_values<V...>(policy.result_classifier());
  }
  R take() { return std::move(*last); }
  R give_up() { return std::move(*last); }
  R give_up(stamina::error_code ec) { return traits::from_error(ec); }
};

// The stop token a sleeper honours, or null.
template <class Sleeper>
const std::stop_token* stop_of(const Sleeper& sleep) noexcept {
  if constexpr (requires {
                  { sleep.stop } -> std::convertible_to<const std::stop_token&>;
                })
    return &sleep.stop;
  else
    return nullptr;
}

// A blocking call's wait for a place under the concurrency limit: the thread blocks, at most
// until the call's deadline, or until the sleeper's stop is requested.
template <class Sleeper, class Clock>
action wait_for_place(retry_protocol& call, const action& queued, const Sleeper& sleep, const stopwatch<Clock>& clock) {
  const std::stop_token* stop = stop_of(sleep);
  std::uint32_t ticket = 0;
  const bool granted = call.state().limit()->wait(queued.limit(), stop, &ticket);
  return call.place_wait_finished(clock.elapsed(), granted, stop != nullptr && stop->stop_requested(), ticket);
}

// Performs the protocol's actions until the call ends. Out of line, so that the success path
// of retry_with stays small enough to inline.
template <class Clock, class Sleeper, class F, class Attempt, class Fallback>
[[gnu::noinline]] std::invoke_result_t<F&> perform_actions(retry_protocol& call, action next,
                                                           const stopwatch<Clock>& clock, Sleeper& sleep, F& f,
                                                           Attempt& last, Fallback* fb) {
  for (;;) {
    switch (next.kind) {
      case action_kind::attempt:
        next = last.run(f) ? last.succeeded(call, [&clock] { return clock.elapsed(); })
                           : call.attempt_failed(last.what(), clock.elapsed(), false);
        break;
      case action_kind::wait:
        next = call.wait_finished(clock.elapsed(), !sleep(next.wait()));
        break;
      case action_kind::queue:
        next = wait_for_place(call, next, sleep, clock);
        break;
      case action_kind::deliver:
        return last.take();
      case action_kind::give_up:
        if constexpr (!std::is_same_v<Fallback, no_fallback>) {
          if (falls_back(call.gave_up())) {
            const bool sent = next.result == give_up_result::last_attempt;
            const give_up_info info{*call.gave_up(), call.sent(),
                                    sent ? last.delivered_failure() : failure(give_up_code(next.result))};
            return fb->template substitute<std::invoke_result_t<F&>>(info);
          }
        }
        // The last result the dependency produced (an interrupted wait too: a blocking call has
        // no "aborted" value); `throttled` only when no attempt was ever sent, and
        // `operation_aborted` when a stop came before any was (a wait for a place).
        if (next.result == give_up_result::last_attempt || (next.result == give_up_result::aborted && call.sent() > 0))
          return last.give_up();
        return last.give_up(give_up_code(next.result));
    }
  }
}

// What the blocking drivers cannot honour (an attempt time limit: a blocking attempt cannot be
// interrupted), rejected before the first attempt.
[[noreturn]] void throw_blocking_attempt_timeout(const char* who);

// A plain call whose first attempt failed: the machine continues from there.
template <class Clock, class Sleeper, class F, class Attempt, class Fallback>
[[gnu::noinline]] std::invoke_result_t<F&> retry_after_first_failure(const retry_policy& policy, global_config switches,
                                                                     caller where, const stopwatch<Clock>& clock,
                                                                     Sleeper& sleep, F& f, Attempt& last, Fallback* fb,
                                                                     std::uint32_t breaker_ticket) {
  call_state state(policy.call_spec(), switches, where.or_null());
  state.first_attempt_admitted(breaker_ticket);
  retry_protocol call(policy, state, retry_protocol::first_attempt_sent);
  return perform_actions(call, call.attempt_failed(last.what(), clock.elapsed(), false), clock, sleep, f, last, fb);
}

// retry_with_state for f(): the first attempt at once when nothing has to be decided first.
template <class Clock, class Sleeper, class F, class Attempt, class Fallback>
std::invoke_result_t<F&> retry_without_context_from(const retry_policy& policy, const call_state& state,
                                                    const stopwatch<Clock>& clock, Sleeper& sleep, F& f, Attempt& last,
                                                    Fallback* fb) {
  if (!retry_protocol::sends_first_attempt_at_once(policy, state)) {
    retry_protocol call(policy, state);
    return perform_actions(call, call.start(duration(0), [&clock] { return clock.origin(); }), clock, sleep, f, last,
                           fb);
  }
  const bool succeeded = last.run(f);
  if (retry_protocol::needs_machine_after(succeeded, state)) {
    retry_protocol call(policy, state, retry_protocol::first_attempt_sent);
    const action next = succeeded ? last.succeeded(call, [&clock] { return clock.elapsed(); })
                                  : call.attempt_failed(last.what(), clock.elapsed(), false);
    return perform_actions(call, next, clock, sleep, f, last, fb);
  }
  return last.take();
}

// A call that is not plain (call_state::plain_success): its state is made before the first
// attempt. Out of line, the state made here too, so that the plain call's path stays small.
template <class Clock, class Sleeper, class F, class Fallback>
[[gnu::noinline]] sync_op_result_t<F> retry_with_state(const retry_policy& policy, const call_state_spec& spec,
                                                       global_config switches, Sleeper& sleep, F& f,
                                                       const caller* where, Fallback* fb) {
  const call_state state(spec, switches, where);
  using attempt_type = sync_attempt<sync_op_result_t<F>>;
  if (state.judges_results()) [[unlikely]]
    attempt_type::check_values(policy);
  const stopwatch<Clock> clock(retry_protocol::needs_clock(policy, state), retry_protocol::precise_clock(policy));
  attempt_type last;
  if constexpr (!std::is_invocable_v<F&>) {  // f(ctx): every attempt gets its context
    retry_protocol call(policy, state);
    context_function<F, Clock> with_context{f, &call, &clock};
    return perform_actions(call, call.start(duration(0), [&clock] { return clock.origin(); }), clock, sleep,
                           with_context, last, fb);
  } else {
    return retry_without_context_from<Clock>(policy, state, clock, sleep, f, last, fb);
  }
}

// Every call but the plain one: the attempt time limit's rejection, the closed breaker's path
// and the call state's. Out of line, so that the plain call's path, inline at the caller, holds
// nothing of them.
template <class Clock, class Sleeper, class F, class Fallback>
[[gnu::noinline]] sync_op_result_t<F> retry_not_plain(const retry_policy& policy, global_config switches,
                                                      Sleeper& sleep, F& f, caller where, Fallback* fb) {
  if (policy.attempt_timeout()) [[unlikely]]
    throw_blocking_attempt_timeout("stamina::retry");
  const call_state_spec& spec = policy.call_spec();
  if constexpr (std::is_invocable_v<F&>) {
    // A closed circuit breaker as the one protection: its word and the success's report are two
    // inline reads each.
    std::uint32_t ticket = 0;
    if (retry_protocol::may_pass_closed_breaker(policy, switches) &&
        call_state::closed_breaker_admits(spec, switches, ticket)) {
      using attempt_type = sync_attempt<std::invoke_result_t<F&>>;
      const stopwatch<Clock> clock(retry_protocol::needs_clock(policy, switches));
      // The value is taken out of the attempt after the breaker heard of it, outside the
      // attempt's handler (a copy or move that throws is the caller's, as on the long way: the
      // attempt is told once).
      attempt_type last;
      if (last.run(f)) [[likely]] {
        call_state::closed_breaker_heard_success(spec, ticket);
        return last.take();
      }
      return retry_after_first_failure(policy, switches, where, clock, sleep, f, last, fb, ticket);
    }
  }
  return retry_with_state<Clock>(policy, spec, switches, sleep, f, where.or_null(), fb);
}

// The blocking driver: performs the actions of the retry protocol, sleeping the thread for
// waits. Its clock and its way of sleeping are injectable for tests; `Sleeper(duration) ->
// bool` returns false when the wait was interrupted. The common call (no protection, budget,
// on_result, attempt limit or inherited deadline, default throttles healthy, an `f` that takes
// no context) sends its first attempt with nothing made but the stopwatch, inline at the
// caller; a failure makes the call state then. The rule is the protocol's, as for the async
// drivers (sends_plain_first_attempt); every other call is retry_not_plain's.
template <class Clock, class Sleeper, class F, class Fallback = no_fallback>
STAMINA_DETAIL_FORCE_INLINE sync_op_result_t<F> retry_with(const retry_policy& policy, Sleeper&& sleep, F& f,
                                                           const caller* where = nullptr, Fallback* fb = nullptr) {
  const global_config switches = load_global_config();
  if constexpr (std::is_invocable_v<F&>) {
    if (retry_protocol::sends_plain_first_attempt(policy, switches)) [[likely]] {
      using attempt_type = sync_attempt<std::invoke_result_t<F&>>;
      const stopwatch<Clock> clock(retry_protocol::needs_clock(policy, switches));
      return attempt_type::first(f, [&](attempt_type& last) {
        return retry_after_first_failure(policy, switches, caller::of(where), clock, sleep, f, last, fb, 0);
      });
    }
  }
  return retry_not_plain<Clock>(policy, switches, sleep, f, caller::of(where), fb);
}

}  // namespace detail

/// Calls `f()` until it succeeds or the policy gives up, sleeping the calling thread between
/// attempts. `f` may
/// - return `T` (or `void`) and throw on failure: the result is returned; on give-up the last
///   exception object is rethrown unchanged;
/// - return `stamina::error_code` or (with Boost) `boost::system::result<T>`: a failed value is a
///   failure; on give-up the last value is returned (nothing is thrown).
/// `f` may take a `const stamina::attempt_context&` (`f(ctx)`): the attempt's number, time
/// left, call id and name, for an outgoing request's headers, and the way to make a nested call
/// (`retry_policy::within`).
/// Failures the policy's `on` rejects are delivered at once. A policy with `on_result` is shown
/// each success value (the returned `T`, or the value of a `result<T>`). A policy with
/// `attempt_timeout` is rejected with `std::invalid_argument`: a blocking call cannot be
/// interrupted.
template <class F>
STAMINA_DETAIL_FORCE_INLINE auto retry(const retry_policy& policy, F&& f, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  return detail::retry_with<std::chrono::steady_clock>(policy, detail::thread_sleeper{}, f, &where);
}

/// With a policy that still knows its `on_result` predicate's types (`result_typed`): the same
/// call, the predicate checked against `f`'s result at compile time.
template <class Values, class F>
auto retry(const result_typed<retry_policy, Values>& policy, F&& f, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  static_assert(std::is_same_v<typename detail::sync_attempt<detail::sync_op_result_t<F>>::values, Values>,
                "stamina::retry: the on_result predicate's parameter types differ from the function's result");
  return retry(static_cast<const retry_policy&>(policy), std::forward<F>(f), where);
}

/// @cond
// A predicate or anything else passed where a policy goes gets a one-line reason.
template <class Policy, class... Rest>
requires(!std::is_convertible_v<Policy, const retry_policy&>) void retry(Policy&& /*policy*/, Rest&&... /*rest*/) {
  static_assert(
      detail::always_false<Policy>,
      "stamina::retry: the first argument must be a retry_policy or a retry_on (e.g. stamina::on_error(...)); "
      "wrap a predicate as stamina::retry_on(pred)");
}
/// @endcond

/// Same, but a stop request on `stop` ends the current wait at once and the last failure is
/// delivered (the attempt in progress, if any, is not interrupted).
template <class F>
auto retry(const retry_policy& policy, std::stop_token stop, F&& f, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  return detail::retry_with<std::chrono::steady_clock>(policy, detail::stoppable_sleeper{std::move(stop)}, f, &where);
}

/// With a fallback: the same call, but a give-up (except by a stop request) returns what
/// `fb` returns instead of the last failure (see `stamina::fallback`).
template <class F, class Fn>
auto retry(const retry_policy& policy, F&& f, fallback<Fn> fb, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  return detail::retry_with<std::chrono::steady_clock>(policy, detail::thread_sleeper{}, f, &where, &fb);
}

/// With a `result_typed` policy and a fallback.
template <class Values, class F, class Fn>
auto retry(const result_typed<retry_policy, Values>& policy, F&& f, fallback<Fn> fb, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  static_assert(std::is_same_v<typename detail::sync_attempt<detail::sync_op_result_t<F>>::values, Values>,
                "stamina::retry: the on_result predicate's parameter types differ from the function's result");
  return retry(static_cast<const retry_policy&>(policy), std::forward<F>(f), std::move(fb), where);
}

/// With a stop token and a fallback. A give-up because of the stop request delivers the last
/// failure, as without a fallback.
template <class F, class Fn>
auto retry(const retry_policy& policy, std::stop_token stop, F&& f, fallback<Fn> fb, detail::caller where = {})
    -> detail::sync_op_result_t<F> {
  return detail::retry_with<std::chrono::steady_clock>(policy, detail::stoppable_sleeper{std::move(stop)}, f, &where,
                                                       &fb);
}

STAMINA_NAMESPACE_END

#undef STAMINA_DETAIL_LET_FORCED_UNWIND_PASS
#undef STAMINA_DETAIL_FORCE_INLINE

#endif
