// Regression tests for the defects an independent audit of version 0.1 found in the
// asynchronous drivers. Each failed before the retry protocol was rewritten.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/global.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/io_context_strand.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

namespace {

const error_code refused = asio::error::connection_refused;

stamina::retry_policy refused_policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
      .wait_initial(1ms)
      .wait_jitter(0s)
      .timeout(std::nullopt);
}

// An operation that completes inside its initiating function (as one that dispatches its
// handler, or finds its result ready, may do).
struct inline_op {
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  int succeed_at = 1;

  template <class Token>
  auto operator()(Token&& token) const {
    const error_code ec = ++*calls < succeed_at ? refused : error_code();
    return asio::async_initiate<Token, void(error_code)>([ec](auto handler) { std::move(handler)(ec); }, token);
  }
};

// Whether op(token) was handed the caller-coroutine driver's token: its attempt completes into
// the coroutine (attempt_end_handler, which watches its start itself: no wrapper), its inner
// handler bound to a time limit's slot or not. The composed
// operation hands it one for its own handler.
template <class Handler>
struct coroutine_attempt_handler : std::false_type {};
template <class Handler, class Outcome>
struct coroutine_attempt_handler<stamina::detail::attempt_end_handler<Handler, Outcome>> : std::true_type {};
template <class Token>
struct completes_into_the_coroutine : std::false_type {};
template <class Handler>
struct completes_into_the_coroutine<stamina::detail::attempt_token<Handler>> : coroutine_attempt_handler<Handler> {};

// Runs a coroutine to completion, rethrowing what it threw.
template <class F>
void run_coroutine(asio::io_context& ctx, F f) {
  auto rec = std::make_shared<test::completion_record>();
  std::exception_ptr failure;
  asio::co_spawn(ctx, std::move(f), test::once(rec, [&](const std::exception_ptr& e) { failure = e; }));
  ctx.run();
  BOOST_REQUIRE_EQUAL(rec->calls, 1);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(audit)

// With attempt_timeout, an op(token) that returned without starting an operation made the
// call vanish: the handler was destroyed uncalled.
BOOST_AUTO_TEST_CASE(op_that_starts_nothing_with_attempt_timeout_still_completes) {
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  auto calls = std::make_shared<int>(0);
  // Uses its token's type, but never starts the operation.
  auto op = [calls](auto token) -> decltype(auto) {
    ++*calls;
    using started = decltype(asio::post(std::declval<asio::io_context&>(), asio::append(std::move(token), refused)));
    return started();
  };
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  stamina::async_retry(ctx, refused_policy().attempt_timeout(1s), op,
                       test::once(rec, [&](error_code ec) { got = ec; }));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST((got == asio::error::invalid_argument));  // not retried: `on` names only refused
  BOOST_TEST(*calls == 1);

  // and in a coroutine
  bool threw = false;
  ctx.restart();
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    try {
      co_await stamina::async_retry(ctx, refused_policy().attempt_timeout(1s), [&ctx](auto token) {
        return asio::post(ctx, asio::append(std::move(token), refused));
      });
    } catch (const boost::system::system_error& e) {
      threw = e.code() == refused;
    }
  });
  BOOST_TEST(threw);
}

// An attempt that completed inline ran the final handler inside async_retry(), and a
// use_future future was ready before run().
BOOST_AUTO_TEST_CASE(inline_completion_never_runs_the_handler_inside_async_retry) {
  for (int mode = 0; mode < 3; ++mode) {  // normal, inactive, testing
    BOOST_TEST_CONTEXT("mode " << mode) {
      std::optional<stamina::testing_scope> testing;
      if (mode == 1) stamina::set_active(false);
      if (mode == 2) testing.emplace(3);
      test::io_fixture io;
      asio::io_context& ctx = io.ctx;
      auto rec = std::make_shared<test::completion_record>();
      inline_op op{.succeed_at = mode == 1 ? 1 : 2};
      test::initiate([&] {
        stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [](error_code ec) { BOOST_TEST(!ec); }));
      });
      BOOST_TEST(rec->calls == 0);
      std::future<void> f = stamina::async_retry(ctx, refused_policy(), inline_op{}, asio::use_future);
      BOOST_TEST((f.wait_for(0s) == std::future_status::timeout));
      ctx.run();
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST(!rec->called_inline);
      BOOST_TEST((f.wait_for(0s) == std::future_status::ready));
      stamina::set_active(true);
    }
  }
}

// Attempts that complete inline with zero waits grew the stack by ~1.5 KB each: 10,000 of
// them in a testing scope overflowed it.
BOOST_AUTO_TEST_CASE(ten_thousand_inline_attempts_do_not_grow_the_stack) {
  stamina::testing_scope scope(10000);
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  inline_op op{.succeed_at = 10000};
  auto rec = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [](error_code ec) { BOOST_TEST(!ec); }));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(*op.calls == 10000);
}

