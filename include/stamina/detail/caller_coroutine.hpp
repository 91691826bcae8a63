#ifndef STAMINA_DETAIL_CALLER_COROUTINE_HPP
#define STAMINA_DETAIL_CALLER_COROUTINE_HPP

// The caller-coroutine driver: async_retry with `use_awaitable`. Spawning a coroutine per
// attempt costs ~20x a plain co_await, so the attempts are awaited directly in the caller's
// coroutine chain (one under a time limit, in a coroutine of its own); the call obeys the caller's cancellation state
// and filter (this_coro::reset_cancellation_state), as any awaited operation does. It performs the retry protocol's
// actions; the backoff timer exists only once a wait is needed.

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/attempt_limiter.hpp>
#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/place_wait.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/error.hpp>
#include <stamina/retry_policy.hpp>

#include <stamina/detail/asio.hpp>

#include <atomic>
#include <cassert>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// What `co_await` of an operation with `Signature` returns under use_awaitable_t<E>.
template <class AwaitableExecutor, class Signature>
using awaited_type =
    typename stamina::net::async_result<stamina::net::use_awaitable_t<AwaitableExecutor>, Signature>::return_type;

// The values after the first argument, as use_awaitable returns them: one value as itself,
// several as a tuple (no value: the caller returns void).
template <class Result, class... Values>
Result unpack_values(std::tuple<Values...>&& t) {
  return std::apply(
      [](auto&&, auto&&... v) -> Result {
        if constexpr (sizeof...(v) == 1)
          return (std::move(v), ...);
        else
          return Result(std::move(v)...);
      },
      std::move(t));
}

template <class First>
[[noreturn]] void throw_failure(const First& first) {
  if constexpr (std::is_same_v<First, std::exception_ptr>)
    std::rethrow_exception(first);  // the same exception object
  else
    throw stamina::system_error(first);
}

// Whether the awaiting coroutine already runs on `ex` (then awaitable attempts are awaited
// directly; otherwise each is co_spawned onto `ex`). Cheap: no executor is converted.
template <class AwaitableExecutor, class Executor>
bool runs_on(const AwaitableExecutor& here, const Executor& ex) {
  if constexpr (std::is_same_v<AwaitableExecutor, Executor>) {
    return here == ex;
  } else if constexpr (requires { here.template target<Executor>(); }) {
    const Executor* target = here.template target<Executor>();
    return target != nullptr && *target == ex;
  } else {
    return false;
  }
}

// One attempt's outcome in the caller coroutine: for op(), the exception or the value; for
// op(token), the completion arguments. With it, the attempts' limiter, made for the first
// limited attempt.
template <class Op, class Signature, class Limiter, bool Awaitable = op_traits<Op>::is_awaitable>
struct caller_outcome;

template <class Op, class Signature, class Limiter>
struct caller_outcome<Op, Signature, Limiter, true> {
  using value_type = typename op_traits<Op>::value_type;
  [[no_unique_address]] attempt_scope_for<Op> scope;  // the attempt's context, for an op taking one
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
  std::unique_ptr<Limiter> limiter;

  caller_outcome() = default;
  caller_outcome(const caller_outcome&) = delete;
  caller_outcome& operator=(const caller_outcome&) = delete;
  // Inline in the coroutine whatever else the unit holds: g++ 12 put it out of line when a unit
  // instantiating the composed driver grew (+15 instructions per call, stop 48).
  [[gnu::always_inline]] ~caller_outcome() {}

  bool failed() const noexcept { return error != nullptr; }
  failure what() const noexcept { return failure(error); }
  template <class Elapsed>
  action succeeded(retry_protocol& call, const Elapsed& elapsed, bool cancelled) {
    if constexpr (std::is_void_v<value_type>)
      return call.attempt_succeeded(elapsed, cancelled);
    else
      return call.attempt_succeeded(elapsed, cancelled, *value);
  }
  [[noreturn]] void throw_last() const { std::rethrow_exception(error); }
  failure delivered_failure() const noexcept {
    return failed() ? what() : failure(make_error_code(error::retried_result));
  }
  template <class Result>
  Result take() {
    if constexpr (!std::is_void_v<value_type>) return std::move(*value);
  }
};

