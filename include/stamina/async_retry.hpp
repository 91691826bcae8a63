#ifndef STAMINA_ASYNC_RETRY_HPP
#define STAMINA_ASYNC_RETRY_HPP

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/async_retry_op.hpp>
#include <stamina/detail/caller_coroutine.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/error.hpp>
#include <stamina/fallback.hpp>
#include <stamina/operation.hpp>
#include <stamina/retry_policy.hpp>

#include <stamina/detail/asio.hpp>

#include <chrono>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// Whether op() returns coroutines of another executor type than the awaiting caller's.
template <class Traits, class AwaitableExecutor>
constexpr bool foreign_awaitable() {
  if constexpr (Traits::is_awaitable)
    return !std::is_same_v<typename Traits::awaitable_executor, AwaitableExecutor>;
  else
    return false;
}

// The implementation behind stamina::async_retry, on any clock (tests use a virtual one with
// a stamina::net::wait_traits specialisation). The completion token alone chooses the driver:
// use_awaitable runs the caller-coroutine driver, every other token the composed operation.
template <class Clock, class ExecutorOrContext, class Op, class CompletionToken>
auto async_retry_with_clock(ExecutorOrContext&& ex_or_context, retry_policy&& policy, Op op, CompletionToken&& token,
                            const caller& where = {}) {
  using op_type = std::decay_t<Op>;
  constexpr bool known_form =
      awaitable_op<op_type> || token_op<op_type> || context_awaitable_op<op_type> || context_token_op<op_type>;
  static_assert(known_form,
                "stamina::async_retry: op must be callable as op() returning asio::awaitable<T>, or as op(token) "
                "starting one Asio operation with that token (either with a const stamina::attempt_context& first)");
  if constexpr (known_form) {
    using executor_type = std::decay_t<decltype(executor_of(ex_or_context))>;
    using traits = op_traits<op_type>;
    using signature = typename decayed_signature<typename traits::signature>::type;
    (void)signature_head<signature>{};
    executor_type ex = executor_of(ex_or_context);
    using token_type = std::decay_t<CompletionToken>;
    if (policy.result_classifier() != nullptr)
      check_values_of(policy.result_classifier(), static_cast<signature*>(nullptr));

    // Checked for every token, as before the drivers were told apart (the caller coroutine's
    // token attempts fill them in too).
    static_assert(rest_default_constructible<signature>::value,
                  "stamina::async_retry: the completion values after the first argument must be "
                  "default-constructible (a cancelled or timed-out call completes with them value-initialised)");
    if constexpr (rest_default_constructible<signature>::value) {
      // Only the driver the token chooses is instantiated (each is a few thousand functions).
      constexpr bool in_caller_coroutine = [] {
        if constexpr (is_use_awaitable<token_type>::value)
          // not when the op's coroutines cannot be awaited from this caller's
          return !foreign_awaitable<traits, typename is_use_awaitable<token_type>::executor_type>();
        else
          return false;
      }();
      if constexpr (in_caller_coroutine)
        return caller_coroutine<Clock, typename is_use_awaitable<token_type>::executor_type, executor_type, op_type,
                                signature>(ex, std::move(policy), std::move(op), where);
      else
        return stamina::net::async_initiate<CompletionToken, signature>(
            initiate_composed<retry_op, Clock, executor_type, signature>{ex, where}, token, std::move(policy),
            std::move(op));
    }
  }
}

// The public overloads take the policy by reference: a by-value parameter of a function called
// in a co_await expression lives in the awaiting coroutine's frame until the call completes (the
// caller destroys arguments at the end of the full expression), beside the call's own copy. A
// named policy then costs the awaiting frame nothing; a temporary one is there either way.
template <class ExecutorOrContext, class Op, class CompletionToken>
auto start_async_retry(ExecutorOrContext& ex, retry_policy&& policy, Op&& op, CompletionToken&& token,
                       const caller& where) {
  static_assert(!temporary_op_in_co_await<Op, CompletionToken>,
                "stamina::async_retry: g++ < 13 destroys a temporary op twice inside co_await: name the op first "
                "(auto op = ...; co_await stamina::async_retry(ex, policy, op);)");
  return detail::async_retry_with_clock<std::chrono::steady_clock>(
      ex, std::move(policy), std::decay_t<Op>(std::forward<Op>(op)), std::forward<CompletionToken>(token), where);
}

