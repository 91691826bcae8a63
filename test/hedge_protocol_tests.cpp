// The hedge protocol step by step: no clock, no Asio, each step's I/O checked.

#include <boost/test/unit_test.hpp>

#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/detail/hedge_protocol.hpp>
#include <stamina/global.hpp>
#include <stamina/retry_on.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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

// The layers rules on the hedging path: an inherited deadline (on the call's clock, `origin` =
// when the call started), the attempts' contexts, and a call made within an attempt.
BOOST_AUTO_TEST_SUITE(hedge_protocol_layers)

namespace {
constexpr double origin = 100;  // seconds since the clock's epoch when the call starts
std::chrono::steady_clock::time_point clock_at(double seconds) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)));
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_deadline_that_has_passed_sends_nothing) {
  const auto p = policy().deadline(clock_at(origin - 0.001));
  hedge_protocol call(p);
  const hedge_step s = call.start(0s, origin);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(!s.arm_delay.has_value());
  BOOST_TEST(s.complete);
  BOOST_TEST(call.started() == 0U);
  BOOST_TEST(call.outcome() == hedge_outcome::expired);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
}

BOOST_AUTO_TEST_CASE(the_deadline_clamps_the_delay_cuts_every_attempt_and_is_in_each_context) {
  // No attempt_timeout: the inherited deadline alone cuts the attempts (the policy's timeout
  // would not).
  const auto p = policy().timeout(1s).deadline(clock_at(origin + 0.015));
  hedge_protocol call(p);
  hedge_step s = call.start(0s, origin);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST_REQUIRE(s.arm_limit.has_value());
  BOOST_TEST(s.arm_limit->count() == 0.015, boost::test_tools::tolerance(1e-9));
  stamina::detail::attempt_scope first;
  const stamina::attempt_context& c1 = call.context(1, first, 0s, origin);
  BOOST_TEST(c1.attempt() == 1U);
  BOOST_TEST(c1.remaining()->count() == 0.015, boost::test_tools::tolerance(1e-9));
  s = call.delay_elapsed(0.010s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(!s.arm_delay.has_value());  // the next hedge would start 5 ms past the deadline
  stamina::detail::attempt_scope second;
  const stamina::attempt_context& c2 = call.context(2, second, 0.010s, origin);
  BOOST_TEST(c2.attempt() == 2U);
  BOOST_TEST(c2.call_id() == c1.call_id());
  BOOST_TEST(c2.remaining()->count() == 0.005, boost::test_tools::tolerance(1e-9));
  s = call.limit_reached(0.0151s);  // when the timer armed at 15 ms fires
  BOOST_TEST(s.cancel_mask == 3U);  // both cut at the deadline
  const stamina::failure aborted{boost::system::error_code(boost::asio::error::operation_aborted)};
  BOOST_TEST(!call.attempt_failed(1, aborted, 0.0151s).start_attempt);
  s = call.attempt_failed(2, aborted, 0.0151s);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::timed_out);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
}

BOOST_AUTO_TEST_CASE(in_virtual_time_a_cut_at_the_inherited_deadline_is_final) {
  // Virtual time skips the hedging delays on the call's own clock, which therefore lags the
  // real cut: the cut itself must stop hedging.
  stamina::testing_scope scope(stamina::virtual_time);
  const auto p = policy(3).delay(100ms).deadline(clock_at(origin + 0.020));
  hedge_protocol call(p);
  hedge_step s = call.start(0s, origin);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(!s.arm_delay.has_value());  // a hedge 100 ms away would start past the deadline
  BOOST_TEST(call.limit_reached(0.0201s).cancel_mask == 1U);
  s = call.attempt_failed(1, stamina::failure(boost::system::error_code(boost::asio::error::operation_aborted)),
                          0.0201s);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.started() == 1U);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
}

BOOST_AUTO_TEST_CASE(testing_mode_ignores_the_inherited_deadline_as_retries_do) {
  stamina::testing_scope testing;
  const auto p = policy().deadline(clock_at(origin - 1));
  hedge_protocol call(p);
  const hedge_step s = call.start(0s, origin);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(!s.arm_limit.has_value());
}

