// adaptive_throttle on its own, through the retry protocol, and the spread after a
// server-given wait (retry_after).

#include <boost/test/unit_test.hpp>

#include <common/hook_recorder.hpp>
#include <stamina/adaptive_throttle.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/protocol.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>

#include <boost/asio/error.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using stamina::adaptive_throttle;
using stamina::decision;
using stamina::duration;
using stamina::give_up_reason;
using stamina::detail::action_kind;
using stamina::detail::give_up_result;
using stamina::detail::retry_protocol;

namespace {

const stamina::failure refused{boost::system::error_code(boost::asio::error::connection_refused)};
const stamina::failure reset{boost::system::error_code(boost::asio::error::connection_reset)};

stamina::retry_policy policy() {
  return stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
      .wait_initial(1s)
      .wait_jitter(0s)
      .timeout(std::nullopt);
}

// A throttle that has seen `sent` attempts fail and none accepted: sheds with sent/(sent+1).
std::shared_ptr<adaptive_throttle> failing_throttle(unsigned sent, std::uint64_t seed = 7) {
  auto t = std::make_shared<adaptive_throttle>(1.0, sent, sent, seed);
  for (unsigned i = 0; i < sent; ++i) BOOST_REQUIRE(t->admit());  // below min_sent: all admitted
  return t;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(throttle)

BOOST_AUTO_TEST_CASE(invalid_parameters_name_the_field) {
  BOOST_TEST(message_of([] { adaptive_throttle t(0.5); }).find("k must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(NAN); }).find("k must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 5); }).find("window must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 0); }).find("min_sent must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 21); }).find("min_sent must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 20); }) == "no exception");
}

BOOST_AUTO_TEST_CASE(sheds_nothing_below_min_sent) {
  adaptive_throttle t(2.0, 100, 20, 1);
  for (int i = 0; i < 19; ++i) BOOST_TEST(t.admit());  // all failing, but only 19 remembered
  BOOST_TEST(t.shed_probability() == 0.0);
  BOOST_TEST(t.admit());
  BOOST_TEST(t.sent() == 20u);
  BOOST_TEST(t.shed_probability() == 20.0 / 21.0);
}

BOOST_AUTO_TEST_CASE(probability_follows_the_sre_formula) {
  adaptive_throttle t(2.0, 100, 20, 1);
  for (int i = 0; i < 40; ++i) {
    BOOST_REQUIRE(t.admit() || t.sent() >= 20);
    if (i % 4 == 0) t.on_accepted();
  }
  const double sent = t.sent();
  const double accepted = t.accepted();
  BOOST_TEST(accepted > 0.0);
  BOOST_TEST(t.shed_probability() == std::max(0.0, (sent - 2 * accepted) / (sent + 1)));
  // Half accepted with k = 2: nothing is shed.
  adaptive_throttle healthy(2.0, 100, 20, 1);
  for (int i = 0; i < 100; ++i) {
    BOOST_REQUIRE(healthy.admit());
    if (i % 2 == 0) healthy.on_accepted();
  }
  BOOST_TEST(healthy.shed_probability() == 0.0);
}

BOOST_AUTO_TEST_CASE(forgets_half_at_twice_the_window) {
  adaptive_throttle t(2.0, 10, 1, 1);
  for (int i = 0; i < 19; ++i) {
    BOOST_REQUIRE(t.admit());
    t.on_accepted();
  }
  BOOST_TEST(t.sent() == 19u);
  BOOST_REQUIRE(t.admit());  // the 20th: both counts halve
  BOOST_TEST(t.sent() == 10u);
  BOOST_TEST(t.accepted() == 9u);
}

BOOST_AUTO_TEST_CASE(sheds_about_the_predicted_fraction_and_recovers) {
  adaptive_throttle t(2.0, 100, 20, 42);
  for (int i = 0; i < 200; ++i) t.admit();  // the dependency is down: nothing accepted
  const double p = t.shed_probability();
  BOOST_TEST(p == t.sent() / (t.sent() + 1.0));
  BOOST_TEST(p > 0.95);
  int shed = 0;
  for (int i = 0; i < 10000; ++i) shed += t.admit() ? 0 : 1;
  BOOST_TEST(shed > 9500);  // seeded: the same count every run
  // The dependency is back: every admitted attempt succeeds; shedding stops.
  int attempts = 0;
  while (t.shed_probability() > 0 && attempts < 100000) {
    ++attempts;
    if (t.admit()) t.on_accepted();
  }
  BOOST_TEST(t.shed_probability() == 0.0);
  BOOST_TEST_MESSAGE("recovered after " << attempts << " attempts");
  BOOST_TEST(attempts < 100000);
}