// The last attempt's completion arguments: the tuple itself where it is made and moved without
// throwing (an optional's flag would take 8 B more of the frame; a call reads them only after an
// attempt), else an optional. Each attempt's arguments are moved into place, as an optional's
// emplace would, not assigned: an allocator-aware value keeps the allocator the op gave it.
template <class Args, bool Plain = std::conjunction_v<std::is_nothrow_default_constructible<Args>,
                                                      std::is_nothrow_move_constructible<Args>>>
struct completion_args {
  Args values{};
  void set(Args&& v) noexcept {
    std::destroy_at(&values);
    std::construct_at(&values, std::move(v));
  }
  Args& operator*() noexcept { return values; }
  const Args& operator*() const noexcept { return values; }
};

template <class Args>
struct completion_args<Args, false> {
  std::optional<Args> values;
  void set(Args&& v) { values.emplace(std::move(v)); }
  Args& operator*() noexcept { return *values; }
  const Args& operator*() const noexcept { return *values; }
};

// A token op's attempt completes into the outcome (attempt_end_handler). A completion that
// arrives while the attempt is being started (inside the op's initiation, or on another thread
// before the op has returned) is posted by start_attempt, through the outcome's gate, so that
// the op is never destroyed while it runs and inline attempts cannot nest on the stack.
template <class Op, class Limiter, class First, class... Rest>
struct caller_outcome<Op, void(First, Rest...), Limiter, false> {
  using args_type = std::tuple<First, Rest...>;
  using signature_pointer = void (*)(First, Rest...);  // start_attempt's tag for the signature
  [[no_unique_address]] attempt_scope_for<Op> scope;   // the attempt's context, for an op taking one
  completion_args<args_type> args;
  std::unique_ptr<Limiter> limiter;
  start_gate gate;  // the attempt's start (start_attempt)
  // Whether the attempt runs under the limiter's time limit (asked, not kept: a flag here would
  // take 8 B of the frame).
  bool limited() const noexcept { return limiter && limiter->engaged(); }

  bool failed() const noexcept { return detail::failed(std::get<0>(*args)); }
  failure what() const noexcept { return failure(std::get<0>(*args)); }
  template <class Elapsed>
  action succeeded(retry_protocol& call, const Elapsed& elapsed, bool cancelled) {
    return std::apply([&](const First& /*ok*/,
                          const Rest&... values) { return call.attempt_succeeded(elapsed, cancelled, values...); },
                      *args);
  }
  [[noreturn]] void throw_last() const { throw_failure(std::get<0>(*args)); }
  failure delivered_failure() const noexcept { return detail::delivered_failure(std::get<0>(*args)); }
  template <class Result>
  Result take() {
    if constexpr (!std::is_void_v<Result>) return unpack_values<Result>(std::move(*args));
  }
};

// The attempt limiter of a caller coroutine, with the coroutine's executor (where the limiter's
// timer handler runs). Made by side_step, a coroutine of its own, so that the caller's frame
// holds no copy of that executor.
template <class Timer, class HandlerExecutor>
struct coroutine_limiter : attempt_limiter<Timer> {
  template <class Executor>
  coroutine_limiter(const Executor& ex, HandlerExecutor h) : attempt_limiter<Timer>(ex), here(std::move(h)) {}
  HandlerExecutor here;
};

// Whether the next step is one of side_step's: the first limited attempt needs its limiter made,
// or a queued attempt waits for a place.
template <class Limiter>
bool needs_side_step(const action& next, const Limiter& limiter) noexcept {
  return next.kind == action_kind::queue || (next.kind == action_kind::attempt && next.limited && !limiter);
}

// The two steps few calls take, in a frame of their own (so that the caller's frame stays small
// enough for Asio's frame recycling, which keeps frames up to about 1 KiB):
// - making the attempt limiter before the first limited attempt (`next` is left as it is);
// - a queued attempt's wait for a place under the concurrency limit, and the protocol's verdict
//   on it, into `next`.
// Everything is passed by reference: the arguments of a co_await expression take room in the
// awaiting frame too.
template <class Timer, class AwaitableExecutor, class Executor, class Clock>
stamina::net::awaitable<void, AwaitableExecutor> side_step(
    deferred_protocol& call, std::unique_ptr<coroutine_limiter<Timer, AwaitableExecutor>>& limiter, const Executor& ex,
    const stamina::net::cancellation_state& caller_state, const stopwatch<Clock>& clock, action& next) {
  if (next.kind == action_kind::attempt) {
    limiter =
        std::make_unique<coroutine_limiter<Timer, AwaitableExecutor>>(ex, co_await stamina::net::this_coro::executor);
    co_return;
  }
  place_wait<Timer> place;
  bool granted = true;
  bool failed = false;  // the wait completed with an error (cancelled, or its context shut down)
  std::uint32_t ticket = 0;
  if (place.start(*call->state().limit(), ex, next.limit())) {  // a place came free
    ticket = place.claim();
  } else {
    const auto [ec] =
        co_await place.async_wait(detail::asio_compat::as_tuple(stamina::net::use_awaitable_t<AwaitableExecutor>{}));
    granted = place.finish();
    failed = static_cast<bool>(ec);
    ticket = place.ticket();
  }
  const bool cancelled = cancel_requested(caller_state);
  next = call->place_wait_finished(clock.elapsed(), granted, cancelled || (failed && !granted), ticket);
}