BOOST_AUTO_TEST_CASE(an_attempt_that_made_a_nested_call_is_not_hedged_again_on_its_failure) {
  const auto p = policy();
  hedge_protocol call(p);
  call.start(0s, origin);
  stamina::detail::attempt_scope scope;
  const stamina::attempt_context& ctx = call.context(1, scope, 0s, origin);
  BOOST_TEST(!ctx.remaining().has_value());  // no deadline
  const auto inner = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused)).within(ctx);
  (void)inner;
  const hedge_step s = call.attempt_failed(1, refused, 0.005s);  // a failure `on` accepts
  BOOST_TEST(!s.start_attempt);                                  // the inner call retried already
  BOOST_TEST(s.complete);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::pushback));
  // Without the nested call the same failure hedges at once (an_accepted_failure_hedges_...).
}

BOOST_AUTO_TEST_CASE(the_nested_flag_is_per_attempt_and_stops_hedging_while_the_others_go_on) {
  const auto p = policy(3);
  hedge_protocol call(p);
  call.start(0s, origin);
  call.delay_elapsed(0.010s);  // attempt 2
  stamina::detail::attempt_scope first;
  stamina::detail::attempt_scope second;
  (void)call.context(1, first, 0s, origin);
  const auto inner = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
                         .within(call.context(2, second, 0.010s, origin));  // only attempt 2 nests
  (void)inner;
  hedge_step s = call.attempt_failed(1, refused, 0.012s);
  BOOST_TEST(s.start_attempt);  // attempt 1 made no nested call: hedged again at once
  BOOST_TEST(call.started() == 3U);
  s = call.attempt_failed(2, refused, 0.013s);
  BOOST_TEST(!s.start_attempt);     // no more hedges ...
  BOOST_TEST(s.cancel_mask == 0U);  // ... but attempt 3 goes on
  BOOST_TEST(!s.complete);
  BOOST_TEST(!call.delay_elapsed(0.022s).start_attempt);
  s = call.attempt_succeeded(3, at(0.030));
  BOOST_TEST(s.complete);  // the first success still wins (gRPC A6: pushback stops hedging only)
  BOOST_TEST(call.outcome() == hedge_outcome::kept_result);
  BOOST_TEST(!call.gave_up().has_value());
}

BOOST_AUTO_TEST_CASE(a_pushback_verdict_stops_hedging_and_counts_as_overload) {
  // The same verdict from `on` and from `on_result`; a breaker in front of an overloaded layer
  // must see its pushbacks as overload (it opens), as on the retry path.
  const stamina::retry_on pushes_back([](const stamina::failure&) { return stamina::decision::pushback(); });
  auto breaker = std::make_shared<stamina::circuit_breaker>();
  breaker->minimum_calls(4).failure_ratio(0.5);
  const auto by_failure = stamina::hedging_policy(pushes_back).delay(10ms).budget(nullptr).breaker(breaker);
  const auto by_result = stamina::hedging_policy(stamina::on_error(boost::asio::error::connection_refused))
                             .delay(10ms)
                             .budget(nullptr)
                             .breaker(breaker)
                             .on_result([](int status) {
                               return status == 429 ? stamina::decision::pushback() : stamina::decision::no_retry();
                             });
  for (int i = 0; i < 2; ++i) {
    hedge_protocol call(by_failure);
    call.start(0s, origin);
    const hedge_step s = call.attempt_failed(1, refused, 0.001s);
    BOOST_TEST(!s.start_attempt);
    BOOST_TEST(s.complete);
    BOOST_TEST((call.gave_up() == stamina::give_up_reason::pushback));
  }
  for (int i = 0; i < 2; ++i) {
    hedge_protocol call(by_result);
    call.start(0s, origin);
    const hedge_step s = call.attempt_succeeded(1, at(0.001), 429);
    BOOST_TEST(!s.start_attempt);
    BOOST_TEST(s.keep_result);  // delivered as it is ...
    BOOST_TEST(s.complete);
    BOOST_TEST((call.gave_up() == stamina::give_up_reason::pushback));  // ... as a give-up
  }
  BOOST_TEST((breaker->current() == stamina::circuit_breaker::state::open));
}

