// stamina::fallback through the public overloads of retry, async_retry and async_hedge: what it
// may return for each completion signature, a fallback taking nothing, one that throws, a
// cancelled call (never replaced). The rule itself (which give-ups, what it is told) runs
// against every driver in scenario_tests.cpp and async_hedge_tests.cpp.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/policies.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/fallback.hpp>
#include <stamina/global.hpp>
#include <stamina/retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>

namespace asio = boost::asio;
using boost::system::error_code;
using stamina::give_up_reason;

namespace {

const error_code refused = asio::error::connection_refused;

stamina::retry_policy retry_refused() { return stamina::retry_policy(stamina::on_error(refused)).attempts(2); }

}  // namespace

BOOST_AUTO_TEST_SUITE(fallback)

BOOST_AUTO_TEST_CASE(a_blocking_call_that_gives_up_returns_the_substitute) {
  const stamina::testing_scope zero_waits(2);
  int calls = 0;
  std::optional<stamina::give_up_info> told;
  const int got = stamina::retry(
      test::retry_transient(),
      [&]() -> int {
        ++calls;
        throw test::transient_error("down");
      },
      stamina::fallback([&](const stamina::give_up_info& info) {
        told = info;
        return -1;
      }));
  BOOST_TEST(got == -1);
  BOOST_TEST(calls == 2);
  BOOST_TEST_REQUIRE(told.has_value());
  BOOST_TEST((told->reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(told->attempts == 2u);
  BOOST_TEST(told->last.get<test::transient_error>() != nullptr);  // the exception itself
}

BOOST_AUTO_TEST_CASE(a_success_never_calls_it_and_a_fallback_may_take_nothing) {
  int fallbacks = 0;
  const stamina::fallback fb([&] {
    ++fallbacks;
    return std::string("cached");
  });
  BOOST_TEST(stamina::retry(
                 test::retry_transient(), [] { return std::string("fresh"); }, fb) == "fresh");
  BOOST_TEST(fallbacks == 0);
  // A failure `on` rejects is a give-up too (not_retryable).
  BOOST_TEST(stamina::retry(
                 test::retry_transient(), []() -> std::string { throw test::fatal_error("no"); }, fb) == "cached");
  BOOST_TEST(fallbacks == 1);
}

BOOST_AUTO_TEST_CASE(a_void_function_s_fallback_returns_nothing) {
  const stamina::testing_scope zero_waits(2);
  bool replaced = false;
  stamina::retry(
      test::retry_transient(), [] { throw test::transient_error("down"); },
      stamina::fallback([&](const stamina::give_up_info&) { replaced = true; }));
  BOOST_TEST(replaced);
}

BOOST_AUTO_TEST_CASE(a_throwing_fallback_propagates_from_a_blocking_call) {
  const stamina::testing_scope zero_waits(2);
  BOOST_CHECK_THROW(stamina::retry(
                        test::retry_transient(), []() -> int { throw test::transient_error("down"); },
                        stamina::fallback([]() -> int { throw std::logic_error("no substitute"); })),
                    std::logic_error);
}

BOOST_AUTO_TEST_CASE(a_stopped_call_is_not_replaced) {
  std::stop_source stop;
  stop.request_stop();  // one attempt, then the wait is cut: given up as cancelled
  int fallbacks = 0;
  BOOST_CHECK_THROW(stamina::retry(
                        test::retry_transient(), stop.get_token(), []() -> int { throw test::transient_error("down"); },
                        stamina::fallback([&] {
                          ++fallbacks;
                          return 0;
                        })),
                    test::transient_error);
  BOOST_TEST(fallbacks == 0);
}

BOOST_AUTO_TEST_CASE(an_async_call_completes_as_a_success_with_the_substitute) {
  const stamina::testing_scope zero_waits(2);
  test::io_fixture io;
  auto op = [&](auto token) { return asio::post(io.ctx, asio::append(std::move(token), refused, 0, std::string())); };
  auto rec = std::make_shared<test::completion_record>();
  std::optional<std::tuple<error_code, int, std::string>> got;
  test::initiate([&] {
    stamina::async_retry(io.ctx, retry_refused(), op, stamina::fallback([](const stamina::give_up_info& info) {
                           return std::make_tuple(static_cast<int>(info.attempts), std::string("cached"));
                         }),
                         test::once(rec, [&](error_code ec, int n, std::string s) { got.emplace(ec, n, s); }));
  });
  io.ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST(!std::get<0>(*got));
  BOOST_TEST(std::get<1>(*got) == 2);
  BOOST_TEST(std::get<2>(*got) == "cached");
}

BOOST_AUTO_TEST_CASE(a_signature_without_values_takes_a_fallback_returning_nothing) {
  test::io_fixture io;
  auto op = [&](auto token) {
    return asio::post(io.ctx, asio::append(std::move(token), error_code(asio::error::connection_reset)));
  };
  auto rec = std::make_shared<test::completion_record>();
  error_code got = refused;
  bool replaced = false;
  test::initiate([&] {
    stamina::async_retry(io.ctx, retry_refused(), op, stamina::fallback([&] { replaced = true; }),
                         test::once(rec, [&](error_code ec) { got = ec; }));
  });
  io.ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(replaced);
  BOOST_TEST(!got);
}

BOOST_AUTO_TEST_CASE(a_throwing_fallback_is_the_async_call_s_failure) {
  const stamina::testing_scope zero_waits(2);
  test::io_fixture io;
  auto op = [&](auto token) { return asio::post(io.ctx, asio::append(std::move(token), refused, 0)); };
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  test::initiate([&] {
    stamina::async_retry(io.ctx, retry_refused(), op, stamina::fallback([]() -> int { throw std::logic_error("no"); }),
                         test::once(rec, [&](error_code ec, int) { got = ec; }));
  });
  io.ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(got == error_code(stamina::error::op_threw));  // as an op that throws when called

  // In a coroutine the exception leaves co_await.
  auto awaitable = []() -> asio::awaitable<int> {
    throw test::transient_error("down");
    co_return 0;
  };
  const stamina::fallback throwing([]() -> int { throw std::logic_error("no"); });
  bool caught = false;
  auto rec2 = std::make_shared<test::completion_record>();
  asio::co_spawn(
      io.ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await stamina::async_retry(io.ctx, test::retry_transient(), awaitable, throwing);
        } catch (const std::logic_error&) {
          caught = true;
        }
      },
      test::once(rec2, [](const std::exception_ptr&) {}));
  io.ctx.restart();
  io.ctx.run();
  BOOST_TEST(caught);
}

