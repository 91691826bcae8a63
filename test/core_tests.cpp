// The value types and the sans-I/O backoff: no clock, no I/O, plain step-by-step checks.

#include <boost/test/unit_test.hpp>

#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/global.hpp>
#include <stamina/retry_budget.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/system_error.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using stamina::backoff;
using stamina::duration;
using stamina::failure;
using stamina::give_up_reason;
using stamina::retry_policy;

namespace {

failure transient() { return failure(std::make_exception_ptr(test::transient_error("boom"))); }

// The attempt limit a backoff computes for `p` under the current global switches.
std::optional<unsigned> effective_attempts(const retry_policy& p) {
  const backoff b(p, 1);
  return b.max_attempts();
}

const retry_policy& default_policy() {
  static const retry_policy p = test::retry_transient();
  return p;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(policy)

BOOST_AUTO_TEST_CASE(defaults_match_the_design) {
  const retry_policy p = test::retry_transient();
  BOOST_TEST(p.attempts() == 10u);
  BOOST_TEST(p.timeout()->count() == 45.0);
  BOOST_TEST(p.wait_initial().count() == 0.1);
  BOOST_TEST(p.wait_max().count() == 5.0);
  BOOST_TEST(p.wait_jitter().count() == 1.0);
  BOOST_TEST(p.wait_exp_base() == 2.0);
  BOOST_TEST((p.jitter() == stamina::jitter::additive));
  BOOST_TEST(!p.attempt_timeout().has_value());
  BOOST_TEST(p.name().rfind("policies.hpp:", 0) == 0);  // where test::retry_transient() makes it
  BOOST_TEST(p.budget() == nullptr);
}

BOOST_AUTO_TEST_CASE(setters_chain_and_getters_read_back) {
  auto budget = std::make_shared<stamina::retry_budget>();
  const auto p = test::retry_transient()
                     .attempts(5)
                     .timeout(10s)
                     .wait_initial(20ms)
                     .wait_max(2s)
                     .wait_jitter(0s)
                     .wait_exp_base(3)
                     .jitter(stamina::jitter::full)
                     .attempt_timeout(500ms)
                     .name("db.connect")
                     .budget(budget);
  BOOST_TEST(p.attempts() == 5u);
  BOOST_TEST(p.timeout()->count() == 10.0);
  BOOST_TEST(p.wait_initial().count() == 0.02);
  BOOST_TEST(p.wait_max().count() == 2.0);
  BOOST_TEST(p.wait_jitter().count() == 0.0);
  BOOST_TEST(p.wait_exp_base() == 3.0);
  BOOST_TEST((p.jitter() == stamina::jitter::full));
  BOOST_TEST(p.attempt_timeout()->count() == 0.5);
  BOOST_TEST(p.name() == "db.connect");
  BOOST_TEST(p.budget() == budget);
  const auto unlimited = test::retry_transient().attempts(std::nullopt).timeout(std::nullopt);
  BOOST_TEST(!unlimited.attempts().has_value());
  BOOST_TEST(!unlimited.timeout().has_value());
}

BOOST_AUTO_TEST_CASE(invalid_values_throw_naming_field_and_value) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto p = test::retry_transient();
  struct row {
    const char* field;
    const char* value;
    std::function<void()> set;
  };
  const std::vector<row> table{
      {"attempts", "0", [&] { p.attempts(0); }},
      {"attempts", "0", [&] { p.attempts(std::optional<unsigned>(0)); }},
      {"attempts", "-1", [&] { p.attempts(-1); }},
      {"timeout", "0s", [&] { p.timeout(0s); }},
      {"timeout", "-1s", [&] { p.timeout(-1s); }},
      {"timeout", "nan", [&] { p.timeout(duration(nan)); }},
      {"timeout", "inf", [&] { p.timeout(duration(inf)); }},
      {"wait_initial", "-0.1s", [&] { p.wait_initial(-100ms); }},
      {"wait_initial", "nan", [&] { p.wait_initial(duration(nan)); }},
      {"wait_max", "-5s", [&] { p.wait_max(-5s); }},
      {"wait_max", "inf", [&] { p.wait_max(duration(inf)); }},
      {"wait_jitter", "-1s", [&] { p.wait_jitter(-1s); }},
      {"wait_jitter", "-inf", [&] { p.wait_jitter(duration(-inf)); }},
      {"wait_exp_base", "0.5", [&] { p.wait_exp_base(0.5); }},
      {"wait_exp_base", "nan", [&] { p.wait_exp_base(nan); }},
      {"wait_exp_base", "inf", [&] { p.wait_exp_base(inf); }},
      {"attempt_timeout", "0s", [&] { p.attempt_timeout(0s); }},
      {"attempt_timeout", "-2s", [&] { p.attempt_timeout(-2s); }},
  };
  for (const row& r : table) {
    const std::string message = invalid_argument_message(r.set);
    BOOST_TEST_INFO("field " << r.field << " value " << r.value << ": " << message);
    BOOST_TEST(contains(message, r.field));
    BOOST_TEST(contains(message, r.value));
  }
  // Nothing was changed by the rejected calls: the policy still has its defaults.
  BOOST_TEST(p.attempts() == 10u);
  BOOST_TEST(p.timeout()->count() == 45.0);
  BOOST_TEST(p.wait_exp_base() == 2.0);
}

BOOST_AUTO_TEST_CASE(edge_values_that_are_valid) {
  auto p = test::retry_transient().wait_initial(10s).wait_max(1s).wait_jitter(0s).wait_exp_base(1).attempts(1);
  BOOST_TEST(p.wait_initial().count() == 10.0);       // may exceed wait_max: capped when used
  p.attempts(std::numeric_limits<long long>::max());  // saturates
  BOOST_TEST(p.attempts() == std::numeric_limits<unsigned>::max());
  backoff b(p, 1);
  BOOST_TEST(b.draw_wait(1).count() == 1.0);
}

BOOST_AUTO_TEST_CASE(retry_after_rejects_negative_and_nan) {
  BOOST_CHECK_THROW(stamina::decision::retry_after(-1s), std::invalid_argument);
  BOOST_CHECK_THROW(stamina::decision::retry_after(duration(std::numeric_limits<double>::quiet_NaN())),
                    std::invalid_argument);
  BOOST_TEST(stamina::decision::retry_after(0s).wait().count() == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(classification)

BOOST_AUTO_TEST_CASE(exceptions_by_type_and_derived_type) {
  const auto on = stamina::on_exception<test::transient_error, std::out_of_range>();
  BOOST_TEST(on(failure(std::make_exception_ptr(test::transient_error("x")))).should_retry());
  BOOST_TEST(on(failure(std::make_exception_ptr(test::derived_transient_error("x")))).should_retry());
  BOOST_TEST(on(failure(std::make_exception_ptr(std::out_of_range("x")))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(test::fatal_error("x")))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(42))).should_retry());
  BOOST_TEST(!on(failure(make_error_code(boost::system::errc::timed_out))).should_retry());
}

BOOST_AUTO_TEST_CASE(error_codes_conditions_and_enums) {
  const auto on = stamina::on_error(boost::asio::error::connection_refused, boost::system::errc::timed_out,
                                    boost::system::error_code(boost::asio::error::host_not_found));
  BOOST_TEST(on(failure(boost::system::error_code(boost::asio::error::connection_refused))).should_retry());
  // errc::timed_out is a condition: it matches the system category's ETIMEDOUT.
  BOOST_TEST(on(failure(boost::system::error_code(ETIMEDOUT, boost::system::system_category()))).should_retry());
  BOOST_TEST(on(failure(boost::system::error_code(boost::asio::error::host_not_found))).should_retry());
  BOOST_TEST(!on(failure(boost::system::error_code(boost::asio::error::connection_reset))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(std::runtime_error("x")))).should_retry());
  // The exception form of the same code (what use_awaitable throws) matches too.
  const auto thrown =
      failure(std::make_exception_ptr(boost::system::system_error(boost::asio::error::connection_refused)));
  BOOST_TEST(on(thrown).should_retry());
}