BOOST_AUTO_TEST_CASE(attempts_cut_at_the_inherited_deadline_give_up_for_the_deadline_with_no_verdict) {
  // Every attempt started (2 of 2) and both cut: the reason is still the caller's deadline, and
  // the breaker hears nothing.
  auto breaker = std::make_shared<stamina::circuit_breaker>();
  const stamina::failure aborted{boost::system::error_code(boost::asio::error::operation_aborted)};
  for (int i = 0; i < 20; ++i) {
    const auto p = policy(2).breaker(breaker).deadline(clock_at(origin + 0.015));
    hedge_protocol call(p);
    call.start(0s, origin);
    call.delay_elapsed(0.010s);
    BOOST_TEST(call.limit_reached(0.0151s).cancel_mask == 3U);
    call.attempt_failed(1, aborted, 0.0151s);
    const hedge_step s = call.attempt_failed(2, aborted, 0.0151s);
    BOOST_TEST(s.complete);
    BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
  }
  BOOST_TEST((breaker->current() == stamina::circuit_breaker::state::closed));
}

BOOST_AUTO_TEST_CASE(with_retrying_inactive_a_context_has_no_deadline) {
  stamina::set_active(false);
  const auto p = policy().timeout(1s).deadline(clock_at(origin + 5));
  hedge_protocol call(p);
  call.start(0s, origin);
  stamina::detail::attempt_scope scope;
  BOOST_TEST(!call.context(1, scope, 0s, origin).remaining().has_value());
  stamina::set_active(true);
}

