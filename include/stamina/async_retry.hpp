#ifndef STAMINA_ASYNC_RETRY_HPP
#define STAMINA_ASYNC_RETRY_HPP

#include <stamina/backoff.hpp>
#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/driver_support.hpp>
#include <stamina/error.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prepend.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/wait_traits.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace stamina {

namespace detail {

struct wait_done {};           // tags the completion of a backoff wait
struct timed_attempt_done {};  // tags an attempt raced against its time limit

// The composed operation behind every completion token except `use_awaitable` (which runs the
// loop directly in the caller's coroutine, see retry_awaitable_in_caller and
// retry_token_op_in_caller below).
template <class Clock, class WaitTraits, class Executor, class Op, class Allocator, class Signature>
class retry_op;

template <class Clock, class WaitTraits, class Executor, class Op, class Allocator, class First, class... Rest>
class retry_op<Clock, WaitTraits, Executor, Op, Allocator, void(First, Rest...)> {
  using timer_type = boost::asio::basic_waitable_timer<Clock, WaitTraits, Executor>;
  using traits = op_traits<Op>;

  // Everything that must stay at one address while inner operations are pending (the
  // backoff points at the policy; timers must not move while waiting).
  struct state {
    state(retry_policy&& p, Op&& o) : policy(std::move(p)), op(std::move(o)), retries(policy) {}
    retry_policy policy;
    Op op;
    backoff retries;
    typename Clock::time_point start{};
    std::optional<timer_type> wait_timer;     // created on the first real wait only
    std::optional<timer_type> attempt_timer;  // created when attempt_timeout applies
    std::optional<failure> last_failure;
    retry_scope scope;
  };
  using state_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<state>;
  using state_alloc_traits = std::allocator_traits<state_allocator>;

  struct state_deleter {
    state_allocator alloc;
    void operator()(state* p) {
      state_alloc_traits::destroy(alloc, p);
      state_alloc_traits::deallocate(alloc, p, 1);
    }
  };

 public:
  retry_op(const Executor& ex, retry_policy&& policy, Op&& op, const Allocator& alloc)
      : ex_(ex), state_(make_state(state_allocator(alloc), std::move(policy), std::move(op))) {}

  // Initiation: the first attempt.
  template <class Self>
  void operator()(Self& self) {
    // Terminal and partial cancellation are supported; total is not (earlier attempts may
    // have had effects that cannot be undone), so it is filtered out.
    self.reset_cancellation_state(boost::asio::enable_partial_cancellation());
    if (state_->retries.needs_clock()) state_->start = Clock::now();
    start_attempt(self);
  }

  // An attempt finished (no attempt time limit).
  template <class Self>
  void operator()(Self& self, First first, Rest... rest) {
    attempt_finished(self, false, std::move(first), std::move(rest)...);
  }

  // An attempt raced against its time limit: (order, attempt args..., timer error).
  template <class Self, class... A>
  void operator()(Self& self, timed_attempt_done, std::array<std::size_t, 2> order, A... args) {
    auto all = std::forward_as_tuple(args...);
    const boost::system::error_code timer_ec = std::get<sizeof...(A) - 1>(all);
    const bool timed_out = order[0] == 1 && !timer_ec;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      attempt_finished(self, timed_out, std::move(std::get<I>(all))...);
    }
    (std::make_index_sequence<sizeof...(A) - 1>{});
  }

  // A backoff wait finished.
  template <class Self>
  void operator()(Self& self, wait_done, boost::system::error_code ec) {
    if (ec || self.cancelled() != boost::asio::cancellation_type::none) {
      report_give_up(state_->retries, give_up_reason::cancelled, *state_->last_failure);
      complete(self, error_as<First>(boost::asio::error::operation_aborted), std::decay_t<Rest>{}...);
      return;
    }
    start_attempt(self);
  }

 private:
  duration elapsed() const {
    return state_->retries.needs_clock() ? duration(Clock::now() - state_->start) : duration(0);
  }

