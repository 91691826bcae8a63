// The attempt's context and the layers rules through every retry driver, on virtual time: the
// op forms that take a context (f(ctx), op(ctx), op(ctx, token), attempt::context()), an
// inherited deadline (clamping, cutting attempts, nothing sent once passed), and a nested call
// made within an attempt (only the innermost call retries). The rules themselves are stepped
// in retry_protocol_tests.cpp.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <common/policies.hpp>
#include <common/virtual_retry.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/attempt_context.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::give_up_reason;

namespace {

const error_code refused = asio::error::connection_refused;

// Waits 1 s, 2 s, 4 s ... exactly; three attempts.
stamina::retry_policy three_refusals() { return test::refused_every_second().attempts(3); }

struct seen_attempt {
  unsigned num;
  std::optional<double> remaining;
  std::uint64_t id;
};

seen_attempt record(const stamina::attempt_context& ctx) {
  return {ctx.attempt(), ctx.remaining() ? std::optional<double>(ctx.remaining()->count()) : std::nullopt,
          ctx.call_id()};
}

// Attempt numbers from 1, the time left at each start, one id for the call.
void check_attempts(const std::vector<seen_attempt>& seen, const std::vector<double>& remaining) {
  BOOST_TEST_REQUIRE(seen.size() == remaining.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    BOOST_TEST(seen[i].num == i + 1);
    BOOST_TEST_REQUIRE(seen[i].remaining.has_value());
    BOOST_TEST(std::abs(*seen[i].remaining - remaining[i]) <= 1e-9);
    BOOST_TEST(seen[i].id == seen[0].id);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attempt_context)

BOOST_AUTO_TEST_CASE(a_blocking_function_may_take_the_context) {
  std::vector<seen_attempt> seen;
  // The timeout (10 s) or the inherited deadline (5 s away), whichever is earlier.
  for (const bool inherited : {false, true}) {
    seen.clear();
    auto p = three_refusals().timeout(10s).name("db");
    if (inherited) p.deadline(test::mock_clock::now() + 5s);
    const error_code ec = test::retry_virtual(p, [&](const stamina::attempt_context& ctx) {
      BOOST_TEST(ctx.policy_name() == "db");
      seen.push_back(record(ctx));
      return refused;
    });
    BOOST_TEST(ec == refused);
    if (inherited)
      check_attempts(seen, {5, 4, 2});
    else
      check_attempts(seen, {10, 9, 7});
  }
}

BOOST_AUTO_TEST_CASE(a_blocking_call_whose_deadline_has_passed_sends_nothing) {
  int calls = 0;
  const auto p = three_refusals().deadline(test::mock_clock::now());
  const error_code ec = test::retry_virtual(p, [&](const stamina::attempt_context&) {
    ++calls;
    return error_code();
  });
  BOOST_TEST(calls == 0);
  BOOST_TEST((ec == stamina::error::deadline_exceeded));
  // A function that throws gets the library's error as an exception.
  BOOST_CHECK_EXCEPTION(
      test::retry_virtual(p, [&] { ++calls; }), boost::system::system_error,
      [](const boost::system::system_error& e) { return e.code() == stamina::error::deadline_exceeded; });
  BOOST_TEST(calls == 0);
}

// On the real clock: an inherited deadline is measured on the precise steady clock, not the
// coarse one the drivers use for their own timeouts (it lags by up to its resolution, a few
// milliseconds, which a callee must not gain over its caller). Bounds that no load can break:
// the time left is never more than what was given, and a deadline just past sends nothing.
BOOST_AUTO_TEST_CASE(an_inherited_deadline_is_never_later_on_the_real_clock) {
  int sent = 0;
  double most_left = 0;
  for (int i = 0; i < 200; ++i) {
    const auto deadline = std::chrono::steady_clock::now() + 50ms;
    const auto p = three_refusals().deadline(deadline);
    const auto before = std::chrono::steady_clock::now();  // the call starts after this
    (void)stamina::retry(p, [&](const stamina::attempt_context& ctx) {
      most_left = std::max(most_left, ctx.remaining()->count() - stamina::duration(deadline - before).count());
      return error_code();
    });
    (void)stamina::retry(three_refusals().deadline(std::chrono::steady_clock::now() - 1ms), [&] {
      ++sent;
      return error_code();
    });
  }
  BOOST_TEST(most_left <= 0.0);  // never more time than the caller had left
  BOOST_TEST(sent == 0);
}

BOOST_AUTO_TEST_CASE(a_nested_blocking_call_retries_and_the_outer_one_does_not) {
  test::hook_recorder hooks;
  int bottom = 0;
  const auto outer = three_refusals().timeout(30s).name("outer");
  const error_code ec = test::retry_virtual(outer, [&](const stamina::attempt_context& ctx) {
    const auto inner = stamina::retry_policy(three_refusals().name("inner")).within(ctx);
    BOOST_TEST(*inner.deadline_since_epoch() == ctx.deadline<test::mock_clock>()->time_since_epoch().count() / 1e9,
               1e-9);
    return test::retry_virtual(inner, [&] {
      ++bottom;
      return refused;
    });
  });
  BOOST_TEST(ec == refused);
  BOOST_TEST(bottom == 3);  // one layer's attempts, not 3 x 3
  const auto give_ups = hooks.give_ups();
  BOOST_TEST_REQUIRE(give_ups.size() == 2u);
  BOOST_TEST((give_ups[0].reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(give_ups[1].name == "outer");
  BOOST_TEST((give_ups[1].reason == give_up_reason::pushback));
  BOOST_TEST(give_ups[1].attempts == 1u);
}

// A result on_result retries (an HTTP 503 as a value) obeys the nested rule too.
BOOST_AUTO_TEST_CASE(a_nested_call_whose_result_is_retried_is_not_retried_outside) {
  int bottom = 0;
  const auto retry_503 = [](int status) { return status == 503; };
  const auto outer = three_refusals().on_result(retry_503);
  const int got = test::retry_virtual(outer, [&](const stamina::attempt_context& ctx) {
    const auto inner = stamina::retry_policy(three_refusals().on_result(retry_503)).within(ctx);
    return test::retry_virtual(inner, [&] {
      ++bottom;
      return 503;
    });
  });
  BOOST_TEST(got == 503);
  BOOST_TEST(bottom == 3);
}

// Ordinary functions are untouched: one with a member named like the library's internals, and
// a generic lambda taking the context (the form a coroutine lambda has to take).
struct fetch_token {
  std::string scope = "read";
  int operator()() const { return 7; }
};
BOOST_AUTO_TEST_CASE(ordinary_functions_and_generic_context_lambdas_keep_their_form) {
  BOOST_TEST(stamina::retry(three_refusals(), fetch_token{}) == 7);
  test::io_fixture io;
  std::optional<unsigned> seen;
  bool done = false;
  auto ex = io.ctx.get_executor();
  asio::co_spawn(
      io.ctx,
      [&]() -> asio::awaitable<void> {
        co_await test::async_retry_virtual(
            ex, three_refusals(),
            [&](const auto& ctx) -> asio::awaitable<void> {
              seen = ctx.attempt();
              co_return;
            },
            asio::use_awaitable);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  test::run_virtual(io.ctx, [&] { return done; });
  BOOST_TEST((seen == 1u));
}

BOOST_AUTO_TEST_CASE(a_retry_context_attempt_gives_its_context) {
  std::vector<unsigned> numbers;
  stamina::basic_retry_context<test::mock_clock> ctx(three_refusals().wait_initial(0s).wait_max(0s));
  for (stamina::attempt& attempt : ctx) {
    numbers.push_back(attempt.context().attempt());
    BOOST_TEST(!attempt.context().remaining().has_value());  // no deadline
    attempt.failed(refused);
  }
  BOOST_TEST((numbers == std::vector<unsigned>{1, 2, 3}));
}

// use_awaitable (the caller-coroutine driver) with op(ctx), and a nested call inside it.
BOOST_AUTO_TEST_CASE(a_coroutine_op_takes_the_context_and_its_nested_call_is_the_one_that_retries) {
  test::io_fixture io;
  test::hook_recorder hooks;
  std::vector<seen_attempt> seen;
  int bottom = 0;
  bool done = false;
  const auto outer = three_refusals().timeout(30s).name("outer");
  auto ex = io.ctx.get_executor();
  asio::co_spawn(
      io.ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await test::async_retry_virtual(
              ex, outer,
              [&](const stamina::attempt_context& ctx) -> asio::awaitable<void> {
                seen.push_back(record(ctx));
                const auto inner = stamina::retry_policy(three_refusals().name("inner")).within(ctx);
                co_await test::async_retry_virtual(
                    ex, inner,
                    [&]() -> asio::awaitable<void> {
                      ++bottom;
                      throw boost::system::system_error(refused);
                      co_return;
                    },
                    asio::use_awaitable);
              },
              asio::use_awaitable);
        } catch (const boost::system::system_error& e) {
          BOOST_TEST(e.code() == refused);
        }
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  test::run_virtual(io.ctx, [&] { return done; });
  BOOST_TEST(done);
  BOOST_TEST(bottom == 3);
  check_attempts(seen, {30});
  const auto give_ups = hooks.give_ups();
  BOOST_TEST_REQUIRE(give_ups.size() == 2u);
  BOOST_TEST((give_ups[1].reason == give_up_reason::pushback));
}

// A completion handler (the composed driver) with op(ctx, token): the context of each attempt,
// and an inherited deadline that cuts an attempt which would never end.
BOOST_AUTO_TEST_CASE(a_token_op_takes_the_context_and_an_inherited_deadline_cuts_its_attempt) {
  test::io_fixture io;
  auto ex = io.ctx.get_executor();
  std::vector<seen_attempt> seen;
  auto rec = std::make_shared<test::completion_record>();
  std::optional<error_code> result;
  test::virtual_timer hang(io.ctx);
  const auto start = test::mock_clock::now();
  std::optional<double> ended_at;
  // Attempt 1 is refused at once; attempt 2 (after 1 s) hangs and is cut at the deadline (2.5 s).
  const auto p = three_refusals().deadline(start + 2500ms);
  test::initiate([&] {
    test::async_retry_virtual(
        ex, p,
        [&](const stamina::attempt_context& ctx, auto token) {
          seen.push_back(record(ctx));
          if (ctx.attempt() == 1) return asio::post(ex, asio::append(std::move(token), refused));
          hang.expires_after(1h);
          return hang.async_wait(std::move(token));
        },
        test::once(rec, [&](error_code ec) {
          result = ec;
          ended_at = stamina::duration(test::mock_clock::now() - start).count();
        }));
  });
  test::run_virtual(io.ctx, [&] { return result.has_value(); });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST((*result == stamina::error::attempt_timeout));
  BOOST_TEST_REQUIRE(ended_at.has_value());
  BOOST_TEST(std::abs(*ended_at - 2.5) <= 0.002, *ended_at);  // cut at the deadline, not after an hour
  check_attempts(seen, {2.5, 1.5});
}

// A deadline that has passed when an async call starts: nothing is sent, and the handler still
// runs once, not inside the initiating function, with the library's error.
BOOST_AUTO_TEST_CASE(an_async_call_whose_deadline_has_passed_completes_with_deadline_exceeded) {
  test::io_fixture io;
  auto rec = std::make_shared<test::completion_record>();
  int calls = 0;
  std::optional<error_code> result;
  const auto p = three_refusals().deadline(test::mock_clock::now() - 1s);
  test::initiate([&] {
    test::async_retry_virtual(
        io.ctx, p,
        [&](const stamina::attempt_context&, auto token) {
          ++calls;
          return asio::post(io.ctx, asio::append(std::move(token), error_code()));
        },
        test::once(rec, [&](error_code ec) { result = ec; }));
  });
  test::run_virtual(io.ctx, [&] { return result.has_value(); });
  BOOST_TEST(calls == 0);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!rec->called_inline);
  BOOST_TEST((result == error_code(stamina::error::deadline_exceeded)));
}

BOOST_AUTO_TEST_SUITE_END()