template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken>
auto start_async_retry(ExecutorOrContext& ex, retry_policy&& policy, Op&& op, Fallback&& fb, CompletionToken&& token,
                       const caller& where) {
  static_assert(!temporary_op_in_co_await<Op, CompletionToken>,
                "stamina::async_retry: g++ < 13 destroys a temporary op twice inside co_await: name the op first "
                "(auto op = ...; co_await stamina::async_retry(ex, policy, op);)");
  static_assert(!temporary_op_in_co_await<Fallback, CompletionToken>,
                "stamina::async_retry: g++ < 13 destroys a temporary fallback twice inside co_await: name it first "
                "(stamina::fallback fb(...); co_await stamina::async_retry(ex, policy, op, fb);)");
  return detail::async_retry_with_clock<std::chrono::steady_clock>(
      ex, std::move(policy),
      detail::with_fallback_op(std::decay_t<Op>(std::forward<Op>(op)), std::forward<Fallback>(fb)),
      std::forward<CompletionToken>(token), where);
}

}  // namespace detail

/// Runs `op` until it succeeds or `policy` gives up, waiting on a timer between attempts
/// (exponential backoff with jitter).
///
/// @param ex      An executor or execution context: where the call's timers are created and its
///                own intermediate steps are posted; awaitable attempts run on it.
/// @param policy  Copied into the operation (moved when it is a `retry_policy` rvalue) by the
///                time `async_retry` returns: it may change or go away afterwards. A
///                `retry_on` converts implicitly (all defaults).
/// @param op      Decay-copied; called once per attempt. Either
///                - `op()` returning `asio::awaitable<T, E>`: failures are exceptions; or
///                - `op(token)` starting one Asio operation with `token` before returning,
///                  whose completion signature begins with `error_code` or
///                  `std::exception_ptr`: failures are non-success first arguments. The token
///                  is single-use.
///                Either form may take a `const stamina::attempt_context&` first (`op(ctx)`,
///                `op(ctx, token)`): the attempt's number, time left, call id and name, valid
///                until the attempt completes; and the way to make a nested call
///                (`retry_policy::within`). Name the parameter's type, or declare the result
///                (`-> asio::awaitable<T>`): a generic lambda with a deduced result cannot be
///                told from a token op without compiling its body.
/// @param token   Any completion token; default `asio::use_awaitable`. The token alone
///                chooses how the call runs: with `use_awaitable` the attempts are awaited in
///                the caller's coroutine (no coroutine is spawned per attempt, except for an
///                awaitable `op` under an `attempt_timeout` or when `ex` is not the caller's
///                executor); any other token runs a composed operation.
///
/// @par Completion signature
/// For `op()` returning `awaitable<T>`: `void(std::exception_ptr, T)` (`void(std::exception_ptr)`
/// for `awaitable<void>`), as `co_spawn`. For `op(token)`: exactly the operation's signature,
/// e.g. `void(error_code)` for `async_connect`, so retrying is invisible to the caller. On
/// success, the successful attempt's arguments; on give-up, the last attempt's arguments
/// unchanged (the same exception object). After a cancelled wait the first argument is
/// `asio::error::operation_aborted`, after a last attempt that timed out it is
/// `stamina::error::attempt_timeout` (as `system_error` in an `exception_ptr`), the remaining
/// arguments value-initialised (so they must be default-constructible, with every token).
///
/// @par Per-operation cancellation
/// `terminal` and `partial` are supported, by every token. During a wait the timer is
/// cancelled and the call completes with `operation_aborted`. During an attempt the
/// cancellation is forwarded to the attempt, which is then never retried: its result (success
/// or failure) is delivered. `total` is not supported and is ignored, because earlier attempts
/// may have had effects. With `use_awaitable` the call honours the awaiting coroutine's
/// cancellation state and filter (terminal only, by default). `attempt_timeout` cancels a
/// running attempt the same way, so it only stops attempts that honour cancellation.
///
/// @par Executor
/// The completion handler runs on its associated executor (default: that of `ex`), never
/// inside `async_retry` itself, even when an attempt completes immediately. Outstanding work
/// is tracked on `ex` and on the handler's executor while the operation is pending. The
/// handler's associated allocator (default: Asio's recycling allocator) is used for the
/// operation's state.
///
/// @par Object lifetimes
/// `policy` and `op` are copied into the operation; objects `op` refers to (sockets, buffers)
/// must outlive it. Destroying or stopping the `io_context` mid-retry destroys the state
/// without calling the handler, and leaks nothing.
///
/// @par Errors
/// Only failures accepted by `policy.on()` are retried; any other failure is delivered at
/// once. A classifier that throws counts as "do not retry". An `op` that throws when called is
/// a failed attempt: the exception itself for `exception_ptr` signatures, otherwise the code
/// of a `stamina::system_error` or `stamina::error::op_threw`. An `op(token)` that
/// returns without starting an operation is a failed attempt with `invalid_argument`. So is
/// one whose initiation took the handler and lost it before `op` returned (destroyed uncalled,
/// on any thread); if the initiation threw, the attempt fails with that exception as above. A
/// completion that comes before `op` has returned (inline, or on another thread) is posted.
/// `timeout` is checked between attempts: without `attempt_timeout`, a hanging attempt can
/// run past it.
///
/// @par Thread safety
/// Distinct calls are independent. One call's intermediate handlers are serialised through the
/// handler's executor; use a strand when the `io_context` runs on several threads and the
/// attempt touches shared objects. Hooks and the budget are thread-safe.
template <class ExecutorOrContext, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_retry(ExecutorOrContext&& ex, const retry_policy& policy,
                                                                 Op&& op, CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  return detail::start_async_retry(ex, retry_policy(policy), std::forward<Op>(op), std::forward<CompletionToken>(token),
                                   where);
}

