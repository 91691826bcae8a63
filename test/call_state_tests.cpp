// The call state on its own, with plain asserts: what every strategy of a call shares — the
// switch snapshot, the name, the classification rule, who hears of a success, and how a give-up
// is rendered. The retry and hedge protocols are tested over it in their own files.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/global.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

using stamina::detail::call_state;

BOOST_AUTO_TEST_SUITE(call_state_rules)

BOOST_AUTO_TEST_CASE(the_switches_are_a_snapshot_taken_when_the_call_starts) {
  const auto p = test::refused_every_second();
  stamina::set_active(false);
  const call_state inactive(p.call_spec());
  stamina::set_active(true);  // too late for `inactive`
  BOOST_TEST(!inactive.active());
  const call_state active(p.call_spec());
  BOOST_TEST(active.active());
  BOOST_TEST(!active.testing());
  {
    const stamina::testing_scope scope(3);
    BOOST_TEST(!active.testing());  // taken before the scope
    const call_state testing(p.call_spec());
    BOOST_TEST(testing.testing());
    BOOST_TEST(!testing.virtual_time());
  }
  const stamina::testing_scope scope(stamina::virtual_time);
  const call_state virtual_clock(p.call_spec());
  BOOST_TEST(virtual_clock.virtual_time());
}

BOOST_AUTO_TEST_CASE(the_name_is_the_explicit_one_else_the_call_s_place_else_the_policy_s) {
  const auto unnamed = test::refused_every_second();
  const stamina::detail::caller here("client.cpp", 10);
  BOOST_TEST(call_state(unnamed.call_spec(), &here).name() == "client.cpp:10");
  // No place given: where the policy was made (the helper's file).
  BOOST_TEST(call_state(unnamed.call_spec()).name().find("policies.hpp:") != std::string::npos);
  const auto named = test::refused_every_second().name("db");
  BOOST_TEST(call_state(named.call_spec(), &here).name() == "db");
}

BOOST_AUTO_TEST_CASE(a_classifier_that_fails_is_reported_and_means_do_not_retry) {
  test::hook_recorder hooks;  // quiet: the report goes to standard error
  const auto throws = stamina::retry_policy(
      stamina::retry_on([](const stamina::failure&) -> bool { throw std::runtime_error("classifier bug"); }));
  BOOST_TEST(!call_state(throws.call_spec()).classify(test::refused_failure).should_retry());
  const auto negative =
      stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return std::chrono::milliseconds(-5); }));
  BOOST_TEST(!call_state(negative.call_spec()).classify(test::refused_failure).should_retry());
  const auto p = test::refused_every_second();
  BOOST_TEST(call_state(p.call_spec()).classify(test::refused_failure).should_retry());
  BOOST_TEST(!call_state(p.call_spec()).classify(test::reset_failure).should_retry());
}

BOOST_AUTO_TEST_CASE(a_success_has_someone_to_tell_only_with_a_budget_or_a_throttle) {
  const auto plain = test::refused_every_second();
  const call_state unguarded(plain.call_spec());
  BOOST_TEST(unguarded.unguarded());
  BOOST_TEST(!unguarded.judges_results());
  const auto budgeted = test::refused_every_second().budget(std::make_shared<stamina::retry_budget>());
  BOOST_TEST(!call_state(budgeted.call_spec()).unguarded());
  const auto throttled = test::refused_every_second().throttle(std::make_shared<stamina::adaptive_throttle>());
  BOOST_TEST(!call_state(throttled.call_spec()).unguarded());
  const auto judged = test::refused_every_second().on_result([](int v) { return v < 0; });
  const stamina::retry_policy& judging = judged;
  BOOST_TEST(call_state(judging.call_spec()).judges_results());
}