// The same under use_awaitable, where each attempt's completion resumes the coroutine: an op
// that completes inside its initiation resumes it there (Asio's rule for an awaited operation),
// and the stack must not grow by one attempt's frames per attempt.
BOOST_AUTO_TEST_CASE(ten_thousand_inline_attempts_under_use_awaitable_do_not_grow_the_stack) {
  stamina::testing_scope scope(10000);
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  inline_op op{.succeed_at = 10000};
  bool succeeded = false;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    co_await stamina::async_retry(ctx, refused_policy(), op);
    succeeded = true;
  });
  BOOST_TEST(succeeded);
  BOOST_TEST(*op.calls == 10000);
}

// An op that threw when called escaped from async_retry() or from run() and dropped the
// handler. It is now a failed attempt: classified, retried or delivered.
BOOST_AUTO_TEST_CASE(op_that_throws_is_a_failed_attempt) {
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  auto calls = std::make_shared<int>(0);
  auto op = [calls, &ctx](auto token) {
    if (++*calls == 1) throw std::runtime_error("could not start");
    return asio::post(ctx, asio::append(std::move(token), error_code()));
  };
  // error_code signature: the exception becomes stamina::error::op_threw
  const auto retry_throws = stamina::retry_policy(stamina::on_error(stamina::error::op_threw)).wait_initial(1ms);
  auto rec = std::make_shared<test::completion_record>();
  error_code got = refused;
  test::initiate(
      [&] { stamina::async_retry(ctx, retry_throws, op, test::once(rec, [&](error_code ec) { got = ec; })); });
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!got);
  BOOST_TEST(*calls == 2);

  // not retried: delivered, never thrown out of run()
  *calls = 0;
  ctx.restart();
  auto rec2 = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, refused_policy(), op, test::once(rec2, [&](error_code ec) { got = ec; }));
  BOOST_CHECK_NO_THROW(ctx.run());
  BOOST_TEST(rec2->calls == 1);
  BOOST_TEST((got == stamina::error::op_threw));

  // a system_error thrown by op delivers its code
  ctx.restart();
  auto rec3 = std::make_shared<test::completion_record>();
  auto throws_code = [&ctx](auto token) {
    if (ctx.get_executor() == ctx.get_executor()) throw boost::system::system_error(asio::error::host_not_found);
    return asio::post(ctx, asio::append(std::move(token), error_code()));
  };
  stamina::async_retry(ctx, refused_policy(), throws_code, test::once(rec3, [&](error_code ec) { got = ec; }));
  ctx.run();
  BOOST_TEST((got == asio::error::host_not_found));

  // in a coroutine: the same failed attempt, retried
  *calls = 0;
  ctx.restart();
  run_coroutine(ctx, [&]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, retry_throws, op); });
  BOOST_TEST(*calls == 2);
}