BOOST_AUTO_TEST_CASE(a_coroutine_awaits_the_substitute) {
  const stamina::testing_scope zero_waits(2);
  test::io_fixture io;
  const stamina::retry_policy policy = test::retry_transient();
  auto fetch_price = []() -> asio::awaitable<double> {
    throw test::transient_error("pricing service down");
    co_return 0.0;
  };
  double cached_price = 9.5;
  std::optional<give_up_reason> why;
  double price = 0;
  auto rec = std::make_shared<test::completion_record>();
  asio::co_spawn(
      io.ctx,
      [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        // [fallback-in-a-coroutine]
        // The price from the pricing service, or the last known one once the call gives up.
        const stamina::fallback last_known([&](const stamina::give_up_info& info) {
          why = info.reason;  // attempts_exhausted, deadline, circuit_open, ...
          return cached_price;
        });
        price = co_await stamina::async_retry(ex, policy, fetch_price, last_known);
        // [fallback-in-a-coroutine]
      },
      test::once(rec, [](const std::exception_ptr& e) {
        if (e) std::rethrow_exception(e);
      }));
  io.ctx.run();
  BOOST_TEST(price == 9.5);
  BOOST_TEST((why == give_up_reason::attempts_exhausted));
}

BOOST_AUTO_TEST_CASE(a_policy_that_knows_its_result_types_takes_a_fallback) {
  const stamina::testing_scope zero_waits(2);
  // on_result retries negative values; the give-up's value is replaced.
  const auto rejects_negative = [](int v) { return v < 0; };
  const auto sync_policy = test::retry_transient().on_result(rejects_negative);
  std::optional<stamina::give_up_info> told;
  const stamina::fallback fb([&](const stamina::give_up_info& info) {
    told = info;
    return 5;
  });
  BOOST_TEST(stamina::retry(
                 sync_policy, [] { return -1; }, fb) == 5);
  BOOST_TEST_REQUIRE(told.has_value());
  BOOST_TEST(told->last.error() == error_code(stamina::error::retried_result));

  test::io_fixture io;
  auto op = [&](auto token) { return asio::post(io.ctx, asio::append(std::move(token), error_code(), -1)); };
  const auto async_policy = retry_refused().on_result(rejects_negative);
  auto rec = std::make_shared<test::completion_record>();
  int got = 0;
  test::initiate([&] {
    stamina::async_retry(io.ctx, async_policy, op, fb,
                         test::once(rec, [&](error_code ec, int v) { got = ec ? -100 : v; }));
  });
  io.ctx.run();
  BOOST_TEST(got == 5);
}

BOOST_AUTO_TEST_CASE(a_hedged_call_that_gives_up_completes_with_the_substitute) {
  test::io_fixture io;
  auto op = [&](auto token) { return asio::post(io.ctx, asio::append(std::move(token), refused, 0)); };
  const stamina::hedging_policy policy = stamina::hedging_policy(stamina::on_error(refused)).max_attempts(2);
  auto rec = std::make_shared<test::completion_record>();
  std::optional<std::pair<error_code, int>> got;
  test::initiate([&] {
    stamina::async_hedge(io.ctx, policy, op, stamina::fallback([](const stamina::give_up_info& info) {
                           return info.reason == give_up_reason::attempts_exhausted ? 42 : -1;
                         }),
                         test::once(rec, [&](error_code ec, int v) { got.emplace(ec, v); }));
  });
  io.ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST(!got->first);
  BOOST_TEST(got->second == 42);
}

BOOST_AUTO_TEST_SUITE_END()