BOOST_AUTO_TEST_CASE(a_nan_deadline_is_refused_naming_the_field) {
  const auto nan_time = std::chrono::time_point<std::chrono::steady_clock, std::chrono::duration<double>>(
      std::chrono::duration<double>(std::nan("")));
  try {
    policy().deadline(nan_time);
    BOOST_FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("hedging_policy::deadline") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// The concurrency limit on the hedging path: every attempt holds a place while it runs; a hedge
// beside attempts in flight is skipped when no place is free, and an attempt the call cannot do
// without (the first, or the next once none is in flight) waits for one.
BOOST_AUTO_TEST_SUITE(hedge_protocol_limit)

namespace {
double limit_now = 0;  // the limit's clock, moved by hand
double limit_clock() { return limit_now; }

std::shared_ptr<stamina::concurrency_limit> limit_of(unsigned places) {
  auto l = std::make_shared<stamina::concurrency_limit>("backend");
  l->clock(&limit_clock).min_limit(1).initial_limit(places);
  return l;
}

// Another call, queued in the limit behind this one's attempts: it gets the next place freed.
struct queued_call : stamina::detail::limit_waiter {
  explicit queued_call(stamina::concurrency_limit& l) {
    wake = [](stamina::detail::limit_waiter&) {};
    BOOST_TEST_REQUIRE(!l.acquire_or_wait(*this));
  }
};

std::vector<stamina::hedge_event_kind> recorded_kinds;
void record(const stamina::hedge_event& e) { recorded_kinds.push_back(e.kind); }
}  // namespace

BOOST_AUTO_TEST_CASE(each_attempt_holds_a_place_until_it_returns) {
  auto l = limit_of(5);
  const auto p = policy(3).limit(l);
  hedge_protocol call(p);
  call.start();
  BOOST_TEST(l->in_flight() == 1U);
  BOOST_TEST(call.delay_elapsed(0.010s).start_attempt);
  BOOST_TEST(l->in_flight() == 2U);
  const hedge_step won = call.attempt_succeeded(2, at(0.015));
  BOOST_TEST(won.cancel_mask == 1U);
  BOOST_TEST(l->in_flight() == 1U);  // the winner's place is back at once
  const stamina::failure aborted{boost::system::error_code(boost::asio::error::operation_aborted)};
  BOOST_TEST(call.attempt_failed(1, aborted, 0.016s).complete);  // the loser, cancelled
  BOOST_TEST(l->in_flight() == 0U);
}

BOOST_AUTO_TEST_CASE(an_attempt_cut_by_its_time_limit_is_a_drop) {
  auto l = limit_of(20);
  const auto p = policy(1).limit(l).attempt_timeout(0.5s);
  hedge_protocol call(p);
  call.start();
  BOOST_TEST(call.limit_reached(0.5s).cancel_mask == 1U);
  const stamina::failure aborted{boost::system::error_code(boost::asio::error::operation_aborted)};
  BOOST_TEST(call.attempt_failed(1, aborted, 0.5s).complete);
  BOOST_TEST(l->limit() == 10U);  // halved
  BOOST_TEST(l->in_flight() == 0U);
}

BOOST_AUTO_TEST_CASE(a_hedge_is_skipped_while_no_place_is_free_and_is_due_again_after_a_delay) {
  auto l = limit_of(1);
  const auto p = policy(3).limit(l).on_hedge(&record);
  recorded_kinds.clear();
  hedge_protocol call(p);
  call.start();  // the only place
  hedge_step s = call.delay_elapsed(0.010s);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(!s.queue);
  BOOST_TEST_REQUIRE(s.arm_delay.has_value());  // due again, after twice the delay
  BOOST_TEST(s.arm_delay->count() == 0.020);
  BOOST_TEST(call.started() == 1U);
  s = call.delay_elapsed(0.030s);  // still no place: after four times the delay, no new event
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(s.arm_delay->count() == 0.040);
  BOOST_TEST_REQUIRE(recorded_kinds.size() == 1U);  // one event for hedge 2, however often it was tried
  BOOST_TEST((recorded_kinds[0] == stamina::hedge_event_kind::limit_full));
  // The first attempt fails: its place is back, and the hedge it earns at once takes it.
  s = call.attempt_failed(1, refused, 0.015s);
  BOOST_TEST(s.start_attempt);
  BOOST_TEST(call.started() == 2U);
  BOOST_TEST(l->in_flight() == 1U);
  BOOST_TEST(p.stats().hedges == 1U);
}

// With no real delay (a zero delay, testing mode, virtual time) a skipped hedge is not due again
// at once, which would spin (and in virtual time skip delays for ever): it waits for the next
// failure.
BOOST_AUTO_TEST_CASE(with_no_real_delay_a_skipped_hedge_waits_for_the_next_failure) {
  enum class mode { zero_delay, testing, virtual_time };
  for (const mode m : {mode::zero_delay, mode::testing, mode::virtual_time}) {
    BOOST_TEST_CONTEXT("mode " << static_cast<int>(m)) {
      std::optional<stamina::testing_scope> scope;
      if (m == mode::testing) scope.emplace(3);
      if (m == mode::virtual_time) scope.emplace(stamina::virtual_time);
      auto l = limit_of(1);
      auto p = policy(3).limit(l);
      if (m == mode::zero_delay) p.delay(0s);
      hedge_protocol call(p);
      hedge_step s = call.start();
      BOOST_TEST_REQUIRE(s.arm_delay.has_value());
      BOOST_TEST(s.arm_delay->count() == 0.0);
      s = call.delay_elapsed(0s);  // no place: skipped
      BOOST_TEST(!s.start_attempt);
      BOOST_TEST(!s.arm_delay.has_value());
      s = call.attempt_failed(1, refused, 0s);  // its place is back: the hedge takes it
      BOOST_TEST(s.start_attempt);
      BOOST_TEST(call.started() == 2U);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_first_attempt_waits_for_a_place_until_the_deadline) {
  auto l = limit_of(1);
  std::uint32_t elsewhere = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&elsewhere));
  const auto p = policy(2).limit(l).timeout(1s);
  {
    hedge_protocol call(p);
    const hedge_step s = call.start();
    BOOST_TEST(!s.start_attempt);
    BOOST_TEST(s.queue);
    BOOST_TEST_REQUIRE(s.queue_at_most.has_value());
    BOOST_TEST(s.queue_at_most->count() == 1.0);
    BOOST_TEST(!s.arm_delay.has_value());
    BOOST_TEST(call.queued());
    const hedge_step stale = call.delay_elapsed(0.5s);  // a stale delay starts nothing, queues nothing
    BOOST_TEST(!stale.start_attempt);
    BOOST_TEST(!stale.queue);
    BOOST_TEST(!stale.arm_delay.has_value());
    // Granted at 0.3 s: sent, and the hedge is a full delay after that.
    l->release(elsewhere, std::nullopt, stamina::detail::limit_sample::none);
    std::uint32_t ticket = 0;
    BOOST_TEST_REQUIRE(l->try_acquire(&ticket));
    const hedge_step granted = call.place_wait_finished(0.3s, true, false, ticket);
    BOOST_TEST(granted.start_attempt);
    BOOST_TEST(call.started() == 1U);
    BOOST_TEST(granted.arm_delay->count() == 0.010);
    BOOST_TEST(call.attempt_succeeded(1, at(0.31)).complete);
    BOOST_TEST(l->in_flight() == 0U);
  }
  BOOST_TEST_REQUIRE(l->try_acquire(&elsewhere));
  {
    hedge_protocol call(p);
    BOOST_TEST(call.start().queue);
    const hedge_step s = call.place_wait_finished(1s, false, false, 0);  // the deadline
    BOOST_TEST(s.complete);
    BOOST_TEST(call.outcome() == hedge_outcome::throttled);  // nothing was sent
    BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
    BOOST_TEST(call.started() == 0U);
  }
  BOOST_TEST(l->in_flight() == 1U);  // only the place held elsewhere
  BOOST_TEST(l->waiting() == 0U);
}

BOOST_AUTO_TEST_CASE(fail_fast_ends_the_call_instead_of_waiting) {
  auto l = limit_of(1);
  std::uint32_t elsewhere = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&elsewhere));
  const auto p = policy(2).limit(l).fail_fast();
  hedge_protocol call(p);
  const hedge_step s = call.start();
  BOOST_TEST(!s.queue);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::throttled);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::throttled));
  // After a failure: the failure is delivered (kept), the reason is throttled.
  l->release(elsewhere, std::nullopt, stamina::detail::limit_sample::none);
  hedge_protocol second(p);
  BOOST_TEST(second.start().start_attempt);
  queued_call other(*l);  // queued behind the attempt: gets its place
  const hedge_step after = second.attempt_failed(1, refused, 0.001s);
  BOOST_TEST(other.granted);
  BOOST_TEST(after.keep_result);
  BOOST_TEST(after.complete);
  BOOST_TEST(second.outcome() == hedge_outcome::kept_result);
  BOOST_TEST((second.gave_up() == stamina::give_up_reason::throttled));
}

