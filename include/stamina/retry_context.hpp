#ifndef STAMINA_RETRY_CONTEXT_HPP
#define STAMINA_RETRY_CONTEXT_HPP

// Python's retry_context: the attempts of one call, for code that writes its own loop body
// (several statements, co_await in the middle) instead of passing a function to retry().
// Another driver of the retry protocol: the loop body is the attempt.

#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/place_wait.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/error.hpp>
#include <stamina/failure.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_policy.hpp>

#include <stamina/detail/asio.hpp>

#include <chrono>
#include <exception>
#include <iterator>
#include <optional>
#include <stop_token>

STAMINA_NAMESPACE_BEGIN

namespace detail {
[[noreturn]] void throw_context_misuse(const char* what);
}  // namespace detail

/// The attempts of one retrying call, for a hand-written loop: Python's `retry_context`.
/// Switches, deadline, budget, throttle, hooks and logging behave exactly as in `retry`.
///
/// Blocking form, a range of attempts; a body that reports no failure ends the loop:
/// @code
/// for (stamina::attempt& attempt : stamina::retry_context(policy)) {
///   try {
///     connect();
///   } catch (const std::system_error&) {
///     attempt.failed();  // retried: the loop waits, then runs the body again; not: rethrown
///   }
/// }
/// @endcode
///
/// Coroutine form: `co_await ctx.async_next()` waits on a timer (never blocking the thread)
/// and returns the next attempt, or null when the call is over; no `co_await` is needed in a
/// `catch` block, and no exception or duration has to be carried out of it:
/// @code
/// stamina::retry_context ctx(policy);
/// while (stamina::attempt* attempt = co_await ctx.async_next()) {
///   try {
///     co_await socket.async_connect(endpoint, asio::use_awaitable);
///   } catch (const stamina::system_error&) {
///     attempt->failed();
///   }
/// }
/// @endcode
///
/// Leaving the body with `return`, `co_return` or `break` after a success is a success too:
/// it is recorded (budget refund, throttle) when the context is destroyed.
///
/// Reporting a failure: `failed()` in a `catch` block (the current exception), or
/// `failed(error_code)`. When the policy gives up on an exception, `failed()` rethrows that
/// same exception object; on an error code it returns and the loop ends (the caller still
/// holds its code; `gave_up()` says why). A give-up after attempts the throttle held back
/// still delivers the body's last failure (rethrows its exception); only when no attempt was
/// ever made does it throw `stamina::system_error(stamina::error::throttled)`.
///
/// The context refers to nothing but itself: it keeps a copy of the policy. It is neither
/// copyable nor movable; `Clock` is for tests (a virtual clock with Asio wait traits).
/// A policy with `attempt_timeout` or `on_result` is rejected (`std::invalid_argument`):
/// the context cannot interrupt the body or see its result.
template <class Clock = std::chrono::steady_clock>
class basic_retry_context;

namespace detail {
// How the blocking form of a context on `Clock` sleeps: the thread, on the steady clock, until
// `stop` is requested (false then). Tests specialise it for their virtual clock.
template <class Clock>
struct blocking_sleep {
  static bool sleep(const std::stop_token& stop, duration d) { return stoppable_sleeper{stop}(d); }
};
}  // namespace detail

/// One attempt of a retry_context.
class attempt {
 public:
  /// The attempt's number, from 1 (attempts the throttle held back included).
  unsigned num() const noexcept { return call_->attempts(); }
  /// The wait that follows if this attempt fails with an ordinary retryable failure (the
  /// very draw the failure will make); it ignores the deadline, the attempt limit and
  /// server-given waits.
  duration next_wait() const { return call_->next_wait(); }
  /// The attempt's context (number, time left when asked, call id, name), for an outgoing
  /// request's headers and for a nested call (`retry_policy::within`): valid until the attempt
  /// ends.
  const attempt_context& context() { return call_->context(scope_, elapsed_(), origin_); }
  /// This attempt failed with the exception being handled (call it in a `catch` block).
  /// Retryable: returns, and the loop waits before the next attempt. Otherwise the call gives
  /// up and the same exception object is rethrown. A second report of one attempt is ignored.
  void failed() { failed(failure(checked(std::current_exception()))); }
  /// This attempt failed with `e` (not null); as above.
  void failed(std::exception_ptr e) { failed(failure(checked(std::move(e)))); }
  /// This attempt failed with `ec`. Retryable: returns, and the loop waits. Otherwise the call
  /// gives up and the loop ends after this body.
  void failed(stamina::error_code ec) { failed(failure(ec)); }

 private:
  template <class Clock>
  friend class basic_retry_context;
  static std::exception_ptr checked(std::exception_ptr e) {
    if (!e) detail::throw_context_misuse("attempt::failed() needs an exception: call it in a catch block");
    return e;
  }
  void failed(const failure& what);

