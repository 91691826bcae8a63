// The process-wide switches (set_active, testing_scope) and virtual time.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>

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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(virtual_time)

BOOST_AUTO_TEST_CASE(a_seed_gives_the_same_schedule_on_every_run_and_the_clock_moves_by_it) {
  const auto policy = test::retry_transient().attempts(6).timeout(std::nullopt);
  const auto run = [&](std::uint64_t seed) {
    const stamina::testing_scope scope(stamina::virtual_time, seed);
    const auto start = stamina::virtual_clock::now();
    int calls = 0;
    BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 99)), test::transient_error);
    BOOST_TEST(calls == 6);  // the policy's attempts, not testing mode's
    const auto waits = scope.waits();
    double sum = 0;
    for (const auto w : waits) sum += w.count();
    BOOST_TEST(stamina::duration(stamina::virtual_clock::now() - start).count() == sum,
               boost::test_tools::tolerance(1e-6));
    return waits;
  };
  const auto a = run(42);
  const auto b = run(42);
  const auto c = run(43);
  BOOST_REQUIRE(a.size() == 5u);
  BOOST_TEST(a == b, boost::test_tools::per_element());
  BOOST_TEST(a != c);
  // The exact schedule a user can assert: the policy's own backoff with that seed.
  stamina::backoff expected(policy, 42);
  for (unsigned i = 0; i < 5; ++i)
    BOOST_TEST(a[i].count() == expected.draw_wait(i + 1).count(), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(the_deadline_runs_on_virtual_time) {
  const stamina::testing_scope scope(stamina::virtual_time);
  std::optional<stamina::give_up_details> gave_up;
  int calls = 0;
  const auto policy = test::retry_transient()
                          .attempts(std::nullopt)
                          .timeout(30s)
                          .wait_jitter(0s)
                          .on_give_up([&](const stamina::give_up_details& d) { gave_up = d; });
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 1000)), test::transient_error);
  // waits 0.1 0.2 0.4 0.8 1.6 3.2 5 5 5 5 (26.3 s), then 5 more would pass 30 s
  BOOST_TEST(calls == 11);
  BOOST_REQUIRE(gave_up.has_value());
  BOOST_TEST((gave_up->reason == give_up_reason::deadline));
  BOOST_TEST(gave_up->waited_so_far.count() == 26.3, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_SUITE_END()