// How the backoff wait ends: whether it ended early (an error: it was cut), as a bool. The
// co_await's result is a temporary the frame keeps: as_tuple's error_code took 24 B; plain
// use_awaitable would keep none but throw for every cut wait (about +2.9 us a cancelled waiting
// call, measured).
template <class Handler>
struct wait_end_handler {
  void operator()(const stamina::error_code& ec) { std::move(handler)(static_cast<bool>(ec)); }
  Handler handler;  // the coroutine's: its executor, allocator and slot are the wait's
};

// What a token op's attempt completes into under the caller coroutine: the completion arguments
// go into the outcome, then the coroutine resumes. Its own handler completes with nothing: a
// result would be one more temporary of the co_await in the frame. It watches its start itself,
// through the outcome's gate (start_attempt), so that it is no bigger than these two members:
// the attempt's operation keeps it, and Asio's allocator recycles that operation's block for the
// backoff wait's (a wrapper's 16 B showed in every pending call).
template <class Handler, class Outcome>
struct attempt_end_handler {
  static constexpr bool watches_its_start = true;

  attempt_end_handler(Handler&& h, Outcome* o) noexcept(std::is_nothrow_move_constructible_v<Handler>)
      : handler(std::move(h)), out(o) {}
  // As the wrapped handler's (Asio's own handlers do not declare theirs noexcept).
  attempt_end_handler(attempt_end_handler&& other) noexcept(
      std::is_nothrow_move_constructible_v<Handler>)  // NOLINT(performance-noexcept-move-constructor)
      : handler(std::move(other.handler)), out(std::exchange(other.out, nullptr)) {}
  attempt_end_handler(const attempt_end_handler&) = delete;
  attempt_end_handler& operator=(const attempt_end_handler&) = delete;
  attempt_end_handler& operator=(attempt_end_handler&&) = delete;
  ~attempt_end_handler() {
    if (out != nullptr) [[unlikely]]
      destroyed_uncalled(static_cast<typename Outcome::signature_pointer>(nullptr));
  }

  template <class... Values>
  void operator()(Values&&... values) {
    Outcome* o = out;
    if (handed_back(static_cast<typename Outcome::signature_pointer>(nullptr), std::forward<Values>(values)...)) return;
    out = nullptr;
    o->args.set(typename Outcome::args_type(std::forward<Values>(values)...));
    std::move(handler)();
  }

  Handler handler;  // the coroutine's: its executor, allocator and slot are the attempt's
  Outcome* out;     // null once called or moved from

 private:
  template <class First, class... Rest, class... Values>
  bool handed_back(void (*)(First, Rest...), Values&&... values) {
    return handed_back_to_start<First, Rest...>(&out->gate, *this, std::forward<Values>(values)...);
  }
  template <class First, class... Rest>
  void destroyed_uncalled(void (*)(First, Rest...)) noexcept {
    hand_back_destroyed_handler<First, Rest...>(&out->gate, *this);
  }
};

}  // namespace detail
STAMINA_NAMESPACE_END

template <template <class, class> class Associator, class Handler, class Default>
struct stamina::net::associator<Associator, stamina::detail::wait_end_handler<Handler>, Default>
    : stamina::detail::inner_handler_associator<Associator, stamina::detail::wait_end_handler<Handler>, Handler,
                                                Default> {};
template <template <class, class> class Associator, class Handler, class Outcome, class Default>
struct stamina::net::associator<Associator, stamina::detail::attempt_end_handler<Handler, Outcome>, Default>
    : stamina::detail::inner_handler_associator<Associator, stamina::detail::attempt_end_handler<Handler, Outcome>,
                                                Handler, Default> {};

