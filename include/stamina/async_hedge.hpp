#ifndef STAMINA_ASYNC_HEDGE_HPP
#define STAMINA_ASYNC_HEDGE_HPP

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/hedge_op.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/fallback.hpp>
#include <stamina/hedging_policy.hpp>
#include <stamina/operation.hpp>

#include <stamina/detail/asio.hpp>

#include <chrono>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// The implementation behind stamina::async_hedge, on any clock (tests use a virtual one).
template <class Clock, class ExecutorOrContext, class Op, class CompletionToken>
auto async_hedge_with_clock(ExecutorOrContext&& ex_or_context, hedging_policy&& policy, Op op, CompletionToken&& token,
                            const caller& where = {}) {
  using op_type = std::decay_t<Op>;
  using executor_type = std::decay_t<decltype(executor_of(ex_or_context))>;
  using signature = typename decayed_signature<typename op_traits<op_type>::signature>::type;
  (void)signature_head<signature>{};
  static_assert(rest_default_constructible<signature>::value,
                "stamina::async_hedge: the completion values after the first argument must be default-constructible "
                "(a call that times out completes with them value-initialised)");
  executor_type ex = executor_of(ex_or_context);
  if (policy.result_classifier() != nullptr)
    check_values_of(policy.result_classifier(), static_cast<signature*>(nullptr));
  return stamina::net::async_initiate<CompletionToken, signature>(
      initiate_composed<hedge_op, Clock, executor_type, signature>{ex, where}, token, std::move(policy), std::move(op));
}

// By reference, for the reason start_async_retry gives: a by-value policy parameter would sit in
// the awaiting coroutine's frame for the whole call.
template <class ExecutorOrContext, class Op, class CompletionToken>
auto start_async_hedge(ExecutorOrContext& ex, hedging_policy&& policy, Op&& op, CompletionToken&& token,
                       const caller& where) {
  static_assert(!temporary_op_in_co_await<Op, CompletionToken>,
                "stamina::async_hedge: g++ < 13 destroys a temporary op twice inside co_await: name the op first "
                "(auto op = ...; co_await stamina::async_hedge(ex, policy, op);)");
  return detail::async_hedge_with_clock<std::chrono::steady_clock>(
      ex, std::move(policy), std::decay_t<Op>(std::forward<Op>(op)), std::forward<CompletionToken>(token), where);
}

template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken>
auto start_async_hedge(ExecutorOrContext& ex, hedging_policy&& policy, Op&& op, Fallback&& fb, CompletionToken&& token,
                       const caller& where) {
  static_assert(!temporary_op_in_co_await<Op, CompletionToken>,
                "stamina::async_hedge: g++ < 13 destroys a temporary op twice inside co_await: name the op first "
                "(auto op = ...; co_await stamina::async_hedge(ex, policy, op);)");
  static_assert(!temporary_op_in_co_await<Fallback, CompletionToken>,
                "stamina::async_hedge: g++ < 13 destroys a temporary fallback twice inside co_await: name it first "
                "(stamina::fallback fb(...); co_await stamina::async_hedge(ex, policy, op, fb);)");
  return detail::async_hedge_with_clock<std::chrono::steady_clock>(
      ex, std::move(policy),
      detail::with_fallback_op(std::decay_t<Op>(std::forward<Op>(op)), std::forward<Fallback>(fb)),
      std::forward<CompletionToken>(token), where);
}

}  // namespace detail

