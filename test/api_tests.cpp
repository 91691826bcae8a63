// The 0.2 API additions on the blocking driver and retry_context: hook details as values,
// per-policy hooks, default names, composed classifiers, quiet logging with a structured sink,
// classifier failures, rejected options, on_result, virtual time with a seed. (Every driver
// runs the on_result and virtual-time scenarios in scenario_tests.cpp; the coroutine forms are
// in api_async_tests.cpp; compile-time rules in compile_fail/api_misuse.cpp.)

#include <boost/test/unit_test.hpp>

#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/backoff.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/error.hpp>
#if !defined(STAMINA_STANDALONE_ASIO)
#include <boost/system/result.hpp>
#endif

#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::give_up_reason;
namespace asio = boost::asio;
namespace inst = stamina::instrumentation;

namespace {

// Captures standard error for the lifetime of the object.
class captured_stderr {
 public:
  captured_stderr() : old_(std::cerr.rdbuf(text_.rdbuf())) {}
  ~captured_stderr() { std::cerr.rdbuf(old_); }
  captured_stderr(const captured_stderr&) = delete;
  captured_stderr& operator=(const captured_stderr&) = delete;
  std::string str() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::streambuf* old_;
};

// Policies that fail fast in real time: tiny waits, no jitter.
stamina::retry_policy quick(stamina::retry_policy p) { return p.wait_initial(0s).wait_jitter(0s).wait_max(0s); }

auto fail_n_times(int& calls, int failures) {
  return [&calls, failures]() -> int {
    if (++calls <= failures) throw test::transient_error("down #" + std::to_string(calls));
    return calls;
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hook_details)

BOOST_AUTO_TEST_CASE(copies_kept_after_the_call_stay_valid) {
  // 0.1 details held a string_view and a reference into the call's state: a copy dangled
  // (ASan: stack-use-after-return). Now they are values.
  std::vector<stamina::retry_details> retries;
  std::vector<stamina::give_up_details> give_ups;
  inst::set_on_retry_hooks({[&](const stamina::retry_details& d) { retries.push_back(d); }});
  inst::set_on_give_up_hooks({[&](const stamina::give_up_details& d) { give_ups.push_back(d); }});
  {
    int calls = 0;
    const auto policy = quick(test::retry_transient().name(std::string("a name long enough to allocate"))).attempts(3);
    BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 10)), test::transient_error);
  }
  inst::set_on_retry_hooks({});
  inst::set_on_give_up_hooks({});
  BOOST_REQUIRE(retries.size() == 2u);
  BOOST_TEST(retries[1].name == "a name long enough to allocate");
  BOOST_TEST(retries[1].retry_num == 2u);
  BOOST_TEST(retries[1].caused_by.describe().find("down #2") != std::string::npos);
  BOOST_REQUIRE(give_ups.size() == 1u);
  BOOST_TEST(give_ups[0].name == "a name long enough to allocate");
  BOOST_TEST(give_ups[0].attempts == 3u);
  BOOST_TEST(give_ups[0].caused_by.describe().find("down #3") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(per_policy_hooks)

BOOST_AUTO_TEST_CASE(a_caller_learns_its_own_reason_and_attempts_without_global_state) {
  test::hook_recorder global;  // the global hooks still run too
  std::vector<unsigned> retry_nums;
  std::optional<stamina::give_up_details> mine;
  int calls = 0;
  const auto policy = quick(test::retry_transient())
                          .attempts(3)
                          .on_retry([&](const stamina::retry_details& d) { retry_nums.push_back(d.retry_num); })
                          .on_give_up([&](const stamina::give_up_details& d) { mine = d; });
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 10)), test::transient_error);
  BOOST_TEST(retry_nums == (std::vector<unsigned>{1, 2}), boost::test_tools::per_element());
  BOOST_REQUIRE(mine.has_value());
  BOOST_TEST((mine->reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(mine->attempts == 3u);
  BOOST_TEST(global.retries().size() == 2u);
  BOOST_TEST(global.give_ups().size() == 1u);

  // Another policy's calls do not reach these hooks.
  calls = 0;
  retry_nums.clear();
  BOOST_TEST(stamina::retry(quick(test::retry_transient()), fail_n_times(calls, 1)) == 2);
  BOOST_TEST(retry_nums.empty());
}

BOOST_AUTO_TEST_CASE(they_run_without_global_hooks_and_a_throwing_one_is_contained) {
  // No global hooks are installed in this test program (test/main.cpp).
  int retried = 0;
  const captured_stderr err;
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_retry([&](const stamina::retry_details&) {
    ++retried;
    throw std::runtime_error("hook bug");
  });
  BOOST_TEST(stamina::retry(policy, fail_n_times(calls, 2)) == 3);
  BOOST_TEST(retried == 2);
  BOOST_TEST(err.str().find("on-retry hook threw and was ignored: hook bug") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_scope_object_returned_by_the_policy_hook_lives_until_the_next_attempt) {
  auto alive = std::make_shared<int>(0);
  std::vector<long> seen_by_attempts;
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_retry([alive](const stamina::retry_details&) {
    return alive;  // a "span"
  });
  (void)stamina::retry(policy, [&]() -> int {
    seen_by_attempts.push_back(alive.use_count());
    if (++calls < 2) throw test::transient_error("x");
    return 0;
  });
  // 2 = ours + the policy's copy of the hook; 3 while the scope holds one more.
  BOOST_TEST(seen_by_attempts == (std::vector<long>{2, 2}), boost::test_tools::per_element());
  BOOST_TEST(alive.use_count() == 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(default_name)

BOOST_AUTO_TEST_CASE(a_policy_is_named_after_where_it_was_made) {
  const stamina::retry_policy here(stamina::on_exception<test::transient_error>());
  BOOST_TEST(here.name() == "api_tests.cpp:" + std::to_string(__LINE__ - 1));
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
  BOOST_TEST(seen->name == "api_tests.cpp:" + std::to_string(line));
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
  BOOST_TEST(retries[0].name == "api_tests.cpp:" + std::to_string(first));
  BOOST_TEST(retries[1].name == "api_tests.cpp:" + std::to_string(second));
  BOOST_TEST(retries[2].name == "api_tests.cpp:" + std::to_string(third));
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

BOOST_AUTO_TEST_SUITE(composed_classifiers)

BOOST_AUTO_TEST_CASE(the_first_part_that_says_retry_decides) {
  const stamina::retry_on on = stamina::on_error(asio::error::connection_refused) ||
                               stamina::on_exception<test::transient_error>() ||
                               stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
                                 if (f.error() == asio::error::timed_out) return stamina::decision::retry_after(3s);
                                 return false;
                               });
  BOOST_TEST(on(stamina::failure(error_code(asio::error::connection_refused))).should_retry());
  BOOST_TEST(on(stamina::failure(std::make_exception_ptr(test::transient_error("x")))).should_retry());
  const stamina::decision after = on(stamina::failure(error_code(asio::error::timed_out)));
  BOOST_TEST((after.what() == stamina::decision::kind::retry_after));
  BOOST_TEST(after.wait().count() == 3.0);
  BOOST_TEST(!on(stamina::failure(error_code(asio::error::connection_reset))).should_retry());
  BOOST_TEST(!on(stamina::failure(std::make_exception_ptr(test::fatal_error("x")))).should_retry());

  // An earlier part's wait wins over a later one's.
  const stamina::retry_on first_wins = stamina::retry_on([](const stamina::failure&) { return 1s; }) ||
                                       stamina::retry_on([](const stamina::failure&) { return 9s; });
  BOOST_TEST(first_wins(stamina::failure(error_code(asio::error::timed_out))).wait().count() == 1.0);
}

BOOST_AUTO_TEST_CASE(mixing_codes_and_exceptions_in_one_call) {
  int calls = 0;
  const auto policy =
      quick(stamina::on_error(asio::error::connection_refused) || stamina::on_exception<test::transient_error>());
  const int n = stamina::retry(policy, [&]() -> int {
    ++calls;
    if (calls == 1) throw boost::system::system_error(asio::error::connection_refused);
    if (calls == 2) throw test::transient_error("x");
    return calls;
  });
  BOOST_TEST(n == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(logging)

BOOST_AUTO_TEST_CASE(retries_are_logged_and_only_give_ups_after_a_retry) {
  std::ostringstream out;
  inst::set_on_retry_hooks({inst::logging_hook(out)});
  inst::set_on_give_up_hooks({inst::give_up_logging_hook(out)});
  int calls = 0;
  // A first-attempt failure that is never retried (a 404) is not the retry library's news.
  BOOST_CHECK_THROW(
      stamina::retry(quick(test::retry_transient()).name("api"), [&]() -> int { throw test::fatal_error("404"); }),
      test::fatal_error);
  BOOST_TEST(out.str().empty());
  BOOST_CHECK_THROW(stamina::retry(quick(test::retry_transient()).name("api").attempts(2), fail_n_times(calls, 9)),
                    test::transient_error);
  inst::reset_on_retry_hooks();
  inst::reset_on_give_up_hooks();
  inst::set_on_retry_hooks({});
  inst::set_on_give_up_hooks({});
  const std::string text = out.str();
  BOOST_TEST(text.find("stamina.retry_scheduled callable=\"api\" call_id=") == 0u, text);
  BOOST_TEST(text.find(" retry_num=1 wait_for=0s") != std::string::npos, text);
  BOOST_TEST(text.find(" reason=attempts_exhausted attempts=2 held_back=0") != std::string::npos, text);
  BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 2);
}

BOOST_AUTO_TEST_CASE(a_sink_receives_the_level_and_the_fields) {
  std::vector<inst::log_record> records;
  inst::set_on_retry_hooks(
      {inst::logging_hook(inst::log_sink([&](const inst::log_record& r) { records.push_back(r); }))});
  inst::set_on_give_up_hooks(
      {inst::give_up_logging_hook(inst::log_sink([&](const inst::log_record& r) { records.push_back(r); }))});
  int calls = 0;
  BOOST_CHECK_THROW(stamina::retry(quick(test::retry_transient()).name("db").attempts(2), fail_n_times(calls, 9)),
                    test::transient_error);
  inst::set_on_retry_hooks({});
  inst::set_on_give_up_hooks({});
  BOOST_REQUIRE(records.size() == 2u);
  BOOST_TEST((records[0].level == inst::log_level::warning));
  BOOST_TEST(records[0].event == "stamina.retry_scheduled");
  BOOST_REQUIRE(records[0].fields.size() == 6u);
  BOOST_TEST(records[0].fields[0].key == "callable");
  BOOST_TEST(records[0].fields[0].value == "db");
  // Tells the lines of concurrent calls apart; the give-up of the same call carries the same id.
  BOOST_TEST(records[0].fields[1].key == "call_id");
  BOOST_TEST(records[0].fields[2].key == "retry_num");
  BOOST_TEST(records[0].fields[2].value == "1");
  BOOST_TEST(records[0].fields[5].key == "caused_by");
  BOOST_TEST(records[0].fields[5].value.find("down #1") != std::string::npos);
  BOOST_TEST((records[1].level == inst::log_level::error));
  BOOST_TEST(records[1].event == "stamina.gave_up");
  BOOST_TEST(records[1].fields[1].value == records[0].fields[1].value);
  BOOST_TEST(records[1].fields[2].value == "attempts_exhausted");
  BOOST_TEST(records[1].line().rfind("stamina.gave_up callable=\"db\" call_id=", 0) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(no_silent_no_ops)

BOOST_AUTO_TEST_CASE(a_throwing_classifier_is_reported_and_not_retried) {
  const captured_stderr err;
  int calls = 0;
  const auto policy = quick(stamina::retry_on([](const stamina::failure&) -> bool { throw std::logic_error("oops"); }));
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 9)), test::transient_error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(
      err.str().find("classifier failed (threw, or returned an invalid wait), so the failure is not retried: oops") !=
      std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_negative_wait_is_reported_and_not_retried) {
  // [invalid-wait]
  const captured_stderr err;
  int calls = 0;
  const auto policy = quick(stamina::retry_on([](const stamina::failure&) { return -1s; }));
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 9)), test::transient_error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(err.str().find("wait must be >= 0") != std::string::npos);
  // [invalid-wait]
}

BOOST_AUTO_TEST_CASE(attempt_timeout_is_rejected_by_the_blocking_drivers) {
  // [blocking-attempt-timeout]
  int calls = 0;
  const auto policy = test::retry_transient().attempt_timeout(1s);
  const auto names_the_field = [](const std::invalid_argument& e) {
    return std::string(e.what()).find("attempt_timeout") != std::string::npos;
  };
  BOOST_CHECK_EXCEPTION(stamina::retry(policy, fail_n_times(calls, 0)), std::invalid_argument, names_the_field);
  BOOST_CHECK_EXCEPTION(stamina::retry_context{policy}, std::invalid_argument, names_the_field);
  BOOST_TEST(calls == 0);  // rejected before the first attempt
  // [blocking-attempt-timeout]
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(on_result)

BOOST_AUTO_TEST_CASE(a_returned_value_is_retried_until_the_predicate_accepts_it) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_result([](int status) { return status == 503; });
  const int status = stamina::retry(policy, [&] { return ++calls < 3 ? 503 : 200; });
  BOOST_TEST(status == 200);
  BOOST_TEST(calls == 3);
}

BOOST_AUTO_TEST_CASE(on_give_up_the_last_result_is_returned_as_the_success_it_was) {
  int calls = 0;
  std::optional<stamina::give_up_details> gave_up;
  const auto policy = quick(test::retry_transient())
                          .attempts(2)
                          .on_result([](const std::string& body) { return body == "busy"; })
                          .on_give_up([&](const stamina::give_up_details& d) { gave_up = d; });
  BOOST_TEST(stamina::retry(policy, [&] { return ++calls, std::string("busy"); }) == "busy");
  BOOST_TEST(calls == 2);
  BOOST_REQUIRE(gave_up.has_value());
  BOOST_TEST((gave_up->reason == give_up_reason::attempts_exhausted));
  // Hooks see the retried result described by its value, not as a bare code.
  const auto* retried = gave_up->caused_by.get<stamina::retried_result_error>();
  BOOST_REQUIRE(retried != nullptr);
  BOOST_TEST(std::string(retried->what()).find("busy") != std::string::npos, retried->what());
}

// Found by the standalone suite (the sync scenarios throw there): a success that on_result
// retried after a failed attempt is what a give-up delivers, not the earlier exception.
BOOST_AUTO_TEST_CASE(a_retried_success_after_an_exception_is_delivered_on_give_up) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).attempts(3).on_result([](int) { return true; });
  const int value = stamina::retry(policy, [&]() -> int {
    if (++calls == 1) throw test::transient_error("first");
    return 10 * calls;
  });
  BOOST_TEST(value == 30);
  BOOST_TEST(calls == 3);
}

#if !defined(STAMINA_STANDALONE_ASIO)  // boost::system::result: Boost only
BOOST_AUTO_TEST_CASE(a_result_value_of_a_result_type_is_judged_too) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_result([](int v) { return v < 2; });
  const boost::system::result<int> r = stamina::retry(policy, [&]() -> boost::system::result<int> { return calls++; });
  BOOST_TEST(r.value() == 2);
}
#endif