  template <class Self>
  void start_attempt(Self& self) {
    state& s = *state_;
    s.scope.clear();  // hook scopes end when the next attempt starts
    const Executor ex = ex_;
    if (const auto limit = s.retries.attempt_limit(elapsed())) {
      if (!s.attempt_timer) s.attempt_timer.emplace(ex);
      s.attempt_timer->expires_after(to_clock_duration<typename Clock::duration>(*limit));
      Op* op = &s.op;
      timer_type* timer = &*s.attempt_timer;
      // Whichever finishes first cancels the other; the group completes when both are done,
      // so no handler outlives the state it refers to.
      boost::asio::experimental::make_parallel_group(
          [op, ex](auto token) { return traits::start(*op, ex, std::move(token)); },
          [timer](auto token) { return timer->async_wait(std::move(token)); })
          .async_wait(boost::asio::experimental::wait_for_one(),
                      boost::asio::prepend(std::move(self), timed_attempt_done{}));
    } else if constexpr (traits::is_awaitable) {
      traits::start(s.op, ex, std::move(self));
    } else {
      std::optional<Self> parked(std::move(self));  // `this` now lives in `parked`
      s.op(attempt_token<Self>(&parked));
      if (parked) {
        // `op` returned without starting an operation: report it as a failed attempt.
        boost::asio::post(ex,
                          boost::asio::append(std::move(*parked), error_as<First>(boost::asio::error::invalid_argument),
                                              std::decay_t<Rest>{}...));
      }
    }
  }

  template <class Self>
  void attempt_finished(Self& self, bool timed_out, First first, Rest... rest) {
    state& s = *state_;
    if (!failed(first)) {
      s.retries.on_success();
      complete(self, std::move(first), std::move(rest)...);  // also when it raced a cancellation
      return;
    }
    const failure what = timed_out ? failure(make_error_code(error::attempt_timeout)) : failure(first);
    if (self.cancelled() != boost::asio::cancellation_type::none) {
      // A cancelled attempt is never retried; its own result is delivered.
      report_give_up(s.retries, give_up_reason::cancelled, what);
      complete(self, std::move(first), std::move(rest)...);
      return;
    }
    // A timed-out attempt is retryable whatever `on` says.
    const decision verdict = timed_out ? decision::retry() : s.retries.classify(what);
    const backoff::step next = s.retries.on_failure(verdict, elapsed());
    if (!next.retry) {
      report_give_up(s.retries, next.reason, what);
      if (timed_out)
        complete(self, error_as<First>(error::attempt_timeout), std::decay_t<Rest>{}...);
      else
        complete(self, std::move(first), std::move(rest)...);
      return;
    }
    report_retry(s.retries, next, what, s.scope);
    if (next.wait.count() <= 0) {
      start_attempt(self);
      return;
    }
    s.last_failure = what;
    if (!s.wait_timer) s.wait_timer.emplace(ex_);
    s.wait_timer->expires_after(to_clock_duration<typename Clock::duration>(next.wait));
    s.wait_timer->async_wait(boost::asio::prepend(std::move(self), wait_done{}));
  }

  template <class Self, class... Args>
  void complete(Self& self, Args&&... args) {
    state_.reset();  // timers, copies and hook scopes go before the handler runs
    self.complete(std::forward<Args>(args)...);
  }

  // The state comes from the handler's allocator (an allocator need not be default-constructible).
  static std::unique_ptr<state, state_deleter> make_state(state_allocator a, retry_policy&& policy, Op&& op) {
    state* p = state_alloc_traits::allocate(a, 1);
    try {
      state_alloc_traits::construct(a, p, std::move(policy), std::move(op));
    } catch (...) {
      state_alloc_traits::deallocate(a, p, 1);
      throw;
    }
    return std::unique_ptr<state, state_deleter>(p, state_deleter{a});
  }

  Executor ex_;
  std::unique_ptr<state, state_deleter> state_;
};

template <class Clock, class WaitTraits, class Executor, class Signature>
struct initiate_retry {
  Executor ex;

  template <class Handler, class Op>
  void operator()(Handler&& handler, retry_policy policy, Op op) const {
    // Asio's recycling allocator unless the handler names one: a retrying call then costs
    // no malloc in steady state.
    auto alloc = boost::asio::get_associated_allocator(handler, boost::asio::recycling_allocator<void>());
    using impl = retry_op<Clock, WaitTraits, Executor, Op, decltype(alloc), Signature>;
    boost::asio::async_compose<Handler, Signature>(impl(ex, std::move(policy), std::move(op), alloc), handler, ex);
  }
};

