// async_retry: the wait schedule on virtual time, deadlines, attempt timeouts, switches,
// executors, teardown and threads.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/async_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/global.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

using namespace async_support;

BOOST_AUTO_TEST_SUITE(async_virtual_time)

BOOST_AUTO_TEST_CASE(wait_schedule_matches_the_policy) {
  test::hook_recorder hooks;
  asio::io_context ctx;
  std::vector<double> attempt_times;
  auto op = [&](auto token) {
    attempt_times.push_back(test::mock_clock::seconds());
    return asio::post(ctx, asio::append(std::move(token), refused));
  };
  auto rec = std::make_shared<test::completion_record>();
  const auto policy = refused_policy().attempts(5).wait_initial(100ms);
  test::async_retry_virtual(ctx, policy, op, test::once(rec, [](error_code) {}));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_REQUIRE(attempt_times.size() == 5u);
  const double expected[] = {0.1, 0.2, 0.4, 0.8};
  for (std::size_t i = 0; i < 4; ++i)
    BOOST_TEST(attempt_times[i + 1] - attempt_times[i] == expected[i], boost::test_tools::tolerance(0.0015));
  const auto r = hooks.retries();
  BOOST_REQUIRE(r.size() == 4u);
  BOOST_TEST(r[3].waited_so_far == 0.7, boost::test_tools::tolerance(1e-9));
  BOOST_TEST((hooks.give_ups().at(0).reason == stamina::give_up_reason::attempts_exhausted));
}

BOOST_AUTO_TEST_CASE(wait_schedule_in_the_callers_coroutine) {
  asio::io_context ctx;
  std::vector<double> attempt_times;
  auto calls = std::make_shared<int>(0);
  auto op = [&, calls]() -> asio::awaitable<int> {
    attempt_times.push_back(test::mock_clock::seconds());
    if (++*calls < 4) throw test::transient_error("x");
    co_return 1;
  };
  const auto policy = test::retry_transient().wait_jitter(0s).wait_initial(1s);
  run_coroutine(
      ctx, [&]() -> asio::awaitable<void> { co_await test::async_retry_virtual(ctx, policy, op, asio::use_awaitable); },
      true);
  BOOST_REQUIRE(attempt_times.size() == 4u);
  BOOST_TEST(attempt_times[1] - attempt_times[0] == 1.0, boost::test_tools::tolerance(0.001));
  BOOST_TEST(attempt_times[2] - attempt_times[1] == 2.0, boost::test_tools::tolerance(0.001));
  BOOST_TEST(attempt_times[3] - attempt_times[2] == 4.0, boost::test_tools::tolerance(0.001));
}

BOOST_AUTO_TEST_CASE(deadline_gives_up_before_a_wait_that_would_pass_it) {
  test::hook_recorder hooks;
  asio::io_context ctx;
  auto op = refusing_until(ctx, 1000);
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  const double start = test::mock_clock::seconds();
  const auto policy = refused_policy().attempts(std::nullopt).timeout(10s).wait_initial(1s);
  test::async_retry_virtual(ctx, policy, op, test::once(rec, [&](error_code ec, int) { got = ec; }));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  // Waits 1, 2, 4 end at 7 s; the next (8 s) would end at 15 s > 10 s.
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST((got == refused));
  BOOST_TEST(*op.calls == 4);
  BOOST_TEST(test::mock_clock::seconds() - start < 10.0);
  BOOST_TEST((hooks.give_ups().at(0).reason == stamina::give_up_reason::deadline));
}

// A token op whose attempts hang until cancelled (or until an hour of virtual time).
struct hanging_op {
  asio::io_context* ctx;
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  std::shared_ptr<test::virtual_timer> timer;
  int succeed_at = 1000;  // attempts from this one on complete at once with success

  template <class Token>
  auto operator()(Token&& token) const {
    const int n = ++*calls;
    if (n >= succeed_at)
      timer->expires_after(0s);
    else
      timer->expires_after(1h);
    return timer->async_wait(std::forward<Token>(token));
  }
};