BOOST_AUTO_TEST_CASE(predicates_of_each_return_type) {
  const stamina::retry_on by_bool = [](const failure& f) { return !f.is_exception(); };
  const stamina::retry_on by_decision = [](const failure&) { return stamina::decision::retry_after(2s); };
  const stamina::retry_on by_chrono = [](const failure&) { return std::chrono::milliseconds(250); };
  const stamina::retry_on refusing = [](const failure&) { return stamina::decision::no_retry(); };
  const failure code(make_error_code(boost::system::errc::io_error));
  BOOST_TEST(by_bool(code).should_retry());
  BOOST_TEST((by_decision(code).what() == stamina::decision::kind::retry_after));
  BOOST_TEST(by_decision(code).wait().count() == 2.0);
  BOOST_TEST((by_chrono(code).what() == stamina::decision::kind::retry_after));
  BOOST_TEST(by_chrono(code).wait().count() == 0.25);
  BOOST_TEST(!refusing(code).should_retry());
}

BOOST_AUTO_TEST_CASE(failure_accessors) {
  const failure e(std::make_exception_ptr(test::derived_transient_error("disk on fire")));
  BOOST_TEST(e.is_exception());
  BOOST_TEST(e.get<test::transient_error>() != nullptr);
  BOOST_TEST(e.get<test::fatal_error>() == nullptr);
  BOOST_TEST(contains(e.describe(), "derived_transient_error"));
  BOOST_TEST(contains(e.describe(), "disk on fire"));
  BOOST_TEST(!e.error());
  const failure c{boost::system::error_code(boost::asio::error::connection_refused)};
  BOOST_TEST(!c.is_exception());
  BOOST_TEST(c.get<std::exception>() == nullptr);
  BOOST_TEST(contains(c.type_name(), "system:"));
}

