// The hedge protocol step by step: no clock, no Asio, each step's I/O checked.

#include <boost/test/unit_test.hpp>

#include <stamina/detail/hedge_protocol.hpp>
#include <stamina/retry_on.hpp>

#include <boost/asio/error.hpp>

using namespace std::chrono_literals;
using stamina::detail::hedge_outcome;
using stamina::detail::hedge_protocol;
using stamina::detail::hedge_step;

BOOST_TEST_DONT_PRINT_LOG_VALUE(stamina::detail::hedge_outcome)

namespace {

stamina::hedging_policy policy(unsigned attempts = 3) {
  return stamina::hedging_policy(stamina::on_error(boost::asio::error::connection_refused))
      .max_attempts(attempts)
      .delay(10ms)
      .budget(nullptr);
}

const stamina::failure refused{boost::system::error_code(boost::asio::error::connection_refused)};
const stamina::failure reset{boost::system::error_code(boost::asio::error::connection_reset)};
const auto at = [](double s) { return [s] { return stamina::duration(s); }; };

}  // namespace

BOOST_AUTO_TEST_SUITE(hedge_protocol_steps)

BOOST_AUTO_TEST_CASE(start_starts_one_attempt_and_arms_the_delay) {
  const auto p = policy().timeout(1s).attempt_timeout(0.5s);
  hedge_protocol call(p);
  const hedge_step s = call.start();
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(s.arm_delay.has_value());
  BOOST_TEST(s.arm_delay->count() == 0.010);
  BOOST_TEST(s.arm_limit->count() == 0.5);  // the first attempt's time limit
  BOOST_TEST(!s.complete);
  BOOST_TEST(call.started() == 1U);
  BOOST_TEST(call.in_flight_mask() == 1U);
}

BOOST_AUTO_TEST_CASE(a_first_success_completes_without_a_hedge) {
  const auto p = policy();
  hedge_protocol call(p);
  call.start();
  const hedge_step s = call.attempt_succeeded(1, at(0.005));
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.disarm);
  BOOST_TEST(s.cancel_mask == 0U);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::kept_result);
}

BOOST_AUTO_TEST_CASE(the_delay_starts_hedges_up_to_the_limit) {
  const auto p = policy(3);
  hedge_protocol call(p);
  call.start();
  hedge_step s = call.delay_elapsed(0.010s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(call.started() == 2U);
  BOOST_TEST(s.arm_delay.has_value());  // one more allowed
  s = call.delay_elapsed(0.020s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(call.started() == 3U);
  BOOST_TEST(!s.arm_delay.has_value());  // the limit
  s = call.delay_elapsed(0.030s);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(call.in_flight_mask() == 7U);
}

BOOST_AUTO_TEST_CASE(a_win_cancels_the_others_and_completes_when_they_return) {
  const auto p = policy();
  hedge_protocol call(p);
  call.start();
  call.delay_elapsed(0.010s);
  hedge_step s = call.attempt_succeeded(2, at(0.015));
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.cancel_mask == 1U);  // attempt 1 is the one to cancel
  BOOST_TEST(!s.complete);
  s = call.attempt_failed(1, stamina::failure(boost::system::error_code(boost::asio::error::operation_aborted)),
                          0.015s);
  BOOST_TEST(!s.keep_result);  // a loser's result is discarded
  BOOST_TEST(s.complete);
  BOOST_TEST(p.stats().won == 1U);
  BOOST_TEST(p.stats().cancelled == 1U);
}

BOOST_AUTO_TEST_CASE(an_accepted_failure_hedges_at_once_and_a_rejected_one_ends_the_call) {
  const auto p = policy();
  hedge_protocol call(p);
  call.start();
  hedge_step s = call.attempt_failed(1, refused, 0.002s);
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(s.arm_delay.has_value());
  BOOST_TEST(call.started() == 2U);
  s = call.delay_elapsed(0.012s);
  BOOST_TEST(call.started() == 3U);
  s = call.attempt_failed(3, reset, 0.013s);
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.cancel_mask == 2U);  // attempt 2 (attempt 1 has returned)
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(!s.complete);
  s = call.attempt_succeeded(2, at(0.014));  // too late: the call is decided
  BOOST_TEST(!s.keep_result);
  BOOST_TEST(s.complete);
}