/// The same, with a policy made for this call: moved into the operation instead of copied.
template <class ExecutorOrContext, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_retry(ExecutorOrContext&& ex, retry_policy&& policy, Op&& op,
                                                                 CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  return detail::start_async_retry(ex, std::move(policy), std::forward<Op>(op), std::forward<CompletionToken>(token),
                                   where);
}

/// With a fallback: the same call, but a give-up (except a cancelled call) completes as a
/// success with what `fb` returns instead of the last failure (see `stamina::fallback`).
template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_retry(ExecutorOrContext&& ex, const retry_policy& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  return detail::start_async_retry(ex, retry_policy(policy), std::forward<Op>(op), std::forward<Fallback>(fb),
                                   std::forward<CompletionToken>(token), where);
}

/// The same, with a policy made for this call: moved into the operation instead of copied.
template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_retry(ExecutorOrContext&& ex, retry_policy&& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  return detail::start_async_retry(ex, std::move(policy), std::forward<Op>(op), std::forward<Fallback>(fb),
                                   std::forward<CompletionToken>(token), where);
}

/// With a policy that still knows its `on_result` predicate's types (`result_typed`): the same
/// call, the predicate checked against `op`'s success values at compile time.
template <class ExecutorOrContext, class Values, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_retry(ExecutorOrContext&& ex,
                                                                 const result_typed<retry_policy, Values>& policy,
                                                                 Op&& op, CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  static_assert(std::is_same_v<detail::op_success_values<std::decay_t<Op>>, Values>,
                "stamina::async_retry: the on_result predicate's parameter types differ from the operation's success "
                "values");
  return async_retry(std::forward<ExecutorOrContext>(ex), static_cast<const retry_policy&>(policy),
                     std::forward<Op>(op), std::forward<CompletionToken>(token), where);
}

/// With a `result_typed` policy and a fallback.
template <class ExecutorOrContext, class Values, class Op, class Fallback,
          class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_retry(ExecutorOrContext&& ex,
                                                          const result_typed<retry_policy, Values>& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  static_assert(std::is_same_v<detail::op_success_values<std::decay_t<Op>>, Values>,
                "stamina::async_retry: the on_result predicate's parameter types differ from the operation's success "
                "values");
  return async_retry(std::forward<ExecutorOrContext>(ex), static_cast<const retry_policy&>(policy),
                     std::forward<Op>(op), std::forward<Fallback>(fb), std::forward<CompletionToken>(token), where);
}

/// @cond
// Misuse gets a one-line reason instead of a page of candidates.
template <class ExecutorOrContext, class Op, class... CompletionToken>
requires(!awaitable_operation<std::decay_t<Op>> && !token_operation<std::decay_t<Op>>) void async_retry(
    ExecutorOrContext&& /*ex*/, const retry_policy& /*policy*/, Op&& /*op*/, CompletionToken&&... /*token*/) {
  static_assert(detail::always_false<Op>,
                "stamina::async_retry: op must be callable as op() returning asio::awaitable<T>, or as op(token) "
                "starting one Asio operation with that token");
}
template <class ExecutorOrContext, class Policy, class Op, class... CompletionToken>
requires(!std::is_convertible_v<Policy, retry_policy> &&
         !std::is_convertible_v<ExecutorOrContext, retry_policy>) void async_retry(ExecutorOrContext&& /*ex*/,
                                                                                   Policy&& /*policy*/, Op&& /*op*/,
                                                                                   CompletionToken&&... /*token*/) {
  static_assert(detail::always_false<Policy>,
                "stamina::async_retry: the second argument must be a retry_policy or a retry_on (e.g. "
                "stamina::on_error(...)); wrap a predicate as stamina::retry_on(pred)");
}
template <class Policy, class... Rest>
requires(std::is_convertible_v<Policy, retry_policy>) void async_retry(Policy&& /*policy*/, Rest&&... /*rest*/) {
  static_assert(detail::always_false<Policy>,
                "stamina::async_retry: the first argument is the executor or io_context the call runs on: "
                "async_retry(ex, policy, op) (in a coroutine: co_await asio::this_coro::executor)");
}
/// @endcond

STAMINA_NAMESPACE_END

#endif