  detail::retry_protocol* call_ = nullptr;
  detail::attempt_scope scope_;      // the context, once asked for
  double origin_ = 0;                // when the call started, on its clock (stopwatch::origin)
  detail::action next_{};            // what follows this attempt, once it failed
  std::optional<failure> last_;      // its failure
  detail::duration_source elapsed_;  // the context's stopwatch
  bool reported_ = false;            // failed() was called for the current attempt
  bool over_ = false;                // the call ended
};

template <class Clock>
class basic_retry_context {
 public:
  /// A call under `policy` (copied), blocking waits uninterruptible.
  explicit basic_retry_context(retry_policy policy, detail::caller where = {})
      : policy_(std::move(policy)), call_(policy_, &where) {
    check();
  }
  /// Same; a stop request on `stop` ends the current blocking wait at once (then the last
  /// failure is rethrown, or the loop ends after an error code).
  basic_retry_context(retry_policy policy, std::stop_token stop, detail::caller where = {})
      : policy_(std::move(policy)), call_(policy_, &where), stop_(std::move(stop)) {
    check();
  }
  basic_retry_context(const basic_retry_context&) = delete;
  basic_retry_context& operator=(const basic_retry_context&) = delete;
  /// A body that leaves the loop (`return`, `co_return`, `break`) without reporting a failure
  /// succeeded: the budget and the throttle are told so here, as a loop step would. Not when
  /// the context is destroyed by an exception leaving the body.
  ~basic_retry_context() {
    if (started_ && !attempt_.over_ && !attempt_.reported_ && std::uncaught_exceptions() == uncaught_at_start_)
      call_.attempt_succeeded();
  }

  /// Iterates the attempts of a blocking call (see the class comment).
  class iterator {
   public:
    using value_type = stamina::attempt;     ///< what each step yields
    using difference_type = std::ptrdiff_t;  ///< required of an iterator
    /// The current attempt.
    stamina::attempt& operator*() const noexcept { return ctx_->attempt_; }
    /// Ends the attempt (a success if it reported no failure) and, after a failure, waits
    /// (blocking) before the next one.
    iterator& operator++() {
      ctx_->step_blocking();
      return *this;
    }
    /// Same as the prefix form.
    void operator++(int) { ++*this; }
    /// True once the call is over.
    friend bool operator==(const iterator& it, std::default_sentinel_t /*end*/) noexcept { return it.at_end(); }

   private:
    friend class basic_retry_context;
    explicit iterator(basic_retry_context* ctx) noexcept : ctx_(ctx) {}
    bool at_end() const noexcept { return ctx_->over(); }
    basic_retry_context* ctx_;
  };

  /// Starts the call: the first attempt (or, if the throttle holds it back, a blocking wait).
  iterator begin() {
    if (started_) detail::throw_context_misuse("a retry_context runs once");
    step_blocking();
    return iterator(this);
  }
  /// The end of the attempts.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Coroutine form: ends the current attempt (a success if it reported no failure), waits on
  /// a timer of the coroutine's executor after a failure, and returns the next attempt, or
  /// null when the call is over. Honours the coroutine's cancellation state: a cancelled wait
  /// throws `system_error(operation_aborted)`, as `async_retry` does.
  template <class Executor = stamina::net::any_io_executor>
  stamina::net::awaitable<stamina::attempt*, Executor> async_next() {
    using timer_type = stamina::net::basic_waitable_timer<Clock, stamina::net::wait_traits<Clock>, Executor>;
    detail::action next = advance();
    while (next.kind == detail::action_kind::wait || next.kind == detail::action_kind::queue) {
      if (next.kind == detail::action_kind::queue) {
        detail::place_wait<timer_type> place;
        if (place.start(*call_.state().limit(), co_await stamina::net::this_coro::executor, next.limit())) {
          next = call_.place_wait_finished(clock_.elapsed(), true, false, place.claim());
          continue;
        }
        const auto [ec] =
            co_await place.async_wait(detail::asio_compat::as_tuple(stamina::net::use_awaitable_t<Executor>{}));
        const bool granted = place.finish();
        const auto state = co_await stamina::net::this_coro::cancellation_state;
        const bool cancelled = detail::cancel_requested(state);
        next = call_.place_wait_finished(clock_.elapsed(), granted, cancelled || (ec && !granted), place.ticket());
        if (next.kind == detail::action_kind::give_up && next.result == detail::give_up_result::aborted) {
          attempt_.over_ = true;
          throw stamina::system_error(stamina::net::error::operation_aborted);
        }
        continue;
      }
      timer_type timer(co_await stamina::net::this_coro::executor);
      timer.expires_after(detail::to_clock_duration<typename Clock::duration>(next.wait()));
      const auto [ec] =
          co_await timer.async_wait(detail::asio_compat::as_tuple(stamina::net::use_awaitable_t<Executor>{}));
      const auto state = co_await stamina::net::this_coro::cancellation_state;
      const bool interrupted = ec || detail::cancel_requested(state);
      next = call_.wait_finished(clock_.elapsed(), interrupted);
      if (next.kind == detail::action_kind::give_up && next.result == detail::give_up_result::aborted) {
        attempt_.over_ = true;  // the call is over: asking again gives no attempt
        throw stamina::system_error(stamina::net::error::operation_aborted);
      }
    }
    co_return settle(next);
  }