BOOST_AUTO_TEST_CASE(throwing_classifier_means_no_retry) {
  const retry_policy p = stamina::retry_on([](const failure&) -> bool { throw std::logic_error("bad classifier"); });
  backoff b(p, 1);
  const auto s = b.on_failure(transient(), 0s);
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::not_retryable));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backoff_core)

namespace {
struct stats {
  double min = std::numeric_limits<double>::infinity(), max = -1, sum = 0;
  int n = 0;
  void add(double x) {
    min = std::min(min, x);
    max = std::max(max, x);
    sum += x;
    ++n;
  }
  double mean() const { return sum / n; }
};

// The wait before retry `retry_num`, over many seeded backoffs.
stats draws(const retry_policy& p, unsigned retry_num, int count = 20000) {
  stats s;
  for (int i = 0; i < count; ++i) {
    backoff b(p, static_cast<std::uint64_t>(i) * 7919 + 1);
    s.add(b.draw_wait(retry_num).count());
  }
  return s;
}
}  // namespace

BOOST_AUTO_TEST_CASE(additive_bounds_and_mean) {
  const retry_policy p = test::retry_transient();  // 0.1 s, x2, cap 5 s, jitter 1 s
  const stats first = draws(p, 1);
  BOOST_TEST(first.min >= 0.1);
  BOOST_TEST(first.max <= 1.1);
  BOOST_TEST(first.mean() == 0.6, boost::test_tools::tolerance(0.02));
  const stats third = draws(p, 3);  // 0.4 + U(0, 1)
  BOOST_TEST(third.min >= 0.4);
  BOOST_TEST(third.max <= 1.4);
  BOOST_TEST(third.mean() == 0.9, boost::test_tools::tolerance(0.02));
  // At the cap the jitter is still added: clients never fall back into lock-step.
  const stats capped = draws(p, 20);
  BOOST_TEST(capped.min >= 5.0);
  BOOST_TEST(capped.max <= 6.0);
  BOOST_TEST(capped.max - capped.min > 0.9);
  BOOST_TEST(capped.mean() == 5.5, boost::test_tools::tolerance(0.01));
}