hanging_op make_hanging(asio::io_context& ctx, int succeed_at = 1000) {
  return hanging_op{&ctx, std::make_shared<int>(0), std::make_shared<test::virtual_timer>(ctx), succeed_at};
}

BOOST_AUTO_TEST_CASE(attempt_timeout_retries_then_reports_attempt_timeout) {
  test::hook_recorder hooks;
  asio::io_context ctx;
  auto op = make_hanging(ctx);
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  const auto policy = refused_policy().attempts(3).attempt_timeout(2s).wait_initial(1s);
  const double start = test::mock_clock::seconds();
  test::async_retry_virtual(ctx, policy, op, test::once(rec, [&](error_code ec) { got = ec; }));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(*op.calls == 3);
  BOOST_TEST((got == stamina::error::attempt_timeout));
  BOOST_TEST(got.message() == "attempt timed out");
  // 3 attempts of 2 s plus waits of 1 s and 2 s.
  BOOST_TEST(test::mock_clock::seconds() - start == 9.0, boost::test_tools::tolerance(0.01));
  const auto r = hooks.retries();
  BOOST_REQUIRE(r.size() == 2u);
  BOOST_TEST(r[0].caused_by.find("attempt timed out") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(attempt_timeout_success_after_timeouts) {
  asio::io_context ctx;
  auto op = async_virtual_time::make_hanging(ctx, 3);
  auto rec = std::make_shared<test::completion_record>();
  error_code got = refused;
  test::async_retry_virtual(ctx, refused_policy().attempt_timeout(1s).wait_initial(1s), op,
                            test::once(rec, [&](error_code ec) { got = ec; }));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!got);
  BOOST_TEST(*op.calls == 3);
}

BOOST_AUTO_TEST_CASE(attempt_limit_is_the_time_left_before_the_deadline) {
  asio::io_context ctx;
  auto op = make_hanging(ctx);
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  const double start = test::mock_clock::seconds();
  // Attempts may take 4 s but the whole call has 5 s: the second attempt gets 0.5 s.
  const auto policy = refused_policy().attempts(10).timeout(5s).attempt_timeout(4s).wait_initial(500ms);
  test::async_retry_virtual(ctx, policy, op, test::once(rec, [&](error_code ec) { got = ec; }));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST((got == stamina::error::attempt_timeout));
  BOOST_TEST(test::mock_clock::seconds() - start <= 5.0 + 0.002);
}

BOOST_AUTO_TEST_CASE(attempt_timeout_with_awaitable_op_and_use_awaitable) {
  asio::io_context ctx;
  auto calls = std::make_shared<int>(0);
  auto op = [&ctx, calls]() -> asio::awaitable<int> {
    ++*calls;
    test::virtual_timer t(ctx);
    t.expires_after(1h);
    co_await t.async_wait(asio::use_awaitable);
    co_return 1;
  };
  error_code got;
  run_coroutine(
      ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await test::async_retry_virtual(ctx, test::retry_transient().attempts(2).attempt_timeout(1s), op,
                                             asio::use_awaitable);
        } catch (const boost::system::system_error& e) {
          got = e.code();
        }
      },
      true);
  BOOST_TEST(*calls == 2);
  BOOST_TEST((got == stamina::error::attempt_timeout));
}