  /// Why the call gave up; nullopt while it runs or after a success.
  std::optional<give_up_reason> gave_up() const noexcept { return call_.gave_up(); }
  /// Attempts made so far.
  unsigned attempts() const noexcept { return call_.attempts(); }

 private:
  bool over() const noexcept { return attempt_.over_; }
  void check() {
    if (policy_.attempt_timeout())
      detail::throw_context_misuse(
          "the policy's attempt_timeout cannot be applied: the context cannot interrupt "
          "the loop body");
    if (policy_.has_on_result())
      detail::throw_context_misuse(
          "the policy's on_result cannot be applied: the context does not see the body's "
          "result (report a result to retry with attempt.failed(...))");
    attempt_.call_ = &call_;
    attempt_.elapsed_ = detail::duration_source(&clock_);
  }

  // What follows the body that just ran (or the start): an attempt, a wait, or the end.
  detail::action advance() {
    if (!started_) {
      started_ = true;
      clock_ = detail::stopwatch<Clock>(call_.needs_clock(), call_.precise_clock());
      attempt_.origin_ = clock_.origin();
      return call_.start(duration(0), attempt_.origin_);
    }
    if (attempt_.over_) return detail::action::deliver();
    if (!attempt_.reported_) return call_.attempt_succeeded();  // the body reported no failure
    return attempt_.next_;
  }

  // The next attempt, or null at the end of the call.
  stamina::attempt* settle(const detail::action& next) {
    switch (next.kind) {
      case detail::action_kind::attempt:
        attempt_.reported_ = false;
        return &attempt_;
      case detail::action_kind::give_up:
        attempt_.over_ = true;
        // The last failure the body reported, as it was (an exception is rethrown; a caller of
        // error codes holds its own); `throttled` or `circuit_open` only when no attempt was ever
        // made.
        if ((detail::nothing_sent(next.result) || next.result == detail::give_up_result::aborted) && !attempt_.last_)
          throw stamina::system_error(detail::give_up_code(next.result));
        if (attempt_.last_ && attempt_.last_->is_exception()) std::rethrow_exception(attempt_.last_->exception());
        return nullptr;
      case detail::action_kind::wait:  // performed by the caller
      case detail::action_kind::queue:
      case detail::action_kind::deliver:
        break;
    }
    attempt_.over_ = true;
    return nullptr;
  }

  void step_blocking() {
    detail::action next = advance();
    for (;;) {
      if (next.kind == detail::action_kind::wait) {
        next = call_.wait_finished(clock_.elapsed(), !sleep(next.wait()));
      } else if (next.kind == detail::action_kind::queue) {
        std::uint32_t ticket = 0;
        const bool granted = call_.state().limit()->wait(next.limit(), &stop_, &ticket);
        next = call_.place_wait_finished(clock_.elapsed(), granted, stop_.stop_requested(), ticket);
      } else {
        break;
      }
    }
    settle(next);
  }

  // false when a stop was requested (a token that cannot stop waits the whole time)
  bool sleep(duration d) const { return detail::blocking_sleep<Clock>::sleep(stop_, d); }

  retry_policy policy_;
  detail::retry_protocol call_;
  std::stop_token stop_;
  detail::stopwatch<Clock> clock_{false};
  stamina::attempt attempt_;
  int uncaught_at_start_ = std::uncaught_exceptions();
  bool started_ = false;
};

/// The attempts of one call on the steady clock (see basic_retry_context).
using retry_context = basic_retry_context<>;

inline void attempt::failed(const failure& what) {
  if (reported_ || over_) return;
  reported_ = true;
  last_ = what;
  next_ = call_->attempt_failed(what, elapsed_(), false);
  if (next_.kind != detail::action_kind::give_up) return;
  over_ = true;
  if (!what.is_exception()) return;  // the loop ends; the caller holds its error code
  std::rethrow_exception(what.exception());
}

STAMINA_NAMESPACE_END

#endif
