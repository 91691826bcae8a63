// backoff, the sans-I/O wait-and-deadline arithmetic: jitter bounds and means, seeds, attempts,
// the deadline, server-given waits, hostile values that saturate.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>

#include <bit>
#include <cmath>
#include <cstdint>

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

// The default base, 2, takes a path of its own (the power of two made from its exponent, not
// pow): in the default rounding mode it must give the same double as the formula, over every
// exponent a double can hold, past overflow, and for initial waits from subnormal to huge.
BOOST_AUTO_TEST_CASE(base_two_is_the_formula_bit_for_bit) {
  const double cap = std::numeric_limits<double>::max();
  for (const double initial : {1e-320, 1e-300, 0.005, 0.1, 3.7, 1e300, std::numeric_limits<double>::max()}) {
    const retry_policy p = test::retry_transient().wait_initial(duration(initial)).wait_max(duration(cap));
    const backoff b(p, 1);
    for (unsigned n = 1; n <= 1100; ++n) {
      const double formula = std::min(initial * std::pow(2.0, static_cast<double>(n - 1)), cap);
      BOOST_TEST_INFO("initial " << initial << " retry " << n);
      BOOST_TEST(std::bit_cast<std::uint64_t>(b.capped_exponential(n).count()) ==
                 std::bit_cast<std::uint64_t>(formula));
    }
    BOOST_TEST(b.capped_exponential(std::numeric_limits<unsigned>::max()).count() == cap);
  }
}

// Without jitter a wait is the exponential part exactly, and nothing is drawn for it: a seeded
// backoff whose policy gets a jitter afterwards draws what a fresh one with that seed draws (the
// backoff reads the policy it refers to; one that cached its settings would fail this test).
BOOST_AUTO_TEST_CASE(no_jitter_is_the_exponential_part_exactly) {
  retry_policy p = test::retry_transient().wait_jitter(0s);
  backoff b(p, 42);
  for (unsigned n = 1; n <= 40; ++n) BOOST_TEST(b.draw_wait(n).count() == b.capped_exponential(n).count());
  p.wait_jitter(1s);
  backoff fresh(p, 42);
  BOOST_TEST(b.draw_wait(3).count() == fresh.draw_wait(3).count());
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