BOOST_AUTO_TEST_CASE(full_jitter_bounds_and_mean) {
  const retry_policy p = test::retry_transient().jitter(stamina::jitter::full);
  const stats s = draws(p, 4);  // U(0, 0.8)
  BOOST_TEST(s.min >= 0.0);
  BOOST_TEST(s.max <= 0.8);
  BOOST_TEST(s.mean() == 0.4, boost::test_tools::tolerance(0.02));
  const stats capped = draws(p, 30);  // U(0, 5)
  BOOST_TEST(capped.max <= 5.0);
  BOOST_TEST(capped.mean() == 2.5, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_CASE(equal_jitter_bounds_and_mean) {
  const retry_policy p = test::retry_transient().jitter(stamina::jitter::equal);
  const stats s = draws(p, 4);  // 0.4 + U(0, 0.4)
  BOOST_TEST(s.min >= 0.4);
  BOOST_TEST(s.max <= 0.8);
  BOOST_TEST(s.mean() == 0.6, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_CASE(decorrelated_jitter_bounds_and_mean) {
  const retry_policy p = test::retry_transient().jitter(stamina::jitter::decorrelated);
  const stats first = draws(p, 1);  // U(0.1, 0.3)
  BOOST_TEST(first.min >= 0.1);
  BOOST_TEST(first.max <= 0.3);
  BOOST_TEST(first.mean() == 0.2, boost::test_tools::tolerance(0.02));
  // Each wait lies in [wait_initial, min(wait_max, 3 * previous)].
  for (int seed = 1; seed <= 10000; ++seed) {
    backoff b(p, static_cast<std::uint64_t>(seed));
    double previous = 0.1;
    for (unsigned n = 1; n <= 12; ++n) {
      const double w = b.draw_wait(n).count();
      BOOST_REQUIRE(w >= 0.1);
      BOOST_REQUIRE(w <= std::min(5.0, 3 * previous) + 1e-12);
      previous = w;
    }
  }
}

BOOST_AUTO_TEST_CASE(same_seed_same_waits) {
  for (auto j :
       {stamina::jitter::additive, stamina::jitter::full, stamina::jitter::equal, stamina::jitter::decorrelated}) {
    const retry_policy p = test::retry_transient().jitter(j).attempts(std::nullopt).timeout(std::nullopt);
    backoff a(p, 42), b(p, 42), c(p, 43);
    bool any_difference = false;
    for (int i = 0; i < 20; ++i) {
      const auto sa = a.on_failure(transient(), 0s);
      const auto sb = b.on_failure(transient(), 0s);
      const auto sc = c.on_failure(transient(), 0s);
      BOOST_REQUIRE(sa.wait.count() == sb.wait.count());
      any_difference = any_difference || sa.wait.count() != sc.wait.count();
    }
    BOOST_TEST(any_difference);
  }
}

BOOST_AUTO_TEST_CASE(step_by_step_attempts) {
  const retry_policy p = test::retry_transient().attempts(3).timeout(std::nullopt).wait_jitter(0s);
  backoff b(p, 1);
  auto s = b.on_failure(transient(), 0s);
  BOOST_TEST(s.retry);
  BOOST_TEST(s.retry_num == 1u);
  BOOST_TEST(s.wait.count() == 0.1);
  BOOST_TEST(s.waited_so_far.count() == 0.0);
  s = b.on_failure(transient(), 0s);
  BOOST_TEST(s.retry);
  BOOST_TEST(s.retry_num == 2u);
  BOOST_TEST(s.wait.count() == 0.2);
  BOOST_TEST(s.waited_so_far.count() == 0.1);
  s = b.on_failure(transient(), 0s);
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(s.retry_num == 3u);
  BOOST_TEST(b.waited_so_far().count() == 0.1 + 0.2, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(non_matching_failure_gives_up_at_once) {
  backoff b(default_policy(), 1);
  const auto s = b.on_failure(failure(std::make_exception_ptr(test::fatal_error("no"))), 0s);
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::not_retryable));
  BOOST_TEST(s.retry_num == 1u);
}

BOOST_AUTO_TEST_CASE(deadline_is_never_passed) {
  // 45 s budget, waits 0.1, 0.2, 0.4 ... 5 (no jitter). Time is injected.
  const retry_policy p = test::retry_transient().attempts(std::nullopt).wait_jitter(0s);
  backoff b(p, 1);
  duration now(0);
  int retries = 0;
  for (;;) {
    now += 1s;  // each attempt takes a second
    const auto s = b.on_failure(transient(), now);
    if (!s.retry) {
      BOOST_TEST((s.reason == give_up_reason::deadline));
      break;
    }
    BOOST_REQUIRE(now.count() + s.wait.count() < 45.0);
    now += s.wait;
    ++retries;
  }
  BOOST_TEST(now.count() < 45.0);
  BOOST_TEST(retries > 5);
}

BOOST_AUTO_TEST_CASE(wait_that_would_end_after_deadline_is_not_started) {
  const retry_policy p = test::retry_transient().timeout(1s).wait_initial(500ms).wait_jitter(0s);
  backoff b(p, 1);
  BOOST_TEST(b.on_failure(transient(), 0.4s).retry);  // ends at 0.9 s
  const auto s = b.on_failure(transient(), 0.95s);    // would end at 1.95 s
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::deadline));
}

BOOST_AUTO_TEST_CASE(retry_after_overrides_wait_but_not_deadline) {
  const retry_policy p = test::retry_transient().timeout(10s);
  backoff b(p, 1);
  auto s = b.on_failure(stamina::decision::retry_after(7s), 1s);
  BOOST_TEST(s.retry);
  BOOST_TEST(s.wait.count() >= 7.0);  // at least the server's wait: no cap (wait_max is 5 s)
  BOOST_TEST(s.wait.count() < 8.0);   // spread by at most wait_jitter (1 s)
  s = b.on_failure(stamina::decision::retry_after(3s), 8s);
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::deadline));
  // Without a deadline an absurd Retry-After is kept as is; the drivers saturate it.
  const retry_policy unlimited = test::retry_transient().timeout(std::nullopt);
  backoff u(unlimited, 1);
  s = u.on_failure(stamina::decision::retry_after(duration(1e300)), 0s);
  BOOST_TEST(s.retry);
  BOOST_TEST(std::isfinite(s.wait.count()));
}