BOOST_AUTO_TEST_CASE(absurd_retry_after_is_capped_or_saturates_instead_of_overflowing) {
  const auto absurd = stamina::retry_on(
      [](const stamina::failure&) { return stamina::decision::retry_after(stamina::duration(1e300)); });
  {
    // Capped by max_server_wait (5 minutes by default): the retry comes after 300 to 301 s.
    asio::io_context ctx;
    auto op = refusing_until(ctx, 2);
    auto rec = std::make_shared<test::completion_record>();
    const double origin = test::mock_clock::seconds();
    double done_at = 0;
    test::async_retry_virtual(ctx, stamina::retry_policy(absurd).timeout(std::nullopt), op,
                              test::once(rec, [&](error_code, int) { done_at = test::mock_clock::seconds(); }));
    test::run_virtual(
        ctx, [&] { return rec->calls > 0; }, 100ms, 2h);
    BOOST_TEST(rec->calls == 1);
    BOOST_TEST(*op.calls == 2);
    BOOST_TEST(done_at - origin >= 300.0);
    BOOST_TEST(done_at - origin <= 301.2);
  }
  // Uncapped and without a deadline: still waiting (a century, saturated), nothing overflowed.
  asio::io_context ctx;
  auto op = refusing_until(ctx, 2);
  auto rec = std::make_shared<test::completion_record>();
  rec->may_be_abandoned = true;  // still waiting when the context is destroyed
  test::async_retry_virtual(ctx, stamina::retry_policy(absurd).timeout(std::nullopt).max_server_wait(std::nullopt), op,
                            test::once(rec, [](error_code, int) {}));
  test::run_virtual(
      ctx, [&] { return rec->calls > 0; }, 1h, 2h);
  BOOST_TEST(rec->calls == 0);
  BOOST_TEST(*op.calls == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_switches)

BOOST_AUTO_TEST_CASE(inactive_runs_once_and_still_completes_asynchronously) {
  stamina::set_active(false);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 100);
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] { stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [](error_code, int) {})); });
  ctx.run();
  stamina::set_active(true);
  BOOST_TEST(*op.calls == 1);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!rec->called_inline);
}

BOOST_AUTO_TEST_CASE(budget_refuses_retries_across_calls) {
  stamina::testing_scope scope(10);
  asio::io_context ctx;
  auto budget = std::make_shared<stamina::retry_budget>(10, 0.1);
  auto op = refusing_until(ctx, 1000);
  std::vector<std::shared_ptr<test::completion_record>> recs;
  for (int i = 0; i < 3; ++i) {
    recs.push_back(std::make_shared<test::completion_record>());
    stamina::async_retry(ctx, refused_policy().budget(budget), op, test::once(recs.back(), [](error_code, int) {}));
  }
  ctx.run();
  for (auto& r : recs) BOOST_TEST(r->calls == 1);
  // 5 tokens may go before retries stop (10 -> 5); every call's failures then cost 1 more.
  BOOST_TEST(*op.calls == 7);
  BOOST_TEST(budget->tokens() == 3.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_lifetime)

template <class T>
struct counting_allocator {
  using value_type = T;
  std::shared_ptr<long> count;
  explicit counting_allocator(std::shared_ptr<long> c) : count(std::move(c)) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) : count(o.count) {}
  T* allocate(std::size_t n) {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    --*count;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& o) const {
    return count == o.count;
  }
};

BOOST_AUTO_TEST_CASE(the_handlers_allocator_is_used_and_everything_is_returned) {
  asio::io_context ctx;
  auto live = std::make_shared<long>(0);
  long peak = 0;
  auto op = refusing_until(ctx, 3);
  auto rec = std::make_shared<test::completion_record>();
  auto watch = [&](auto token) {
    peak = std::max(peak, *live);
    return op(std::move(token));
  };
  stamina::async_retry(ctx, refused_policy().wait_initial(1ms), watch,
                       asio::bind_allocator(counting_allocator<void>(live), test::once(rec, [](error_code, int) {})));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(peak >= 1);   // the operation's state (and its timer) came from the handler's allocator
  BOOST_TEST(*live == 0);  // and all of it was returned before the handler ran
}

BOOST_AUTO_TEST_CASE(execution_context_or_executor) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 2);
  auto r1 = std::make_shared<test::completion_record>();
  auto r2 = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, refused_policy(), op, test::once(r1, [](error_code, int) {}));
  stamina::async_retry(ctx.get_executor(), refused_policy(), op, test::once(r2, [](error_code, int) {}));
  ctx.run();
  BOOST_TEST(r1->calls == 1);
  BOOST_TEST(r2->calls == 1);
}