// --- use_awaitable: the loop runs inside the caller's coroutine ---------------------------
//
// Spawning a coroutine per attempt costs ~20x a plain co_await, so when the caller awaits the
// retry, the attempts are awaited directly. The call then obeys the caller's cancellation
// state and filter (this_coro::reset_cancellation_state), as any awaited operation does.

template <class AwaitableExecutor, class First, class... Rest>
struct awaited_result {
  using type = typename boost::asio::async_result<boost::asio::use_awaitable_t<AwaitableExecutor>,
                                                  void(First, Rest...)>::return_type;
};

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
    std::rethrow_exception(first);
  else
    throw boost::system::system_error(first);
}

// The retry state of a coroutine that retries in the caller's chain. Its steps are plain
// functions (the coroutines await the timer themselves, so a retry adds no coroutine frame),
// and the backoff and the timer only come into being once an attempt has failed.
template <class Clock, class WaitTraits, class AwaitableExecutor>
struct caller_loop {
  using timer_type = boost::asio::basic_waitable_timer<Clock, WaitTraits, AwaitableExecutor>;

  const retry_policy& policy;
  typename Clock::time_point start;
  std::optional<backoff> retries;
  std::optional<timer_type> timer;
  retry_scope scope;

  explicit caller_loop(const retry_policy& p)
      : policy(p), start(has_time_limit(p) ? Clock::now() : typename Clock::time_point{}) {}

  void succeeded() noexcept {
    if (retries)
      retries->on_success();
    else
      record_first_success(policy);
  }

  // After a failure: the wait before the next attempt, or nullopt to deliver the failure.
  std::optional<duration> decide(const failure& what, bool cancelled) {
    if (!retries) retries.emplace(policy);
    if (cancelled) {
      report_give_up(*retries, give_up_reason::cancelled, what);
      return std::nullopt;
    }
    const duration elapsed = retries->needs_clock() ? duration(Clock::now() - start) : duration(0);
    const backoff::step next = retries->on_failure(what, elapsed);
    if (!next.retry) {
      report_give_up(*retries, next.reason, what);
      return std::nullopt;
    }
    report_retry(*retries, next, what, scope);
    return next.wait;
  }

  // Sets the timer for a wait; created on the first wait only.
  timer_type& arm(duration wait, const AwaitableExecutor& ex) {
    if (!timer) timer.emplace(ex);
    timer->expires_after(to_clock_duration<typename Clock::duration>(wait));
    return *timer;
  }

  [[noreturn]] void abort_wait(const failure& what) {
    scope.clear();
    report_give_up(*retries, give_up_reason::cancelled, what);
    throw boost::system::system_error(boost::asio::error::operation_aborted);
  }
};

// The awaited wait of a caller loop, written out in each coroutine (a helper coroutine would
// add a frame per retry). Throws system_error(operation_aborted) when cancelled.
#define STAMINA_DETAIL_AWAIT_RETRY(loop, what, give_up)                                                    \
  {                                                                                                        \
    const auto before_ = co_await boost::asio::this_coro::cancellation_state;                              \
    const std::optional<duration> wait_ =                                                                  \
        (loop).decide((what), before_.cancelled() != boost::asio::cancellation_type::none);                \
    if (!wait_) (give_up);                                                                                 \
    if (wait_->count() > 0) {                                                                              \
      auto& timer_ = (loop).arm(*wait_, co_await boost::asio::this_coro::executor);                        \
      bool aborted_ = false;                                                                               \
      try {                                                                                                \
        co_await timer_.async_wait(boost::asio::use_awaitable_t<AwaitableExecutor>{});                     \
      } catch (const boost::system::system_error&) {                                                       \
        aborted_ = true;                                                                                   \
      }                                                                                                    \
      const auto after_ = co_await boost::asio::this_coro::cancellation_state;                             \
      if (aborted_ || after_.cancelled() != boost::asio::cancellation_type::none) (loop).abort_wait(what); \
    }                                                                                                      \
    (loop).scope.clear();                                                                                  \
  }

// Whether the awaiting coroutine already runs on `ex` (then attempts are awaited directly;
// otherwise each is co_spawned onto `ex`). Cheap: no executor is converted or allocated.
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