BOOST_AUTO_TEST_CASE(cancelled_while_waiting_the_call_ends_aborted_and_a_late_grant_is_given_back) {
  auto l = limit_of(1);
  std::uint32_t elsewhere = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&elsewhere));
  const auto p = policy(2).limit(l);
  hedge_protocol call(p);
  BOOST_TEST(call.start().queue);
  const hedge_step c = call.cancelled(0.1s);
  BOOST_TEST(c.cancel_queue);
  BOOST_TEST(!c.complete);  // when the wait ends
  // The place was freed and granted before the cancelled wait completed.
  l->release(elsewhere, std::nullopt, stamina::detail::limit_sample::none);
  std::uint32_t ticket = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&ticket));
  const hedge_step s = call.place_wait_finished(0.1s, true, true, ticket);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::aborted);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::cancelled));
  BOOST_TEST(l->in_flight() == 0U);
}

BOOST_AUTO_TEST_CASE(with_nothing_in_flight_the_next_attempt_waits_and_the_breaker_is_asked_again) {
  // Attempt 1 fails and its place goes to a call queued behind it: with nothing in flight, the
  // next attempt waits. The breaker is isolated meanwhile: when the place is granted, it refuses
  // the attempt, the place goes back, and the call delivers the failure attempt 1 produced.
  auto l = limit_of(1);
  auto breaker = std::make_shared<stamina::circuit_breaker>();
  const auto p = policy(3).limit(l).breaker(breaker).timeout(1s);
  hedge_protocol call(p);
  call.start();
  queued_call other(*l);
  const hedge_step s = call.attempt_failed(1, refused, 0.020s);
  BOOST_TEST(other.granted);  // the place attempt 1 gave back
  BOOST_TEST(s.keep_result);
  BOOST_TEST(!s.start_attempt);
  BOOST_TEST(s.queue);
  BOOST_TEST(s.queue_at_most->count() == 0.98, boost::test_tools::tolerance(1e-9));
  breaker->isolate();
  l->release(other.ticket, std::nullopt, stamina::detail::limit_sample::none);
  std::uint32_t ticket = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&ticket));
  const hedge_step after = call.place_wait_finished(0.1s, true, false, ticket);
  BOOST_TEST(!after.start_attempt);
  BOOST_TEST(after.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::kept_result);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::circuit_open));
  BOOST_TEST(call.started() == 1U);
  BOOST_TEST(l->in_flight() == 0U);
}