// An op whose initiation took the handler and then lost it: it threw (Asio destroys the handler
// uncalled), or had the handler destroyed on another thread before returning. The composed
// operation freed its state with the handler and then wrote into it (heap-use-after-free); a
// coroutine's call never completed. Each driver now fails the attempt: with what the op threw,
// or invalid_argument (it started nothing that will complete).
BOOST_AUTO_TEST_CASE(op_whose_initiation_loses_the_handler_is_a_failed_attempt) {
  enum class loss { thrown, destroyed_elsewhere };
  for (const loss how : {loss::thrown, loss::destroyed_elsewhere}) {
    BOOST_TEST_CONTEXT("loss " << static_cast<int>(how)) {
      test::io_fixture io;
      asio::io_context& ctx = io.ctx;
      auto calls = std::make_shared<int>(0);
      auto op = [calls, how, &ctx](auto token) {
        return asio::async_initiate<decltype(token), void(error_code)>(
            [calls, how, &ctx](auto handler) {
              if (++*calls % 2 == 0) {  // every second attempt starts normally
                asio::post(ctx, asio::append(std::move(handler), error_code()));
                return;
              }
              if (how == loss::thrown) {
                auto taken = std::move(handler);
                throw std::runtime_error("initiation failed after taking the handler");
              }
              std::thread([taken = std::move(handler)]() mutable { auto gone = std::move(taken); }).join();
            },
            token);
      };
      const error_code expected =
          how == loss::thrown ? error_code(stamina::error::op_threw) : error_code(asio::error::invalid_argument);
      auto rec = std::make_shared<test::completion_record>();
      error_code got;
      test::initiate(
          [&] { stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [&](error_code ec) { got = ec; })); });
      ctx.run();
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST(got == expected);

      // retried to success (the second attempt starts normally)
      const auto retried = stamina::retry_policy(stamina::on_error(expected)).wait_initial(1ms).wait_jitter(0s);
      auto rec2 = std::make_shared<test::completion_record>();
      got = expected;
      *calls = 0;
      ctx.restart();
      stamina::async_retry(ctx, retried, op, test::once(rec2, [&](error_code ec) { got = ec; }));
      ctx.run();
      BOOST_TEST(rec2->calls == 1);
      BOOST_TEST(!got);
      BOOST_TEST(*calls == 2);

      // in a coroutine (the attempt started into the coroutine's own handler)
      *calls = 0;
      ctx.restart();
      error_code thrown_code;
      run_coroutine(ctx, [&]() -> asio::awaitable<void> {
        try {
          co_await stamina::async_retry(ctx, refused_policy(), op);
        } catch (const boost::system::system_error& e) {
          thrown_code = e.code();
        }
        *calls = 0;
        co_await stamina::async_retry(ctx, retried, op);
      });
      BOOST_TEST(thrown_code == expected);
      BOOST_TEST(*calls == 2);

      // a hedge's attempt (not hedged: the failure is not one it retries)
      *calls = 0;
      ctx.restart();
      auto rec3 = std::make_shared<test::completion_record>();
      got = error_code();
      const auto hedging = stamina::hedging_policy(stamina::on_error(refused)).budget(nullptr);
      stamina::async_hedge(ctx, hedging, op, test::once(rec3, [&](error_code ec) { got = ec; }));
      ctx.run();
      BOOST_TEST(rec3->calls == 1);
      BOOST_TEST(got == expected);
      BOOST_TEST(*calls == 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(awaitable_op_that_throws_before_its_coroutine_starts) {
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  auto calls = std::make_shared<int>(0);
  // Not a coroutine itself: it may throw before returning the awaitable.
  auto op = [calls]() -> asio::awaitable<int> {
    if (++*calls == 1) throw test::transient_error("no connection yet");
    return []() -> asio::awaitable<int> { co_return 42; }();
  };
  const auto policy = test::retry_transient().wait_initial(1ms).wait_jitter(0s);
  auto rec = std::make_shared<test::completion_record>();
  int value = 0;
  stamina::async_retry(ctx, policy, op, test::once(rec, [&](const std::exception_ptr& e, int v) {
                         BOOST_TEST(!e);
                         value = v;
                       }));
  BOOST_CHECK_NO_THROW(ctx.run());
  BOOST_TEST(value == 42);
  *calls = 0;
  ctx.restart();
  run_coroutine(ctx, [&]() -> asio::awaitable<void> { value = co_await stamina::async_retry(ctx, policy, op) + 1; });
  BOOST_TEST(value == 43);
  BOOST_TEST(*calls == 2);
}

// A policy value no longer picks the driver: with attempt_timeout, a use_awaitable call runs
// in the caller's coroutine (no composed operation, no co_spawn for op(token): the attempt
// completes on the coroutine's executor), so it honours the caller's cancellation filter like
// any awaited operation.
BOOST_AUTO_TEST_CASE(attempt_timeout_keeps_the_caller_coroutine_driver) {
  test::io_fixture io;
  asio::io_context& ctx = io.ctx;
  int attempts = 0;
  int composed = 0;
  bool timed_out = false;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    std::vector<std::unique_ptr<asio::steady_timer>> timers;  // outlive their waits
    auto hang = [&](auto token) {
      ++attempts;
      timers.push_back(std::make_unique<asio::steady_timer>(ctx, 1h));
      if (!completes_into_the_coroutine<decltype(token)>::value) ++composed;
      return timers.back()->async_wait(std::move(token));
    };
    const auto policy =
        refused_policy().attempts(2).attempt_timeout(20ms).on(stamina::on_error(asio::error::operation_aborted));
    try {
      co_await stamina::async_retry(ctx, policy, hang);
    } catch (const boost::system::system_error& e) {
      timed_out = e.code() == stamina::error::attempt_timeout;
    }
  });
  BOOST_TEST(timed_out);
  BOOST_TEST(attempts == 2);
  BOOST_TEST(composed == 0);  // every attempt was awaited by the caller's coroutine

  // The control: the composed operation's attempts are counted.
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  auto hang = [&](auto token) {
    timers.push_back(std::make_unique<asio::steady_timer>(ctx, 1h));
    if (!completes_into_the_coroutine<decltype(token)>::value) ++composed;
    return timers.back()->async_wait(std::move(token));
  };
  auto rec = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, refused_policy().attempts(1).attempt_timeout(20ms), hang,
                       test::once(rec, [](error_code) {}));
  ctx.restart();
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(composed == 1);
}