// A server-given wait of +inf (or any absurd one) is capped by max_server_wait (5 min by
// default), with or without a deadline; explicitly uncapped and without a deadline it waits
// "forever" (the drivers saturate it), as the words of decision::retry_after say.
BOOST_AUTO_TEST_CASE(an_infinite_server_wait_is_capped_not_a_deadline) {
  const retry_policy p = test::retry_transient().timeout(std::nullopt);
  BOOST_TEST(p.max_server_wait().value_or(0s).count() == 300.0);
  for (const double hostile : {std::numeric_limits<double>::infinity(), 1e300, 86400.0}) {
    backoff b(p, 1);
    const auto s = b.on_failure(stamina::decision::retry_after(duration(hostile)), 0s);
    BOOST_TEST(s.retry);
    BOOST_TEST(s.wait.count() >= 300.0);
    BOOST_TEST(s.wait.count() <= 301.0);  // spread by at most wait_jitter
  }
  const retry_policy uncapped = test::retry_transient().timeout(std::nullopt).max_server_wait(std::nullopt);
  backoff u(uncapped, 1);
  const auto s = u.on_failure(stamina::decision::retry_after(duration(std::numeric_limits<double>::infinity())), 0s);
  BOOST_TEST(s.retry);
  BOOST_TEST((s.wait.count() > 1e9));
  BOOST_CHECK_THROW(test::retry_transient().max_server_wait(-1s), std::invalid_argument);
  BOOST_CHECK_THROW(test::retry_transient().max_server_wait(duration(NAN)), std::invalid_argument);
}

// Found by the fuzzer: wait_max and wait_jitter near the double's maximum are valid, and their
// sum must saturate instead of becoming an infinite wait.
BOOST_AUTO_TEST_CASE(huge_valid_settings_saturate_the_wait) {
  const double huge = 1e308;
  const auto p = stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; }))
                     .wait_initial(stamina::duration(huge))
                     .wait_max(stamina::duration(huge))
                     .wait_jitter(stamina::duration(huge))
                     .timeout(std::nullopt);
  backoff b(p, 3);
  for (int i = 0; i < 8; ++i) {
    const auto s = b.on_failure(stamina::decision::retry(), stamina::duration(0));
    BOOST_TEST(s.retry);
    BOOST_TEST(std::isfinite(s.wait.count()));
    BOOST_TEST(std::isfinite(b.waited_so_far().count()));
  }
}

