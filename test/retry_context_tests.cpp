// retry_context, the loop form: attempts, hooks, give-ups, stop requests, its misuse.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>

BOOST_AUTO_TEST_SUITE(retry_context)

BOOST_AUTO_TEST_CASE(a_body_that_reports_no_failure_is_the_only_attempt) {
  int bodies = 0;
  for (stamina::attempt& attempt : stamina::retry_context(test::retry_transient())) {
    BOOST_TEST(attempt.num() == 1u);
    ++bodies;
  }
  BOOST_TEST(bodies == 1);
}

BOOST_AUTO_TEST_CASE(failures_are_retried_with_hooks_next_wait_and_num) {
  const stamina::testing_scope scope(stamina::virtual_time, 5);
  test::hook_recorder hooks;
  std::vector<unsigned> nums;
  std::vector<double> predicted;
  int calls = 0;
  const auto policy = test::retry_transient().name("ctx");
  auto body = fail_n_times(calls, 3);
  int result = 0;
  for (stamina::attempt& attempt : stamina::retry_context(policy)) {
    nums.push_back(attempt.num());
    predicted.push_back(attempt.next_wait().count());
    try {
      result = body();
    } catch (const test::transient_error&) {
      attempt.failed();
    }
  }
  BOOST_TEST(result == 4);
  BOOST_TEST(nums == (std::vector<unsigned>{1, 2, 3, 4}), boost::test_tools::per_element());
  const auto retries = hooks.retries();
  BOOST_REQUIRE(retries.size() == 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(retries[i].name == "ctx");
    BOOST_TEST(retries[i].wait_for == predicted[i], boost::test_tools::tolerance(1e-12));  // next_wait was right
    BOOST_TEST(scope.waits()[i].count() == predicted[i], boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(a_give_up_rethrows_the_same_exception_object) {
  const stamina::testing_scope scope(3);
  const test::transient_error* thrown = nullptr;
  int bodies = 0;
  stamina::retry_context ctx(test::retry_transient());
  try {
    for (stamina::attempt& attempt : ctx) {
      ++bodies;
      try {
        throw test::transient_error("again");
      } catch (const test::transient_error& e) {
        thrown = &e;
        attempt.failed();
      }
    }
    BOOST_FAIL("the give-up must rethrow");
  } catch (const test::transient_error& e) {
    BOOST_TEST(&e == thrown);
  }
  BOOST_TEST(bodies == 3);
  BOOST_TEST((ctx.gave_up() == give_up_reason::attempts_exhausted));
}

BOOST_AUTO_TEST_CASE(with_error_codes_the_loop_ends_and_says_why) {
  int bodies = 0;
  error_code ec;
  stamina::retry_context ctx(quick(stamina::on_error(asio::error::connection_refused)));
  for (stamina::attempt& attempt : ctx) {
    ++bodies;
    ec = bodies == 1 ? error_code(asio::error::connection_refused) : error_code(asio::error::connection_reset);
    if (ec) attempt.failed(ec);
  }
  BOOST_TEST(bodies == 2);
  BOOST_TEST(ec == error_code(asio::error::connection_reset));
  BOOST_TEST((ctx.gave_up() == give_up_reason::not_retryable));
  BOOST_TEST(ctx.attempts() == 2u);
}

BOOST_AUTO_TEST_CASE(a_stop_request_ends_the_wait_and_rethrows_the_last_failure) {
  std::stop_source stop;
  int bodies = 0;
  const auto policy = test::retry_transient().wait_initial(1h).wait_max(1h);  // would wait an hour
  BOOST_CHECK_THROW(
      {
        for (stamina::attempt& attempt : stamina::retry_context(policy, stop.get_token())) {
          ++bodies;
          try {
            throw test::transient_error("down");
          } catch (const test::transient_error&) {
            stop.request_stop();  // before the wait begins: it must not begin at all
            attempt.failed();
          }
        }
      },
      test::transient_error);
  BOOST_TEST(bodies == 1);
}

BOOST_AUTO_TEST_CASE(leaving_the_loop_after_a_success_counts_as_a_success) {
  // The budget learns of the success although no loop step follows it (Python's `with attempt:`
  // records the success when the block exits, whatever way it exits).
  auto budget = std::make_shared<stamina::retry_budget>(10, 1);
  const auto policy = quick(test::retry_transient()).budget(budget);
  const auto leave_after_one_failure = [&]() -> int {
    for (stamina::attempt& attempt : stamina::retry_context(policy)) {
      if (attempt.num() == 2) return 2;  // success: leave the loop from inside the body
      try {
        throw test::transient_error("once");
      } catch (const test::transient_error&) {
        attempt.failed();
      }
    }
    return 0;
  };
  BOOST_TEST(leave_after_one_failure() == 2);
  BOOST_TEST(budget->tokens() == 10.0);  // charged 1 by the failure, refunded 1 by the success

  // An exception leaving the body is no success.
  BOOST_CHECK_THROW(
      {
        for (stamina::attempt& attempt : stamina::retry_context(policy)) {
          if (attempt.num() == 2) throw test::fatal_error("left by an exception");
          try {
            throw test::transient_error("once");
          } catch (const test::transient_error&) {
            attempt.failed();
          }
        }
      },
      test::fatal_error);
  BOOST_TEST(budget->tokens() == 9.0);
}

// A context that gave up stays finished: stepping it again starts no attempt and reports no
// second give-up (here the wait was interrupted by a stop request, with an error code).
BOOST_AUTO_TEST_CASE(a_finished_context_stays_finished) {
  test::hook_recorder hooks;
  std::stop_source stop;
  stamina::retry_context ctx(
      stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).attempts(3).wait_initial(1h),
      stop.get_token());
  int bodies = 0;
  auto it = ctx.begin();
  for (; it != ctx.end(); ++it) {
    ++bodies;
    stop.request_stop();
    (*it).failed(error_code(asio::error::connection_refused));
  }
  BOOST_TEST(bodies == 1);
  BOOST_TEST((ctx.gave_up() == give_up_reason::cancelled));
  ++it;
  ++it;
  BOOST_TEST((it == ctx.end()));
  BOOST_TEST(ctx.attempts() == 1u);
  BOOST_TEST(hooks.give_ups().size() == 1u);
}

BOOST_AUTO_TEST_CASE(failed_outside_a_catch_block_is_a_usage_error) {
  for (stamina::attempt& attempt : stamina::retry_context(test::retry_transient()))
    BOOST_CHECK_THROW(attempt.failed(), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