void run_on_two_threads(asio::io_context& ctx) {
  std::thread other([&] { ctx.run(); });
  ctx.run();
  other.join();
}

// A callback call whose handler is bound to a strand runs every step in it on a two-thread
// io_context: the failures are classified, and the attempts after the first started, inside the
// strand, with and without attempt_timeout (the attempt's handler is the driver's slot binder,
// which shows the handler's other associations).
BOOST_AUTO_TEST_CASE(a_strand_bound_handler_keeps_every_step_in_its_strand) {
  for (const bool limited : {false, true}) {
    BOOST_TEST_CONTEXT("attempt_timeout: " << limited) {
      asio::io_context ctx(2);
      auto strand = asio::make_strand(ctx);
      std::atomic<int> attempts{0};
      std::atomic<int> outside{0};
      auto op = [&](auto token) {
        const int attempt = ++attempts;
        if (attempt > 1 && !strand.running_in_this_thread()) ++outside;
        return asio::post(ctx, asio::append(std::move(token), attempt < 3 ? refused : error_code()));
      };
      auto policy = refused_policy().on(stamina::retry_on([&](const stamina::failure& f) {
        if (!strand.running_in_this_thread()) ++outside;
        return f.error() == refused;
      }));
      if (limited) policy.attempt_timeout(10s);
      std::atomic<int> completions{0};
      error_code result = refused;
      stamina::async_retry(ctx, policy, op, asio::bind_executor(strand, [&](error_code ec) {
                             result = ec;
                             ++completions;
                           }));
      run_on_two_threads(ctx);
      BOOST_TEST(completions == 1);
      BOOST_TEST(!result);
      BOOST_TEST(attempts == 3);
      BOOST_TEST(outside == 0);
    }
  }
}

// The same with the deprecated io_context::strand::wrap(), which reaches a composed operation's
// steps through the handler hooks alone: every wait and post of the driver forwards them (Asio's
// prepend and append of a handler with values do not, in Boost 1.81), also the post of a
// completion that came during the attempt's start and the wait for a place under a concurrency
// limit. The op completes through Asio's own binder (detail::bind_handler, which forwards the
// hooks), as code written for wrap() does.
#if !defined(BOOST_ASIO_NO_DEPRECATED)
BOOST_AUTO_TEST_CASE(a_wrapped_handler_keeps_every_step_in_its_strand) {
  enum class completes { posted, posted_under_attempt_timeout, inline_in_its_start, queued_for_a_place };
  for (const completes how : {completes::posted, completes::posted_under_attempt_timeout,
                              completes::inline_in_its_start, completes::queued_for_a_place}) {
    BOOST_TEST_CONTEXT("completes: " << static_cast<int>(how)) {
      asio::io_context ctx(2);
      asio::io_context::strand strand(ctx);
      std::atomic<int> attempts{0};
      std::atomic<int> outside{0};
      const bool queued = how == completes::queued_for_a_place;
      auto op = [&](auto token) {
        const int attempt = ++attempts;
        // The first attempt starts in async_retry, unless it waited for a place first.
        if ((attempt > 1 || queued) && !strand.running_in_this_thread()) ++outside;
        return asio::async_initiate<decltype(token), void(error_code)>(
            [&ctx, attempt, how](auto handler) {
              const error_code ec = attempt < 3 ? refused : error_code();
              if (how == completes::inline_in_its_start)
                handler(ec);
              else
                asio::post(ctx, asio::detail::bind_handler(std::move(handler), ec));
            },
            token);
      };
      auto policy = refused_policy().on(stamina::retry_on([&](const stamina::failure& f) {
        if (!strand.running_in_this_thread()) ++outside;
        return f.error() == refused;
      }));
      if (how == completes::posted_under_attempt_timeout) policy.attempt_timeout(10s);
      const auto limit = std::make_shared<stamina::concurrency_limit>();
      if (queued) {
        limit->max_limit(1);
        BOOST_TEST_REQUIRE(limit->try_acquire());  // the one place is taken: the first attempt queues
        policy.limit(limit);
      }
      std::atomic<int> completions{0};
      error_code result = refused;
      stamina::async_retry(ctx, policy, op, strand.wrap([&](error_code ec) {
        result = ec;
        ++completions;
      }));
      if (queued) asio::post(ctx, [&] { limit->release(); });
      run_on_two_threads(ctx);
      BOOST_TEST(completions == 1);
      BOOST_TEST(!result);
      BOOST_TEST(attempts == 3);
      BOOST_TEST(outside == 0);
    }
  }
}
#endif

BOOST_AUTO_TEST_SUITE_END()