BOOST_AUTO_TEST_CASE(shed_attempt_waits_its_backoff_and_charges_no_budget) {
  test::hook_recorder hooks;
  auto budget = std::make_shared<stamina::retry_budget>(10, 1);
  const auto p = policy().attempts(3).throttle(failing_throttle(1000)).budget(budget);
  retry_protocol call(p);
  auto a = call.start(0s);  // shed: a local failure, then the backoff wait
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 1.0);
  BOOST_REQUIRE(hooks.retries().size() == 1u);
  BOOST_TEST(hooks.retries()[0].caused_by.find("shed") != std::string::npos);
  BOOST_TEST(budget->tokens() == 10.0);
  a = call.wait_finished(1s, false);
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 2.0);
  a = call.wait_finished(3s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::throttled));
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::throttled));
  BOOST_TEST(hooks.give_ups()[0].attempts == 3u);
  BOOST_TEST(budget->tokens() == 10.0);
}

BOOST_AUTO_TEST_CASE(cancelled_wait_after_a_shed_reports_the_shed) {
  test::hook_recorder hooks;
  const auto p = policy().throttle(failing_throttle(1000));
  retry_protocol call(p);
  BOOST_TEST((call.start(0s).kind == action_kind::wait));
  const auto a = call.wait_finished(0.5s, true);
  BOOST_TEST((a.result == give_up_result::aborted));
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::cancelled));
}

BOOST_AUTO_TEST_CASE(answers_count_as_accepted_timeouts_and_retryable_failures_do_not) {
  auto t = std::make_shared<adaptive_throttle>();
  const auto p = policy().attempt_timeout(1s).throttle(t);
  {
    retry_protocol call(p);
    call.start(0s);
    call.attempt_failed(refused, 0s, false);  // retryable: not an answer
    BOOST_TEST(t->accepted() == 0u);
    call.wait_finished(1s, false);
    call.attempt_timed_out(2s, false);  // timed out: not an answer
    BOOST_TEST(t->accepted() == 0u);
    call.wait_finished(4s, false);
    call.attempt_failed(reset, 4s, false);  // not retryable: the dependency answered
    BOOST_TEST(t->accepted() == 1u);
  }
  retry_protocol ok(p);
  ok.start(0s);
  ok.attempt_succeeded();
  BOOST_TEST(t->accepted() == 2u);
  BOOST_TEST(t->sent() == 4u);
}

BOOST_AUTO_TEST_CASE(single_failing_call_in_a_fresh_process_gets_all_its_attempts) {
  // The defaults shed nothing until 20 attempts are remembered: one call that fails ten
  // times is never throttled.
  auto t = std::make_shared<adaptive_throttle>();
  const auto p = policy().wait_initial(0s).throttle(t);
  int calls = 0;
  const auto r = stamina::retry(p, [&] {
    ++calls;
    return boost::system::error_code(boost::asio::error::connection_refused);
  });
  BOOST_TEST(calls == 10);
  BOOST_TEST(r == boost::asio::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(blocking_call_shed_throughout_fails_with_throttled) {
  const auto p = policy().wait_initial(0s).attempts(3).throttle(failing_throttle(1000));
  int calls = 0;
  const auto r = stamina::retry(p, [&] {
    ++calls;
    return boost::system::error_code();
  });
  BOOST_TEST(calls == 0);
  BOOST_TEST(r == stamina::error::throttled);
  try {
    stamina::retry(p, [&] { ++calls; });
    BOOST_TEST(false, "no exception");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == stamina::error::throttled);
  }
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(inactive_retrying_ignores_the_throttle) {
  stamina::set_active(false);
  const auto p = policy().throttle(failing_throttle(1000));
  int calls = 0;
  stamina::retry(p, [&] { ++calls; });
  stamina::set_active(true);
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retry_after_spread)

BOOST_AUTO_TEST_CASE(never_earlier_spread_up_to_min_of_wait_and_jitter) {
  const auto p = policy().wait_jitter(1s);
  std::set<double> seen;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    stamina::backoff b(p, seed);
    const double short_wait = b.on_failure(decision::retry_after(0.25s), 0s).wait.count();
    BOOST_TEST(short_wait >= 0.25);
    BOOST_TEST(short_wait < 0.5);  // spread <= min(d, wait_jitter) = d
    const double long_wait = b.on_failure(decision::retry_after(10s), 0s).wait.count();
    BOOST_TEST(long_wait >= 10.0);
    BOOST_TEST(long_wait < 11.0);  // spread <= wait_jitter
    seen.insert(long_wait);
  }
  BOOST_TEST(seen.size() > 190u);  // clients told the same wait come back at different times
}

BOOST_AUTO_TEST_CASE(no_jitter_means_exactly_the_server_wait) {
  const auto p = policy().wait_jitter(0s);
  stamina::backoff b(p, 3);
  BOOST_TEST(b.on_failure(decision::retry_after(7s), 0s).wait.count() == 7.0);
}

BOOST_AUTO_TEST_CASE(spread_stays_inside_the_deadline) {
  const auto p = policy().wait_jitter(5s).timeout(10s);
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    stamina::backoff b(p, seed);
    const auto s = b.on_failure(decision::retry_after(4s), 5s);  // 1 s of room after the 4 s
    BOOST_TEST(s.retry);
    BOOST_TEST(s.wait.count() >= 4.0);
    BOOST_TEST(5.0 + s.wait.count() < 10.0);
  }
}

BOOST_AUTO_TEST_SUITE_END()