BOOST_AUTO_TEST_CASE(huge_retry_numbers_saturate) {
  for (auto j :
       {stamina::jitter::additive, stamina::jitter::full, stamina::jitter::equal, stamina::jitter::decorrelated}) {
    const retry_policy p = test::retry_transient().jitter(j);
    backoff b(p, 3);
    for (unsigned n : {1025u, 10000u, 1000000000u, std::numeric_limits<unsigned>::max()}) {
      const double w = b.draw_wait(n).count();
      BOOST_TEST_INFO("jitter " << to_string(j) << " retry " << n);
      BOOST_TEST(std::isfinite(w));
      BOOST_TEST(w >= 0.0);
      BOOST_TEST(w <= 6.0);
      BOOST_TEST(b.capped_exponential(n).count() == 5.0);
    }
  }
  // Also with a huge base: pow overflows to +inf, the cap still applies.
  const retry_policy steep = test::retry_transient().wait_exp_base(1e300);
  BOOST_TEST(backoff(steep, 1).capped_exponential(3).count() == 5.0);
}

BOOST_AUTO_TEST_CASE(attempt_limit_is_bounded_by_time_left) {
  const retry_policy p = test::retry_transient().timeout(10s).attempt_timeout(3s);
  backoff b(p, 1);
  BOOST_TEST(b.attempt_limit(0s)->count() == 3.0);
  BOOST_TEST(b.attempt_limit(8s)->count() == 2.0);
  BOOST_TEST(b.attempt_limit(11s)->count() == 0.0);
  BOOST_TEST(!backoff(default_policy(), 1).attempt_limit(0s).has_value());
}