// The success path costs the attempt, one executor check and (with a deadline) a clock read;
// the backoff, the loop state and any timer exist only once an attempt has failed.
template <class Clock, class WaitTraits, class AwaitableExecutor, class Executor, class Op>
boost::asio::awaitable<typename op_traits<Op>::value_type, AwaitableExecutor> retry_awaitable_in_caller(
    Executor ex, retry_policy policy, Op op) {
  using value_type = typename op_traits<Op>::value_type;
  const bool same_executor = runs_on(co_await boost::asio::this_coro::executor, ex);
  caller_loop<Clock, WaitTraits, AwaitableExecutor> loop(policy);
  for (;;) {
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
    try {
      if constexpr (std::is_void_v<value_type>) {
        if (same_executor)
          co_await op();
        else
          co_await boost::asio::co_spawn(ex, op(), boost::asio::use_awaitable_t<AwaitableExecutor>{});
        value.emplace(true);
      } else {
        if (same_executor)
          value.emplace(co_await op());
        else
          value.emplace(co_await boost::asio::co_spawn(ex, op(), boost::asio::use_awaitable_t<AwaitableExecutor>{}));
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (!error) {
      loop.succeeded();
      if constexpr (std::is_void_v<value_type>)
        co_return;
      else
        co_return std::move(*value);
    }
    const failure what(error);
    STAMINA_DETAIL_AWAIT_RETRY(loop, what, std::rethrow_exception(error))  // the same exception object
  }
}

template <class Clock, class WaitTraits, class AwaitableExecutor, class Op, class First, class... Rest>
typename awaited_result<AwaitableExecutor, First, Rest...>::type retry_token_op_in_caller(retry_policy policy, Op op) {
  using result_type = typename awaited_result<AwaitableExecutor, First, Rest...>::type;
  using value_type = typename awaitable_parts<result_type>::value_type;
  caller_loop<Clock, WaitTraits, AwaitableExecutor> loop(policy);
  for (;;) {
    std::tuple<First, Rest...> result =
        co_await op(boost::asio::as_tuple(boost::asio::use_awaitable_t<AwaitableExecutor>{}));
    First& first = std::get<0>(result);
    if (!failed(first)) {
      loop.succeeded();
      if constexpr (std::is_void_v<value_type>)
        co_return;
      else
        co_return unpack_values<value_type>(std::move(result));
    }
    const failure what(first);
    STAMINA_DETAIL_AWAIT_RETRY(loop, what, throw_failure(first))
  }
}

#undef STAMINA_DETAIL_AWAIT_RETRY

template <class T>
struct is_use_awaitable : std::false_type {};
template <class Executor>
struct is_use_awaitable<boost::asio::use_awaitable_t<Executor>> : std::true_type {
  using executor_type = Executor;
};

template <class T>
decltype(auto) executor_of(T& ex_or_context) {
  if constexpr (std::is_convertible_v<T&, boost::asio::execution_context&>)
    return ex_or_context.get_executor();
  else
    return (ex_or_context);
}

template <class Signature>
struct split_signature;
template <class First, class... Rest>
struct split_signature<void(First, Rest...)> {
  template <class Clock, class WaitTraits, class AwaitableExecutor, class Op>
  static auto in_caller(retry_policy&& policy, Op op) {
    return retry_token_op_in_caller<Clock, WaitTraits, AwaitableExecutor, Op, std::decay_t<First>,
                                    std::decay_t<Rest>...>(std::move(policy), std::move(op));
  }
};

// The implementation behind stamina::async_retry, with the clock injectable for tests.
template <class Clock, class WaitTraits, class ExecutorOrContext, class Op, class CompletionToken>
auto async_retry_with_clock(ExecutorOrContext&& ex_or_context, retry_policy&& policy, Op op, CompletionToken&& token) {
  using executor_type = std::decay_t<decltype(executor_of(ex_or_context))>;
  using op_type = std::decay_t<Op>;
  using traits = op_traits<op_type>;
  using signature = typename decayed_signature<typename traits::signature>::type;
  (void)signature_head<signature>{};
  executor_type ex = executor_of(ex_or_context);
  using token_type = std::decay_t<CompletionToken>;

  const auto generic = [&] {
    return boost::asio::async_initiate<CompletionToken, signature>(
        initiate_retry<Clock, WaitTraits, executor_type, signature>{ex}, token, std::move(policy), std::move(op));
  };
  if constexpr (is_use_awaitable<token_type>::value) {
    using awaitable_executor = typename is_use_awaitable<token_type>::executor_type;
    // An attempt time limit needs a second, parallel operation: the composed op does that.
    if constexpr (traits::is_awaitable) {
      if constexpr (std::is_same_v<typename traits::awaitable_executor, awaitable_executor>) {
        if (policy.attempt_timeout()) return generic();
        return retry_awaitable_in_caller<Clock, WaitTraits, awaitable_executor>(ex, std::move(policy), std::move(op));
      } else {
        return generic();
      }
    } else {
      if (policy.attempt_timeout()) return generic();
      return split_signature<signature>::template in_caller<Clock, WaitTraits, awaitable_executor>(std::move(policy),
                                                                                                   std::move(op));
    }
  } else {
    return generic();
  }
}

}  // namespace detail

/// Runs `op` until it succeeds or `policy` gives up, waiting on a `steady_timer` between
/// attempts (exponential backoff with jitter, DESIGN.md §2).
///
/// @param ex      The executor (or execution context) on which awaitable attempts are spawned
///                and backoff timers are created.
/// @param policy  Decay-copied. A `retry_on` converts implicitly (all defaults).
/// @param op      Decay-copied; called once per attempt. Either
///                - `op()` returning `asio::awaitable<T, E>`: failures are exceptions; or
///                - `op(token)` starting an Asio operation whose completion signature begins
///                  with `error_code` or `std::exception_ptr`: failures are non-success first
///                  arguments.
/// @param token   Any completion token; default `asio::use_awaitable`.
///
/// @par Completion signature
/// For `op()` returning `awaitable<T>`: `void(std::exception_ptr, T)` (`void(std::exception_ptr)`
/// for `awaitable<void>`), as `co_spawn`. For `op(token)`: exactly the operation's signature,
/// e.g. `void(error_code)` for `async_connect`, so retrying is invisible to the caller. On
/// success, the successful attempt's arguments; on give-up, the last attempt's arguments
/// unchanged (the same exception object). After a cancelled wait the first argument is
/// `asio::error::operation_aborted`, after a last attempt that timed out it is
/// `stamina::error::attempt_timeout` (as `system_error` in an `exception_ptr`), the remaining
/// arguments value-initialised.
///
/// @par Per-operation cancellation
/// `terminal` and `partial` are supported. During a wait the timer is cancelled and the call
/// completes with `operation_aborted`. During an attempt the cancellation is forwarded to the
/// attempt, which is then never retried: its result (success or failure) is delivered. `total`
/// is not supported and is ignored, because earlier attempts may have had effects. With
/// `use_awaitable` the loop runs in the awaiting coroutine and honours that coroutine's
/// cancellation state and filter (terminal only, by default).
///
/// @par Executor
/// The completion handler runs on its associated executor (default: that of `ex`), never
/// inside `async_retry` itself. Outstanding work is tracked on `ex` and on the handler's
/// executor while the operation is pending. The handler's associated allocator (default: Asio's
/// recycling allocator) is used for the operation's state.
///
/// @par Object lifetimes
/// `policy` and `op` are copied into the operation; objects `op` refers to (sockets, buffers)
/// must outlive it. Destroying or stopping the `io_context` mid-retry destroys the state
/// without calling the handler, and leaks nothing.
///
/// @par Errors
/// Only failures accepted by `policy.on()` are retried; any other failure is delivered at
/// once. A classifier that throws counts as "do not retry". `op()` itself must not throw when
/// called (throw inside the coroutine instead).
///
/// @par Thread safety
/// Distinct calls are independent. One call's intermediate handlers are serialised through the
/// handler's executor; use a strand when the `io_context` runs on several threads and the
/// attempt touches shared objects. Hooks and the budget are thread-safe.
template <class ExecutorOrContext, class Op, class CompletionToken = boost::asio::use_awaitable_t<>>
auto async_retry(ExecutorOrContext&& ex, retry_policy policy, Op op, CompletionToken&& token = {}) {
  return detail::async_retry_with_clock<std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>>(
      ex, std::move(policy), std::move(op), std::forward<CompletionToken>(token));
}

}  // namespace stamina

#endif