/// Runs `op`, and if it has not completed after the policy's delay, runs it again in
/// parallel (a hedge), up to `max_attempts` attempts at once: the first success wins and
/// every other attempt is cancelled. Cuts tail latency for idempotent, cancellable
/// operations (gRPC A6 hedging; Dean & Barroso, "The Tail at Scale").
///
/// @param ex      An executor or execution context: its context holds the shared timer, and
///                awaitable attempts are spawned on it.
/// @param policy  Copied into the operation (moved when it is a `hedging_policy` rvalue) by the
///                time `async_hedge` returns; copies share the budget, the latency window and
///                the counters.
/// @param op      Decay-copied; called once per attempt, possibly while earlier attempts still
///                run. The same forms as `async_retry`: `op()` returning
///                `asio::awaitable<T>` (failures are exceptions), or `op(token)` starting one
///                Asio operation whose completion signature begins with `error_code` or
///                `std::exception_ptr`; each may take the attempt's `const attempt_context&`
///                first (`op(ctx)`, `op(ctx, token)`), one context per attempt, valid until that
///                attempt has returned. Each attempt is bound to a cancellation slot of its
///                own: an attempt that ignores per-operation cancellation cannot be stopped
///                once it lost, and the call waits for it.
/// @param token   Any completion token; default `asio::use_awaitable`.
///
/// @par Semantics
/// - The first attempt starts at once; while nothing has succeeded, the next one starts after
///   the delay (`delay()`, or the adaptive quantile), measured from the last start.
/// - The first success completes the call with its arguments; the other attempts in flight are
///   cancelled (`cancellation_type::terminal`) and their results discarded.
/// - A failure that `on` accepts starts the next attempt at once; a failure `on` rejects ends
///   the call with that failure (the others are cancelled). When every attempt failed, the
///   last failure is delivered.
/// - Every attempt after the first takes a token from the budget; without one it is not
///   started (`hedge_event_kind::budget_denied`).
/// - With a concurrency limit (`hedging_policy::limit`), every attempt holds a place while it
///   runs. A hedge beside attempts in flight is not started while no place is free
///   (`hedge_event_kind::limit_full`; due again after twice the delay, doubling per skip). The
///   first attempt, or the
///   next one once none is in flight, waits for a place at most until the deadline (then the
///   last failure, or, if nothing was sent, `stamina::error::throttled`, or
///   `stamina::error::deadline_exceeded` when the inherited deadline was the one that passed);
///   with `fail_fast()` it does not wait.
/// - The call completes only after every attempt it started has returned, so objects the
///   attempts use may be destroyed as soon as the handler runs.
/// - A deadline inherited from the caller (`hedging_policy::deadline`, `within`) cuts every
///   attempt in flight and lets no hedge start after it; if it has passed at the start, nothing
///   is sent and the call completes with `stamina::error::deadline_exceeded`. A failure (or
///   result) that the classifier answers with `decision::pushback()`, or a retryable failure of
///   an attempt within which a stamina call was made (`within` its context), starts no more
///   hedges: the layer below retried already. The attempts in flight go on and the first success
///   still wins; otherwise the call gives up with reason `pushback` (or `deadline`, if the
///   inherited deadline cut an attempt) (docs/layered-retries.md).
///
/// @par Completion signature
/// As `async_retry`: `void(std::exception_ptr, T)` for `op()` returning `awaitable<T>`
/// (`void(std::exception_ptr)` for `awaitable<void>`); for `op(token)` exactly the operation's
/// signature. After `timeout()` the first argument is `stamina::error::attempt_timeout` (as
/// `system_error` in an `exception_ptr`), the other values value-initialised (so they must be
/// default-constructible).
///
/// @par Per-operation cancellation
/// `terminal` and `partial` are supported, by every token, and forwarded to every attempt in
/// flight; no further attempt starts. An attempt that succeeds anyway still wins, otherwise
/// the last failure (typically `operation_aborted`) is delivered; a call waiting for a place
/// under the limit completes with `operation_aborted`. `total` is not supported
/// and is ignored. With `use_awaitable` the awaiting coroutine's cancellation state applies.
///
/// @par Executor
/// The completion handler runs on its associated executor (default: that of `ex`), never
/// inside `async_hedge` itself. Every step of the call (the attempts' completions, the delay,
/// the deadline, the caller's cancellation) runs on one strand: the handler's executor if it is
/// a strand, else a strand made on it for the call. The delays and deadlines of all hedged calls
/// of a context share one timer on the context's own untracked executor. Outstanding work is
/// tracked on `ex` and on the handler's executor while the operation is pending, and only then.
/// The handler's associated allocator (default: Asio's recycling allocator) allocates the state.
///
/// @par Object lifetimes
/// `policy` and `op` are copied into the operation; objects `op` refers to must outlive it.
/// Destroying or stopping the `io_context` with attempts in flight destroys the state without
/// calling the handler, and leaks nothing.
///
/// @par Thread safety
/// Distinct calls are independent: neither one's strand nor its executor delays the other's
/// timers. Attempts of one call run concurrently, but `op`, the classifier and the `on_hedge`
/// hook are called one at a time (the first attempt's `op` inside `async_hedge`, the rest on the
/// call's strand), under no lock: they may cancel the call they belong to (handled after the
/// current step). Safe on an `io_context` run by several
/// threads without a strand of the caller's.
template <class ExecutorOrContext, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_hedge(ExecutorOrContext&& ex, const hedging_policy& policy,
                                                                 Op&& op, CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  return detail::start_async_hedge(ex, hedging_policy(policy), std::forward<Op>(op),
                                   std::forward<CompletionToken>(token), where);
}