STAMINA_NAMESPACE_BEGIN
namespace detail {

// The caller coroutine's backoff timer, made at the first wait, and the wait on it: an
// asynchronous operation completing with void(bool), whether the wait was cut.
// - Where Asio can co_await an operation (1.24 on), the coroutine awaits this object itself
//   (see awaited), and the wait runs in the caller's frame. Through use_awaitable
//   every pending wait held a coroutine frame of its own (192 B a pending call in bench_scale).
//   Being the timer, the operation is no temporary of the co_await: those take room in the frame.
// - On Asio 1.22, through use_awaitable.
template <class Timer>
class backoff_timer {
 public:
  template <class Executor, class Duration>
  void arm(const Executor& ex, Duration wait) {
    if (!timer_) timer_.emplace(ex);
    timer_->expires_after(wait);
  }

  struct initiate_wait {
    template <class Handler>
    void operator()(Handler&& handler) const {
      timer->async_wait(wait_end_handler<std::decay_t<Handler>>{std::forward<Handler>(handler)});
    }
    Timer* timer;
  };

  // The result type is deduced from the call, so that arguments that are not completion tokens
  // make it uncallable rather than fail to compile (Asio's co_await asks whether it can be
  // called with a frame pointer).
  template <class CompletionToken>
  auto operator()(CompletionToken&& token)
      -> decltype(stamina::net::async_initiate<CompletionToken, void(bool)>(std::declval<initiate_wait>(), token)) {
    return stamina::net::async_initiate<CompletionToken, void(bool)>(initiate_wait{&*timer_}, token);
  }

 private:
  std::optional<Timer> timer_;
};

// An awaitable op's attempt co_spawned onto `ex`, cancelled through `slot`: on another executor
// or under a time limit. Lazy, like every use_awaitable
// operation: the thread starts when the result is awaited.
template <class AwaitableExecutor, class Executor, class T>
stamina::net::awaitable<T, AwaitableExecutor> spawned_attempt(const Executor& ex,
                                                              stamina::net::awaitable<T, AwaitableExecutor> attempt,
                                                              stamina::net::cancellation_slot slot) {
  return stamina::net::co_spawn(
      ex, std::move(attempt),
      stamina::net::bind_cancellation_slot(slot, stamina::net::use_awaitable_t<AwaitableExecutor>{}));
}

// An awaitable op's attempt, as the caller coroutine awaits it: the op's awaitable, or, under a
// time limit or when the op's executor is not the caller's, that awaitable in a thread of its own
// on `ex`, bound to the limit's slot (which forwards the caller's) or to the caller's. Made by a
// function, so that the one co_await site keeps only its result's temporaries in the frame.
template <class AwaitableExecutor, class Op, class Executor, class Limiter>
auto awaitable_op_attempt(Op& op, const attempt_context* context, bool limited, bool same_executor, const Executor& ex,
                          const Limiter& limiter, const stamina::net::cancellation_state& caller_state) {
  auto attempt = call_op(op, context);
  if (!attempt.valid()) throw stamina::system_error(stamina::net::error::invalid_argument);
  if (limited || !same_executor)
    attempt =
        spawned_attempt(ex, awaitable_attempt(std::move(attempt)), limited ? limiter->slot() : caller_state.slot());
  return attempt;
}

// A token op's attempt, as the caller coroutine awaits it: an operation completing with nothing,
// whose completion arguments go into the outcome. It is started as the composed operation starts
// one (start_attempt: an op that throws or starts nothing fails the attempt, posted), into the
// coroutine's handler, bound under a time limit to the limiter's slot (which forwards the
// caller's), else showing the caller's own. Made in the co_await expression, whose temporary it
// is: two pointers, three for an op that takes a context.
template <class Op, class Outcome>
class token_attempt_start {
  // The attempt's context, for an op that takes one (else nothing: the start is a temporary in
  // the frame).
  struct no_context {
    no_context(const attempt_context* /*null*/) noexcept {}  // NOLINT: implicit on purpose
    operator const attempt_context*() const noexcept { return nullptr; }
  };
  using context_type = std::conditional_t<op_traits<Op>::takes_context, const attempt_context*, no_context>;
  struct parts {
    Op* op;
    Outcome* last;
    [[no_unique_address]] context_type context;
  };

 public:
  token_attempt_start(Op& op, Outcome& last, const attempt_context* context) noexcept : parts_{&op, &last, context} {}

