// The 0.2 API additions in asynchronous code: retry_context's coroutine form on virtual
// time (waits, give-up, cancellation), on_result's type check at initiation, per-policy hooks
// on the composed operation. The on_result rules themselves run against every driver in
// scenario_tests.cpp.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::give_up_reason;

namespace {

using virtual_context = stamina::basic_retry_context<test::mock_clock>;

// The hand-written loop of a coroutine: no co_await in a catch block, nothing carried out of it.
asio::awaitable<int> connect_by_hand(virtual_context& ctx, int failures, std::vector<double>& attempt_times) {
  int calls = 0;
  const auto start = test::mock_clock::now();
  while (stamina::attempt* attempt = co_await ctx.async_next()) {
    attempt_times.push_back(stamina::duration(test::mock_clock::now() - start).count());
    try {
      if (++calls <= failures) throw test::transient_error("down");
      co_return calls;
    } catch (const test::transient_error&) {
      attempt->failed();
    }
  }
  co_return -1;  // not reached: a success returns, a give-up rethrows
}

}  // namespace

BOOST_AUTO_TEST_SUITE(retry_context_in_a_coroutine)

BOOST_AUTO_TEST_CASE(waits_on_a_timer_between_attempts) {
  test::io_fixture io;
  auto budget = std::make_shared<stamina::retry_budget>(10, 1);
  std::optional<virtual_context> ctx_holder;  // destroyed below: leaving the loop with co_return is a success
  ctx_holder.emplace(test::retry_transient().wait_jitter(0s).budget(budget));
  virtual_context& ctx = *ctx_holder;
  std::vector<double> times;
  std::optional<int> result;
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] {
    asio::co_spawn(io.ctx, connect_by_hand(ctx, 2, times), test::once(rec, [&](std::exception_ptr e, int r) {
                     BOOST_TEST(!e);
                     result = r;
                   }));
  });
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(result.value_or(0) == 3);
  BOOST_REQUIRE(times.size() == 3u);
  BOOST_TEST(times[1] == 0.1, boost::test_tools::tolerance(0.02));  // the virtual clock moved by the waits
  BOOST_TEST(times[2] == 0.3, boost::test_tools::tolerance(0.02));
  BOOST_TEST(budget->tokens() == 8.0);  // two failures charged
  ctx_holder.reset();
  BOOST_TEST(budget->tokens() == 9.0);  // and the success refunded when the context ended
}

BOOST_AUTO_TEST_CASE(a_give_up_rethrows_the_failure_out_of_the_coroutine) {
  test::io_fixture io;
  virtual_context ctx(test::retry_transient().wait_jitter(0s).attempts(2));
  std::vector<double> times;
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] {
    asio::co_spawn(io.ctx, connect_by_hand(ctx, 99, times), test::once(rec, [&](std::exception_ptr e, int) {
                     BOOST_CHECK_THROW(std::rethrow_exception(e), test::transient_error);
                   }));
  });
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(times.size() == 2u);
  BOOST_TEST((ctx.gave_up() == give_up_reason::attempts_exhausted));
}

BOOST_AUTO_TEST_CASE(cancelling_the_coroutine_during_a_wait_ends_it_with_operation_aborted) {
  test::io_fixture io;
  virtual_context ctx(test::retry_transient().wait_initial(10s).wait_jitter(0s));
  std::vector<double> times;
  asio::cancellation_signal signal;
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] {
    asio::co_spawn(io.ctx, connect_by_hand(ctx, 99, times),
                   asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](std::exception_ptr e, int) {
                                                  try {
                                                    std::rethrow_exception(e);
                                                  } catch (const boost::system::system_error& se) {
                                                    BOOST_TEST(se.code() == asio::error::operation_aborted);
                                                  }
                                                })));
  });
  test::run_virtual(io.ctx, [&] { return test::mock_clock::seconds() > 0 && !times.empty(); });
  signal.emit(asio::cancellation_type::terminal);
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(times.size() == 1u);
  BOOST_TEST((ctx.gave_up() == give_up_reason::cancelled));
}