/// The same, with a policy made for this call: moved into the operation instead of copied.
template <class ExecutorOrContext, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_hedge(ExecutorOrContext&& ex, hedging_policy&& policy,
                                                                 Op&& op, CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  return detail::start_async_hedge(ex, std::move(policy), std::forward<Op>(op), std::forward<CompletionToken>(token),
                                   where);
}

/// With a fallback: the same call, but a give-up (except a cancelled call) completes as a
/// success with what `fb` returns instead of the last failure (see `stamina::fallback`).
template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_hedge(ExecutorOrContext&& ex, const hedging_policy& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  return detail::start_async_hedge(ex, hedging_policy(policy), std::forward<Op>(op), std::forward<Fallback>(fb),
                                   std::forward<CompletionToken>(token), where);
}

/// The same, with a policy made for this call: moved into the operation instead of copied.
template <class ExecutorOrContext, class Op, class Fallback, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_hedge(ExecutorOrContext&& ex, hedging_policy&& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  return detail::start_async_hedge(ex, std::move(policy), std::forward<Op>(op), std::forward<Fallback>(fb),
                                   std::forward<CompletionToken>(token), where);
}

/// With a policy that still knows its `on_result` predicate's types (`result_typed`): the same
/// call, the predicate checked against `op`'s success values at compile time.
template <class ExecutorOrContext, class Values, class Op, class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&!detail::is_fallback<
         std::decay_t<CompletionToken>>::value) auto async_hedge(ExecutorOrContext&& ex,
                                                                 const result_typed<hedging_policy, Values>& policy,
                                                                 Op&& op, CompletionToken&& token = {},
                                                                 detail::caller where = {}) {
  static_assert(std::is_same_v<detail::op_success_values<std::decay_t<Op>>, Values>,
                "stamina::async_hedge: the on_result predicate's parameter types differ from the operation's success "
                "values");
  return async_hedge(std::forward<ExecutorOrContext>(ex), static_cast<const hedging_policy&>(policy),
                     std::forward<Op>(op), std::forward<CompletionToken>(token), where);
}

/// With a `result_typed` policy and a fallback.
template <class ExecutorOrContext, class Values, class Op, class Fallback,
          class CompletionToken = stamina::net::use_awaitable_t<>>
requires((awaitable_operation<std::decay_t<Op>> || token_operation<std::decay_t<Op>>)&&detail::is_fallback<
         std::decay_t<Fallback>>::value) auto async_hedge(ExecutorOrContext&& ex,
                                                          const result_typed<hedging_policy, Values>& policy, Op&& op,
                                                          Fallback&& fb, CompletionToken&& token = {},
                                                          detail::caller where = {}) {
  static_assert(std::is_same_v<detail::op_success_values<std::decay_t<Op>>, Values>,
                "stamina::async_hedge: the on_result predicate's parameter types differ from the operation's success "
                "values");
  return async_hedge(std::forward<ExecutorOrContext>(ex), static_cast<const hedging_policy&>(policy),
                     std::forward<Op>(op), std::forward<Fallback>(fb), std::forward<CompletionToken>(token), where);
}

/// @cond
template <class ExecutorOrContext, class Op, class... CompletionToken>
requires(!awaitable_operation<std::decay_t<Op>> && !token_operation<std::decay_t<Op>>) void async_hedge(
    ExecutorOrContext&& /*ex*/, const hedging_policy& /*policy*/, Op&& /*op*/, CompletionToken&&... /*token*/) {
  static_assert(detail::always_false<Op>,
                "stamina::async_hedge: op must be callable as op() returning asio::awaitable<T>, or as op(token) "
                "starting one Asio operation with that token (either may take a const stamina::attempt_context& "
                "first)");
}
template <class Policy, class... Rest>
requires(std::is_convertible_v<Policy, hedging_policy>) void async_hedge(Policy&& /*policy*/, Rest&&... /*rest*/) {
  static_assert(detail::always_false<Policy>,
                "stamina::async_hedge: the first argument is the executor or io_context the call runs on: "
                "async_hedge(ex, policy, op) (in a coroutine: co_await asio::this_coro::executor)");
}
/// @endcond

STAMINA_NAMESPACE_END

#endif