  struct initiate {
    template <class Handler>
    void operator()(Handler&& handler) const {
      Outcome& last = *p.last;
      constexpr typename Outcome::signature_pointer signature = nullptr;
      // A failure the op gives before starting its operation is posted where the coroutine runs.
      const auto ex = stamina::net::get_associated_executor(handler);
      // The handler owns the frame: after the start, nothing here touches it.
      if (last.limited()) {
        auto bound = stamina::net::bind_cancellation_slot(last.limiter->slot(), std::forward<Handler>(handler));
        start_attempt(last.gate, *p.op, ex, attempt_end_handler<decltype(bound), Outcome>(std::move(bound), &last),
                      signature, p.context);
      } else {
        start_attempt(last.gate, *p.op, ex,
                      attempt_end_handler<std::decay_t<Handler>, Outcome>(std::forward<Handler>(handler), &last),
                      signature, p.context);
      }
    }
    parts p;
  };

  // The result type is deduced from the call, so that arguments that are not completion tokens
  // make it uncallable rather than fail to compile (Asio's co_await asks whether it can be
  // called with a frame pointer).
  template <class CompletionToken>
  auto operator()(CompletionToken&& token)
      -> decltype(stamina::net::async_initiate<CompletionToken, void()>(std::declval<initiate>(), token)) {
    return stamina::net::async_initiate<CompletionToken, void()>(initiate{parts_}, token);
  }