// After a cancelled wait the call is over: asking for the next attempt again gives none, and
// the give-up is reported once.
BOOST_AUTO_TEST_CASE(a_context_cancelled_during_a_wait_stays_finished) {
  test::io_fixture io;
  test::hook_recorder hooks;
  virtual_context ctx(test::retry_transient().wait_initial(10s).wait_jitter(0s).attempts(3));
  asio::cancellation_signal signal;
  int bodies = 0;
  bool aborted = false;
  bool null_after = false;
  auto body = [&]() -> asio::awaitable<void> {
    try {
      while (stamina::attempt* attempt = co_await ctx.async_next()) {
        ++bodies;
        attempt->failed(std::make_exception_ptr(test::transient_error("down")));
      }
    } catch (const boost::system::system_error& e) {
      aborted = e.code() == asio::error::operation_aborted;
    }
    // Asked again after the give-up, with the coroutine's cancellation cleared:
    co_await asio::this_coro::reset_cancellation_state();
    null_after = (co_await ctx.async_next()) == nullptr;
  };
  auto rec = std::make_shared<test::completion_record>();
  asio::co_spawn(io.ctx, body, asio::bind_cancellation_slot(signal.slot(), test::once(rec, [](std::exception_ptr e) {
                                                              if (e) std::rethrow_exception(e);
                                                            })));
  test::run_virtual(io.ctx, [&] { return bodies == 1 && test::mock_clock::seconds() > 0; });
  signal.emit(asio::cancellation_type::terminal);
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(aborted);
  BOOST_TEST(null_after);
  BOOST_TEST(bodies == 1);
  BOOST_TEST(ctx.attempts() == 1u);
  BOOST_TEST(hooks.give_ups().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(on_result_async)

BOOST_AUTO_TEST_CASE(a_predicate_of_the_wrong_type_is_rejected_at_initiation) {
  test::io_fixture io;
  test::scripted_op op{&io.ctx, [](int) { return error_code(); }};  // completes with (error_code, int)
  // A plain retry_policy (the predicate's types erased, e.g. kept in a member) is checked at run
  // time, before the first attempt; a result_typed one at compile time (test/compile_fail).
  const stamina::retry_policy policy = test::retry_transient().on_result([](const std::string&) { return true; });
  BOOST_CHECK_EXCEPTION(
      test::async_retry_virtual(io.ctx, policy, op, [](error_code, int) {}), std::invalid_argument,
      [](const std::invalid_argument& e) { return std::string(e.what()).find("(int)") != std::string::npos; });
  BOOST_TEST(*op.calls == 0);
}

BOOST_AUTO_TEST_CASE(a_status_in_the_completion_values_is_retried_until_accepted) {
  test::io_fixture io;
  // The second completion value plays an HTTP status: 503 twice, then 200 (10 * attempt).
  test::scripted_op op{&io.ctx, [](int) { return error_code(); }};
  std::optional<stamina::give_up_details> gave_up;
  const auto policy = test::retry_transient().wait_jitter(0s).on_result([](int status) { return status < 30; });
  std::optional<int> status;
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] {
    test::async_retry_virtual(io.ctx, policy, op, test::once(rec, [&](error_code ec, int s) {
                                BOOST_TEST(!ec);
                                status = s;
                              }));
  });
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(status.value_or(0) == 30);
  BOOST_TEST(*op.calls == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(per_policy_hooks_async)

BOOST_AUTO_TEST_CASE(the_composed_operation_reports_to_the_policy_hooks) {
  test::io_fixture io;
  test::scripted_op op{&io.ctx, [](int) { return error_code(asio::error::connection_refused); }};
  std::vector<unsigned> retries;
  std::optional<stamina::give_up_details> gave_up;
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .attempts(3)
                          .wait_jitter(0s)
                          .on_retry([&](const stamina::retry_details& d) { retries.push_back(d.retry_num); })
                          .on_give_up([&](const stamina::give_up_details& d) { gave_up = d; });
  auto rec = std::make_shared<test::completion_record>();
  test::initiate([&] {
    test::async_retry_virtual(io.ctx, policy, op, test::once(rec, [](error_code ec, int) {
                                BOOST_TEST(ec == asio::error::connection_refused);
                              }));
  });
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(retries == (std::vector<unsigned>{1, 2}), boost::test_tools::per_element());
  BOOST_REQUIRE(gave_up.has_value());
  BOOST_TEST((gave_up->reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(gave_up->attempts == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(call_names_async)

// A helper that makes the policies of several call sites, without naming them.
stamina::retry_policy make_policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).attempts(2);
}
stamina::hedging_policy make_hedging_policy() {
  return stamina::hedging_policy(stamina::on_error(asio::error::connection_refused)).attempts(2).delay(1ms);
}

// Each call of a helper-made policy is named after its own line (its own metrics series, log
// name and default throttle), whatever the driver.
BOOST_AUTO_TEST_CASE(a_helper_made_policy_is_named_after_each_call) {
  const stamina::testing_scope no_waiting(stamina::virtual_time);
  test::hook_recorder hooks;
  asio::io_context ctx;
  auto refuse = [&](auto token) {
    return asio::post(ctx, asio::append(std::move(token), error_code(asio::error::connection_refused)));
  };
  std::vector<std::shared_ptr<test::completion_record>> recs;
  auto handler = [&] {
    recs.push_back(std::make_shared<test::completion_record>());
    return test::once(recs.back(), [](error_code) {});
  };
  const unsigned retry_line = __LINE__ + 1;
  stamina::async_retry(ctx.get_executor(), make_policy(), refuse, handler());
  const unsigned other_retry_line = __LINE__ + 1;
  stamina::async_retry(ctx.get_executor(), make_policy(), refuse, handler());
  const unsigned hedge_line = __LINE__ + 1;
  stamina::async_hedge(ctx.get_executor(), make_hedging_policy(), refuse, handler());
  ctx.run();
  for (const auto& rec : recs) BOOST_TEST(rec->calls == 1);
  std::vector<std::string> names;
  for (const auto& g : hooks.give_ups()) names.push_back(g.name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> expected;
  for (unsigned line : {retry_line, other_retry_line, hedge_line})
    expected.push_back("api_async_tests.cpp:" + std::to_string(line));
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  // An explicit name always wins.
  const unsigned before = static_cast<unsigned>(hooks.give_ups().size());
  stamina::async_retry(ctx.get_executor(), make_policy().name("db"), refuse, handler());
  ctx.restart();
  ctx.run();
  BOOST_REQUIRE(hooks.give_ups().size() == before + 1);
  BOOST_TEST(hooks.give_ups().back().name == "db");
}

BOOST_AUTO_TEST_SUITE_END()