BOOST_AUTO_TEST_CASE(work_is_tracked_while_waiting) {
  // run() must not return while a retry waits on its timer (here: real time, 20 ms).
  asio::io_context ctx;
  auto op = refusing_until(ctx, 2);
  auto rec = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, refused_policy().wait_initial(20ms), op, test::once(rec, [](error_code, int) {}));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_after_each_step_leaks_nothing) {
  // Brute force: stop after k handlers, for every k, then destroy the context. Run under ASan
  // for the leak and use-after-free checks; here we check "never called twice".
  for (int form = 0; form < 3; ++form) {
    int steps_to_finish = 0;
    for (int k = 0;; ++k) {
      auto rec = std::make_shared<test::completion_record>();
      rec->may_be_abandoned = true;
      {
        asio::io_context ctx;
        auto policy = refused_policy().attempts(4).wait_initial(1ms);
        if (form == 0) {
          auto op = refusing_until(ctx, 4);
          test::async_retry_virtual(ctx, policy, op, test::once(rec, [](error_code, int) {}));
        } else if (form == 1) {
          auto op = async_virtual_time::make_hanging(ctx, 3);
          test::async_retry_virtual(ctx, policy.attempt_timeout(5ms), op, test::once(rec, [](error_code) {}));
        } else {
          flaky_awaitable op{.succeed_at = 4};
          test::async_retry_virtual(ctx, test::retry_transient().wait_jitter(0s).wait_initial(1ms), op,
                                    test::once(rec, [](const std::exception_ptr&, int) {}));
        }
        for (int i = 0; i < k && rec->calls == 0; ++i) {
          if (ctx.poll_one() == 0) {
            test::mock_clock::advance(1ms);
            --i;
          }
        }
      }
      BOOST_REQUIRE(rec->calls <= 1);
      if (rec->calls == 1) {
        steps_to_finish = k;
        break;
      }
      BOOST_REQUIRE(rec->destroyed_uncalled);
      BOOST_REQUIRE(k < 200);
    }
    BOOST_TEST_MESSAGE("form " << form << " completes after " << steps_to_finish << " handlers");
    BOOST_TEST(steps_to_finish > 3);
  }
}

BOOST_AUTO_TEST_CASE(stopping_the_io_context_mid_wait) {
  asio::io_context ctx;
  auto op = refusing_until(ctx, 100);
  auto rec = std::make_shared<test::completion_record>();
  rec->may_be_abandoned = true;
  test::async_retry_virtual(ctx, refused_policy().wait_initial(10s), op, test::once(rec, [](error_code, int) {}));
  ctx.poll();  // first attempt fails, the wait starts
  ctx.stop();
  test::mock_clock::advance(20s);
  ctx.poll();  // stopped: nothing runs
  BOOST_TEST(rec->calls == 0);
  BOOST_TEST(*op.calls == 1);
}

BOOST_AUTO_TEST_CASE(four_threads_with_strands) {
  stamina::testing_scope fast(4);
  asio::thread_pool pool(4);
  constexpr int calls = 400;
  std::atomic<int> completions{0}, attempts{0}, successes{0};
  std::vector<std::shared_ptr<test::completion_record>> recs(calls);
  for (int i = 0; i < calls; ++i) {
    auto strand = asio::make_strand(pool);
    recs[i] = std::make_shared<test::completion_record>();
    auto op = [&attempts, strand, i, n = std::make_shared<int>(0)](auto token) {
      ++attempts;
      const error_code ec = (++*n + i) % 3 == 0 ? error_code() : refused;
      return asio::post(strand, asio::append(std::move(token), ec));
    };
    stamina::async_retry(strand, refused_policy(), op,
                         asio::bind_executor(strand, test::once(recs[i], [&](error_code ec) {
                                               ++completions;
                                               if (!ec) ++successes;
                                             })));
  }
  pool.join();
  BOOST_TEST(completions.load() == calls);
  for (auto& r : recs) BOOST_REQUIRE(r->calls == 1);
  // Each call succeeds on the first attempt n with (n + i) % 3 == 0: n = 3 - i % 3 (1..3 <= 4).
  int expected_attempts = 0;
  for (int i = 0; i < calls; ++i) expected_attempts += 3 - i % 3;
  BOOST_TEST(attempts.load() == expected_attempts);
  BOOST_TEST(successes.load() == calls);
}

BOOST_AUTO_TEST_SUITE_END()