BOOST_AUTO_TEST_CASE(a_predicate_of_the_wrong_type_is_rejected_before_the_first_attempt) {
  int calls = 0;
  // A plain retry_policy (the predicate's types erased, e.g. kept in a member) is checked at run
  // time, before the first attempt; a result_typed one at compile time (test/compile_fail).
  const stamina::retry_policy policy = test::retry_transient().on_result([](const std::string&) { return true; });
  BOOST_CHECK_EXCEPTION(stamina::retry(policy, [&] { return ++calls; }), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          const std::string what = e.what();
                          return what.find("on_result") != std::string::npos && what.find("(int)") != std::string::npos;
                        });
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(a_server_given_wait_from_on_result_is_honoured) {
  const stamina::testing_scope virtual_time(stamina::virtual_time, 3);
  int calls = 0;
  const auto policy = test::retry_transient().wait_jitter(0s).on_result([](int status) -> stamina::decision {
    if (status == 429) return stamina::decision::retry_after(7s);
    return false;
  });
  BOOST_TEST(stamina::retry(policy, [&] { return ++calls == 1 ? 429 : 200; }) == 200);
  BOOST_REQUIRE(virtual_time.waits().size() == 1u);
  BOOST_TEST(virtual_time.waits()[0].count() == 7.0);
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