BOOST_AUTO_TEST_CASE(all_failed_completes_with_the_last_failure) {
  const auto p = policy(2);
  hedge_protocol call(p);
  call.start();
  hedge_step s = call.attempt_failed(1, refused, 0.001s);
  BOOST_TEST(s.start_attempt);
  s = call.attempt_failed(2, refused, 0.002s);
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::kept_result);
}

BOOST_AUTO_TEST_CASE(attempts_are_cut_at_their_limit_and_time_out_the_call) {
  // timeout and attempt_timeout as for retries: each attempt may run min(attempt_timeout, time
  // left); once the deadline has passed no hedge starts.
  const auto p = policy().timeout(0.05s).attempt_timeout(0.05s);
  hedge_protocol call(p);
  call.start();
  hedge_step s = call.delay_elapsed(0.010s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(s.arm_limit->count() == 0.04, boost::test_tools::tolerance(1e-9));  // attempt 1's limit, 40 ms away
  s = call.limit_reached(0.05s);
  BOOST_TEST(s.cancel_mask == 3U);  // both cut at the deadline
  BOOST_TEST(!s.arm_limit.has_value());
  s = call.attempt_failed(1, stamina::failure(boost::system::error_code(boost::asio::error::operation_aborted)), 0.05s);
  BOOST_TEST(!s.start_attempt);  // past the deadline: no hedge
  s = call.attempt_failed(2, stamina::failure(boost::system::error_code(boost::asio::error::operation_aborted)), 0.05s);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::timed_out);
}

BOOST_AUTO_TEST_CASE(without_attempt_timeout_the_deadline_only_stops_hedging) {
  const auto p = policy().timeout(0.015s);
  hedge_protocol call(p);
  call.start();
  hedge_step s = call.delay_elapsed(0.010s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(!s.arm_delay.has_value());  // the next delay would end past the deadline (20 ms > 15 ms)
  s = call.attempt_failed(2, refused, 0.016s);
  BOOST_TEST(!s.start_attempt);            // past the deadline
  s = call.attempt_succeeded(1, at(0.1));  // attempt 1 was never cut
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::kept_result);
}

BOOST_AUTO_TEST_CASE(cancellation_stops_hedging_but_a_late_success_still_wins) {
  const auto p = policy();
  hedge_protocol call(p);
  call.start();
  call.delay_elapsed(0.010s);
  hedge_step s = call.cancelled(0.012s);
  BOOST_TEST(s.cancel_mask == 3U);
  BOOST_TEST(s.disarm);
  BOOST_TEST(call.cancelled(0.013s).cancel_mask == 0U);  // once
  s = call.attempt_failed(1, refused, 0.013s);           // accepted, but no hedge after a cancellation
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(s.keep_result);
  s = call.attempt_succeeded(2, at(0.014));
  BOOST_TEST(s.keep_result);
  BOOST_TEST(s.complete);
}

BOOST_AUTO_TEST_CASE(the_budget_is_charged_per_hedge_and_filled_per_call) {
  auto budget = std::make_shared<stamina::hedge_budget>(0.5, 1.0);
  const auto p = policy().budget(budget);
  hedge_protocol first(p);
  first.start();  // full already: stays at 1
  BOOST_TEST(first.delay_elapsed(0.01s).start_attempt);
  BOOST_TEST(budget->tokens() == 0.0);
  BOOST_TEST(!first.delay_elapsed(0.02s).start_attempt);  // denied
  BOOST_TEST(p.stats().denied == 1U);
  hedge_protocol second(p);
  second.start();  // +0.5
  BOOST_TEST(!second.delay_elapsed(0.01s).start_attempt);
  hedge_protocol third(p);
  third.start();  // +0.5 = 1
  BOOST_TEST(third.delay_elapsed(0.01s).start_attempt);
}

BOOST_AUTO_TEST_SUITE_END()
