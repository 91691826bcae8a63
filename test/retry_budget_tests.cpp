// retry_budget: gRPC's token arithmetic, refused retries, four threads at once.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>

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

BOOST_AUTO_TEST_SUITE_END()