BOOST_AUTO_TEST_CASE(with_no_budget_left_the_next_attempt_does_not_wait_for_a_place) {
  // Attempt 1 fails with the only place going to another call and no token left: the hedge
  // would be refused once granted, so the call ends now instead of queueing.
  auto l = limit_of(1);
  auto budget = std::make_shared<stamina::hedge_budget>(0.0, 1.0);
  BOOST_TEST_REQUIRE(budget->try_spend());  // empty
  const auto p = policy(3).limit(l).budget(budget).timeout(1s);
  hedge_protocol call(p);
  call.start();
  queued_call other(*l);
  const hedge_step s = call.attempt_failed(1, refused, 0.020s);
  BOOST_TEST(!s.queue);
  BOOST_TEST(s.complete);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::budget_exhausted));
  BOOST_TEST(p.stats().denied == 1U);
  l->release(other.ticket, std::nullopt, stamina::detail::limit_sample::none);
  BOOST_TEST(l->in_flight() == 0U);
}

BOOST_AUTO_TEST_CASE(the_inherited_deadline_passing_in_the_queue_is_deadline_exceeded) {
  auto l = limit_of(1);
  std::uint32_t elsewhere = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&elsewhere));
  constexpr double origin = 100;
  const auto p = policy(2).limit(l).timeout(10s).deadline(std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(origin + 2))));
  hedge_protocol call(p);
  const hedge_step s = call.start(0s, origin);
  BOOST_TEST(s.queue);
  BOOST_TEST(s.queue_at_most->count() == 2.0, boost::test_tools::tolerance(1e-6));  // the caller's, not the timeout
  const hedge_step after = call.place_wait_finished(2s, false, false, 0);
  BOOST_TEST(after.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::expired);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::deadline));
  l->release(elsewhere, std::nullopt, stamina::detail::limit_sample::none);
}

BOOST_AUTO_TEST_CASE(a_call_cancelled_in_the_queue_after_a_failure_is_aborted) {
  // Attempt 1 was answered (a failure), the next waits, the caller cancels: operation_aborted,
  // as a cancelled wait between retries; the give-up reports the failure.
  auto l = limit_of(1);
  const auto p = policy(3).limit(l).timeout(1s);
  hedge_protocol call(p);
  call.start();
  queued_call other(*l);
  BOOST_TEST(call.attempt_failed(1, refused, 0.020s).queue);
  BOOST_TEST(call.cancelled(0.03s).cancel_queue);
  const hedge_step s = call.place_wait_finished(0.03s, false, true, 0);
  BOOST_TEST(s.complete);
  BOOST_TEST(call.outcome() == hedge_outcome::aborted);
  BOOST_TEST((call.gave_up() == stamina::give_up_reason::cancelled));
  l->release(other.ticket, std::nullopt, stamina::detail::limit_sample::none);
}

BOOST_AUTO_TEST_SUITE_END()