BOOST_AUTO_TEST_CASE(a_give_up_is_rendered_one_way_for_every_driver) {
  using stamina::detail::give_up_code;
  using stamina::detail::give_up_result;
  BOOST_TEST(give_up_code(give_up_result::throttled) == make_error_code(stamina::error::throttled));
  BOOST_TEST(give_up_code(give_up_result::attempt_timeout) == make_error_code(stamina::error::attempt_timeout));
  BOOST_TEST(give_up_code(give_up_result::aborted) == stamina::error_code(boost::asio::error::operation_aborted));
  // What stands for failures the dependency did not produce, in hooks and metrics.
  BOOST_TEST(call_state::timed_out_failure().error() == make_error_code(stamina::error::attempt_timeout));
  BOOST_TEST(call_state::throttled_failure().error() == make_error_code(stamina::error::throttled));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(default_name)

BOOST_AUTO_TEST_CASE(a_policy_is_named_after_where_it_was_made) {
  const stamina::retry_policy here(stamina::on_exception<test::transient_error>());
  BOOST_TEST(here.name() == "call_state_tests.cpp:" + std::to_string(__LINE__ - 1));
  stamina::retry_policy renamed = here;
  BOOST_TEST(renamed.name("db").name() == "db");
}

BOOST_AUTO_TEST_CASE(an_implicit_policy_is_named_after_the_call) {
  const stamina::testing_scope no_sleeping(stamina::virtual_time);
  std::optional<stamina::retry_details> seen;
  inst::set_on_retry_hooks({[&](const stamina::retry_details& d) { seen = d; }});
  int calls = 0;
  // The retry_on converts to a policy at the call: the call's line names it.
  const int line = __LINE__ + 1;
  (void)stamina::retry(stamina::on_exception<test::transient_error>(), fail_n_times(calls, 1));
  inst::set_on_retry_hooks({});
  BOOST_REQUIRE(seen.has_value());
  BOOST_TEST(seen->name == "call_state_tests.cpp:" + std::to_string(line));
}

// A helper that makes the policies of several call sites, without naming them.
stamina::retry_policy make_policy() { return stamina::retry_policy(stamina::on_exception<test::transient_error>()); }

BOOST_AUTO_TEST_CASE(a_helper_made_policy_is_named_after_each_call) {
  const stamina::testing_scope no_sleeping(stamina::virtual_time);
  test::hook_recorder hooks;
  int calls = 0;
  const unsigned first = __LINE__ + 1;
  (void)stamina::retry(make_policy(), fail_n_times(calls, 1));
  calls = 0;
  const unsigned second = __LINE__ + 1;
  (void)stamina::retry(make_policy(), fail_n_times(calls, 1));
  const unsigned third = __LINE__ + 1;
  for (stamina::attempt& attempt : stamina::retry_context(make_policy().attempts(2))) {
    try {
      if (attempt.num() == 1) throw test::transient_error("down");
    } catch (const test::transient_error&) {
      attempt.failed();
    }
  }
  const auto retries = hooks.retries();
  BOOST_REQUIRE(retries.size() == 3u);
  BOOST_TEST(retries[0].name == "call_state_tests.cpp:" + std::to_string(first));
  BOOST_TEST(retries[1].name == "call_state_tests.cpp:" + std::to_string(second));
  BOOST_TEST(retries[2].name == "call_state_tests.cpp:" + std::to_string(third));
}

BOOST_AUTO_TEST_CASE(call_sites_get_separate_default_throttles) {
  const stamina::retry_policy a(stamina::on_exception<test::transient_error>());
  const stamina::retry_policy b(stamina::on_exception<test::transient_error>());
  stamina::set_default_throttling(true);  // off for the other tests (main.cpp)
  // What a failing call of each reports to (the call state registers the name's throttle).
  auto reported = [](const stamina::retry_policy& p) {
    stamina::detail::call_state call(p.call_spec());
    return call.throttle_in_effect(true);
  };
  BOOST_TEST(reported(a) == stamina::default_throttle(a.name()).get());
  BOOST_TEST(reported(a) != reported(b));
  const stamina::retry_policy copy = a;  // a copy shares its original's
  BOOST_TEST(reported(copy) == reported(a));
  stamina::set_default_throttling(false);
}

BOOST_AUTO_TEST_SUITE_END()