BOOST_AUTO_TEST_CASE(is_small_and_trivially_copyable) {
  static_assert(std::is_trivially_copyable_v<backoff>);
  BOOST_TEST(sizeof(backoff) <= 64u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(global_switches)

BOOST_AUTO_TEST_CASE(inactive_means_one_attempt_no_waits) {
  stamina::set_active(false);
  BOOST_TEST(!stamina::is_active());
  backoff b(default_policy(), 1);
  const auto s = b.on_failure(transient(), 0s);
  stamina::set_active(true);
  BOOST_TEST(!s.retry);
  BOOST_TEST(!b.active());
  BOOST_TEST(stamina::is_active());
}

BOOST_AUTO_TEST_CASE(testing_forces_attempts_zero_waits_no_timeout) {
  const retry_policy p = test::retry_transient().attempts(10).timeout(1s);
  {
    stamina::testing_scope scope(3);
    BOOST_TEST(stamina::is_testing());
    backoff b(p, 1);
    BOOST_TEST(!b.deadline().has_value());
    for (int i = 1; i <= 2; ++i) {
      const auto s = b.on_failure(transient(), 100s);  // far past the ignored timeout
      BOOST_TEST(s.retry);
      BOOST_TEST(s.wait.count() == 0.0);
    }
    BOOST_TEST(!b.on_failure(transient(), 100s).retry);
  }
  BOOST_TEST(!stamina::is_testing());
  // Forcing can raise the count above the policy's; cap only lowers it.
  {
    stamina::testing_scope scope(20);
    BOOST_TEST(effective_attempts(test::retry_transient().attempts(2)) == 20u);
  }
  {
    stamina::testing_scope scope(20, true);
    BOOST_TEST(effective_attempts(test::retry_transient().attempts(2)) == 2u);
    BOOST_TEST(effective_attempts(test::retry_transient().attempts(50)) == 20u);
    BOOST_TEST(effective_attempts(test::retry_transient().attempts(std::nullopt)) == 20u);
  }
}

BOOST_AUTO_TEST_CASE(testing_scope_nests_and_restores_on_exception) {
  BOOST_TEST(!stamina::is_testing());
  try {
    stamina::testing_scope outer(4);
    {
      stamina::testing_scope inner(2, true);
      BOOST_TEST(effective_attempts(test::retry_transient()) == 2u);
    }
    BOOST_TEST(effective_attempts(test::retry_transient()) == 4u);
    throw std::runtime_error("unwind");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(!stamina::is_testing());
  BOOST_TEST(effective_attempts(test::retry_transient()) == 10u);
}

BOOST_AUTO_TEST_CASE(testing_scope_keeps_a_later_set_active) {
  {
    stamina::testing_scope scope;
    stamina::set_active(false);
  }
  BOOST_TEST(!stamina::is_active());
  stamina::set_active(true);
}

BOOST_AUTO_TEST_CASE(switches_are_thread_safe) {
  // One thread flips the switches while others read them: every reader sees one of the two
  // states whole, never a mix (testing with the default count, say). TSan checks the rest.
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::thread writer([&stop] {
    while (!stop) {
      stamina::set_testing(true, 5);
      stamina::set_testing(false);
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&inconsistent] {
      for (int i = 0; i < 20000; ++i) {
        const backoff b(default_policy(), 1);
        const bool ok = b.testing() ? b.max_attempts() == 5u : b.max_attempts() == 10u;
        if (!ok) ++inconsistent;
      }
    });
  for (auto& th : readers) th.join();
  stop = true;
  writer.join();
  stamina::set_testing(false);
  BOOST_TEST(inconsistent == 0);
  BOOST_TEST(!stamina::is_testing());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(budget)

BOOST_AUTO_TEST_CASE(grpc_token_arithmetic) {
  stamina::retry_budget b(10, 0.5);
  BOOST_TEST(b.tokens() == 10.0);
  // Retries allowed while tokens stay above 5.
  for (int i = 0; i < 4; ++i) BOOST_TEST(b.on_failure());  // 9, 8, 7, 6
  BOOST_TEST(!b.on_failure());                             // 5: not above half
  BOOST_TEST(b.tokens() == 5.0);
  b.on_success();  // 5.5
  BOOST_TEST(b.tokens() == 5.5);
  BOOST_TEST(b.retry_allowed());
  for (int i = 0; i < 20; ++i) b.on_failure();
  BOOST_TEST(b.tokens() == 0.0);  // never negative
  for (int i = 0; i < 100; ++i) b.on_success();
  BOOST_TEST(b.tokens() == 10.0);  // never above the maximum
  BOOST_CHECK_THROW(stamina::retry_budget(0, 0.1), std::invalid_argument);
  BOOST_CHECK_THROW(stamina::retry_budget(10, -1), std::invalid_argument);
  BOOST_CHECK_THROW(stamina::retry_budget(std::numeric_limits<double>::infinity(), 1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(the_budget_refuses_retries_and_rejected_failures_cost_nothing) {
  using stamina::detail::action_kind;
  auto shared = std::make_shared<stamina::retry_budget>(4, 1);
  const retry_policy p = test::retry_transient().budget(shared).attempts(std::nullopt);
  stamina::detail::retry_protocol a(p, nullptr, 1);
  a.start(0s);
  BOOST_TEST((a.attempt_failed(transient(), 0s, false).kind == action_kind::wait));  // 3 > 2
  a.wait_finished(1s, false);
  BOOST_TEST((a.attempt_failed(transient(), 1s, false).kind == action_kind::give_up));  // 2: refused
  BOOST_TEST((a.gave_up() == give_up_reason::budget_exhausted));
  // Rejected failures cost nothing; a success refunds.
  stamina::detail::retry_protocol c(p, nullptr, 1);
  c.start(0s);
  c.attempt_failed(failure(std::make_exception_ptr(test::fatal_error("x"))), 0s, false);
  BOOST_TEST(shared->tokens() == 2.0);
  stamina::detail::retry_protocol d(p, nullptr, 1);
  d.start(0s);
  d.attempt_succeeded();
  BOOST_TEST(shared->tokens() == 3.0);
  // The backoff itself is arithmetic only: it charges no budget.
  backoff b(p, 1);
  BOOST_TEST(b.on_failure(transient(), 0s).retry);
  BOOST_TEST(shared->tokens() == 3.0);
}

BOOST_AUTO_TEST_CASE(hammered_from_four_threads) {
  // Far from both bounds, no clamping happens, so every update must be accounted for exactly.
  stamina::retry_budget b(1e6, 0.5);
  const auto hammer = [&b](auto action) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&b, action] {
        for (int i = 0; i < 100000; ++i) action(b);
      });
    for (auto& th : threads) th.join();
  };
  hammer([](stamina::retry_budget& x) { x.on_failure(); });
  BOOST_TEST(b.tokens() == 600000.0);
  hammer([](stamina::retry_budget& x) { x.on_success(); });
  BOOST_TEST(b.tokens() == 800000.0);
  BOOST_TEST(b.retry_allowed());
}

BOOST_AUTO_TEST_SUITE_END()