 private:
  parts parts_;
};

// An operation as the caller coroutine awaits it: itself, where Asio can co_await an operation
// (1.24 on; it runs in the awaiting frame), else through use_awaitable. Asio's co_await takes the
// operation by rvalue reference and only calls it: one the frame keeps (the backoff timer) is
// awaited in place, not moved from.
#if STAMINA_DETAIL_AWAITS_OPERATIONS
template <class AwaitableExecutor, class Operation>
std::remove_reference_t<Operation>&& awaited(Operation&& operation) noexcept {
  return static_cast<std::remove_reference_t<Operation>&&>(operation);
}
#else
template <class AwaitableExecutor>
inline constexpr stamina::net::use_awaitable_t<AwaitableExecutor> plain_awaitable{};  // a token in the frame otherwise
template <class AwaitableExecutor, class Operation>
auto awaited(Operation&& operation) {
  return operation(plain_awaitable<AwaitableExecutor>);
}
#endif

// The protocol's verdict on an attempt's outcome, and on a wait's: out of the coroutine, so that
// the locals they need take no room in its frame (g++ keeps every local of a block that holds a
// co_await there, even one declared after it).
template <class Outcome, class Stopwatch>
action after_attempt(retry_protocol& call, Outcome& last, const stamina::net::cancellation_state& caller_state,
                     const Stopwatch& clock, bool timed_out) {
  const bool cancelled = cancel_requested(caller_state);
  if (!last.failed())
    return last.succeeded(
        call, [&clock] { return clock.elapsed(); }, cancelled);
  return timed_out ? call.attempt_timed_out(clock.elapsed(), cancelled)
                   : call.attempt_failed(last.what(), clock.elapsed(), cancelled);
}

// Into `next`, not returned: a returned action would be one more temporary of the co_await's
// expression, and those take room in the frame too.
template <class Stopwatch>
void after_wait(retry_protocol& call, bool interrupted, const stamina::net::cancellation_state& caller_state,
                const Stopwatch& clock, action& next) {
  const bool cancelled = cancel_requested(caller_state);
  next = call.wait_finished(clock.elapsed(), interrupted || cancelled);
}

template <class Clock, class AwaitableExecutor, class Executor, class Op, class Signature>
awaited_type<AwaitableExecutor, Signature> caller_coroutine(Executor ex, retry_policy policy, Op op, caller where) {
  // Timers live on `ex`, like the composed operation's; the coroutine resumes on its own
  // executor whatever the timer's.
  using timer_type = stamina::net::basic_waitable_timer<Clock, stamina::net::wait_traits<Clock>, Executor>;
  using result_type = typename awaitable_parts<awaited_type<AwaitableExecutor, Signature>>::value_type;
  constexpr bool awaitable_form = op_traits<Op>::is_awaitable;
  // Declared first: g++ lays the frame out in declaration order, and flags here share the 8 B
  // the coroutine's own flags start (after the caller's place; elsewhere each would take 8 B).
  bool same_executor = true;

  // The common call (no protection, budget, on_result, attempt limit or inherited deadline,
  // default throttles healthy, an op that takes no attempt_context) sends its first attempt
  // with no machine made (as retry's).
  deferred_protocol call(policy, where, !op_traits<Op>::takes_context);
  const stopwatch<Clock> clock(retry_protocol::needs_clock(policy, call.switches()),
                               retry_protocol::precise_clock(policy));
  caller_outcome<Op, Signature, coroutine_limiter<timer_type, AwaitableExecutor>> last;
  backoff_timer<timer_type> wait_timer;
  if constexpr (awaitable_form) {
    const AwaitableExecutor here = co_await stamina::net::this_coro::executor;
    same_executor = runs_on(here, ex);
  }

  // The awaiting coroutine's cancellation state: one per coroutine chain, and it cannot change
  // while the chain awaits this call.
  const auto caller_state = co_await stamina::net::this_coro::cancellation_state;

  action next = call.start(clock);
  for (;;) {
    if (next.kind == action_kind::wait) [[unlikely]] {
      wait_timer.arm(ex, to_clock_duration<typename Clock::duration>(next.wait()));
      after_wait(*call, co_await awaited<AwaitableExecutor>(wait_timer), caller_state, clock, next);
      continue;
    }
    if (needs_side_step(next, last.limiter)) [[unlikely]] {
      co_await side_step<timer_type, AwaitableExecutor>(call, last.limiter, ex, caller_state, clock, next);
      continue;
    }
    // The attempt first, out of the switch: the common call's one step costs no jump table.
    if (next.kind == action_kind::attempt) [[likely]] {
      // No local here holds the slot or the limit: a local of this block would sit in the frame.
      if (next.limited) last.limiter->arm(next.amount, caller_state.slot(), last.limiter->here);
      // An exception from calling `op` itself is a failed attempt like any other.
      // An awaitable that holds no coroutine started nothing: a failed attempt
      // (invalid_argument), as start_attempt makes it on the composed path.
      if constexpr (awaitable_form) {
        last.error = nullptr;
        try {
          // One co_await site for both ways of running it, and no local holding the attempt:
          // each site's temporaries, and each local of a block with a co_await, take room in
          // this frame.
          if constexpr (std::is_void_v<result_type>) {
            co_await awaitable_op_attempt<AwaitableExecutor>(op, attempt_context_of(call, last.scope, clock),
                                                             next.limited, same_executor, ex, last.limiter,
                                                             caller_state);
            last.value.emplace(true);
          } else {
            last.value.emplace(co_await awaitable_op_attempt<AwaitableExecutor>(
                op, attempt_context_of(call, last.scope, clock), next.limited, same_executor, ex, last.limiter,
                caller_state));
          }
        } catch (...) {
          last.error = std::current_exception();
        }
      } else {
        using args_type = typename decltype(last)::args_type;
        try {
          co_await awaited<AwaitableExecutor>(
              token_attempt_start(op, last, attempt_context_of(call, last.scope, clock)));
        } catch (...) {
          // No co_await in here: the thrown exception becomes the attempt's failure value.
          last.args.set(args_type());
          std::get<0>(*last.args) = thrown_as<std::tuple_element_t<0, args_type>>(std::current_exception());
        }
      }
      if (!call) [[likely]] {  // a plain first attempt
        if (!last.failed()) {
          call.plain_attempt_succeeded();
          co_return last.template take<result_type>();
        }
        call.make_after_first_attempt();
      }
      // Whether its time limit cut it: an argument, not a local (which would sit in the frame).
      next = after_attempt(*call, last, caller_state, clock, next.limited && last.limiter->finish());
      continue;
    }
    switch (next.kind) {
      case action_kind::attempt:
        break;                  // above
      case action_kind::wait:   // above
      case action_kind::queue:  // above: needs_side_step takes every queued attempt to side_step
        assert(false);
        break;
      case action_kind::give_up:
        if constexpr (with_fallback<Op>) {
          if (falls_back(call->gave_up())) {
            const give_up_info info{*call->gave_up(), call->sent(),
                                    next.result != give_up_result::last_attempt ? failure(give_up_code(next.result))
                                                                                : last.delivered_failure()};
            co_return op.get_fallback().template substitute<result_type>(info);
          }
        }
        if (next.result != give_up_result::last_attempt) throw stamina::system_error(give_up_code(next.result));
        if (last.failed()) last.throw_last();
        [[fallthrough]];  // a result that on_result retried is delivered as the success it is
      case action_kind::deliver:
        co_return last.template take<result_type>();
    }
  }
}

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
