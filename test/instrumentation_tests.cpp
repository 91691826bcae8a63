// Hooks, scopes, give-up reasons, the logging hook and the Prometheus metrics (sync driver;
// the async driver is covered in async_retry_tests.cpp).

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <common/virtual_retry.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using stamina::give_up_reason;
namespace inst = stamina::instrumentation;

namespace {
auto always_failing(int& calls) {
  return [&calls]() -> int {
    ++calls;
    throw test::transient_error("down #" + std::to_string(calls));
  };
}
}  // namespace

BOOST_AUTO_TEST_SUITE(instrumentation)

BOOST_AUTO_TEST_CASE(n_failures_give_n_minus_1_hook_calls_with_every_field) {
  test::hook_recorder rec;
  int calls = 0;
  const auto p = test::retry_transient().name("fetch").attempts(4).wait_jitter(0s);
  BOOST_CHECK_THROW(test::retry_virtual(p, always_failing(calls)), test::transient_error);
  const auto r = rec.retries();
  BOOST_TEST(calls == 4);
  BOOST_REQUIRE(r.size() == 3u);
  const double waits[] = {0.1, 0.2, 0.4};
  double so_far = 0;
  for (unsigned i = 0; i < 3; ++i) {
    BOOST_TEST(r[i].name == "fetch");
    BOOST_TEST(r[i].retry_num == i + 1);
    BOOST_TEST(r[i].wait_for == waits[i], boost::test_tools::tolerance(1e-12));
    BOOST_TEST(r[i].waited_so_far == so_far, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(r[i].caused_by.find("down #" + std::to_string(i + 1)) != std::string::npos);
    so_far += waits[i];
  }
  const auto g = rec.give_ups();
  BOOST_REQUIRE(g.size() == 1u);
  BOOST_TEST((g[0].reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(g[0].attempts == 4u);
}

BOOST_AUTO_TEST_CASE(not_called_on_success_or_when_inactive) {
  test::hook_recorder rec;
  test::retry_virtual(test::retry_transient(), [] { return 1; });
  stamina::set_active(false);
  int calls = 0;
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient(), always_failing(calls)), test::transient_error);
  stamina::set_active(true);
  BOOST_TEST(rec.retries().empty());
  BOOST_TEST(rec.give_ups().empty());
}

BOOST_AUTO_TEST_CASE(testing_mode_reports_zero_waits) {
  test::hook_recorder rec;
  stamina::testing_scope scope(3);
  int calls = 0;
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient(), always_failing(calls)), test::transient_error);
  const auto r = rec.retries();
  BOOST_REQUIRE(r.size() == 2u);
  BOOST_TEST(r[0].wait_for == 0.0);
  BOOST_TEST(r[1].wait_for == 0.0);
}

BOOST_AUTO_TEST_CASE(give_up_reasons_one_each) {
  test::hook_recorder rec;
  int calls = 0;
  // not retryable
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient(), [&]() -> int { throw test::fatal_error("x"); }),
                    test::fatal_error);
  // deadline
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient().timeout(1s).wait_initial(2s), always_failing(calls)),
                    test::transient_error);
  // budget
  auto budget = std::make_shared<stamina::retry_budget>(2, 0.1);
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient().budget(budget), always_failing(calls)),
                    test::transient_error);
  // attempts
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient().attempts(1), always_failing(calls)),
                    test::transient_error);
  // cancelled (stop requested)
  std::stop_source stop;
  stop.request_stop();
  BOOST_CHECK_THROW(stamina::retry(test::retry_transient(), stop.get_token(), always_failing(calls)),
                    test::transient_error);
  const auto g = rec.give_ups();
  BOOST_REQUIRE(g.size() == 5u);
  BOOST_TEST((g[0].reason == give_up_reason::not_retryable));
  BOOST_TEST((g[1].reason == give_up_reason::deadline));
  BOOST_TEST((g[2].reason == give_up_reason::budget_exhausted));
  BOOST_TEST((g[3].reason == give_up_reason::attempts_exhausted));
  BOOST_TEST((g[4].reason == give_up_reason::cancelled));
}

BOOST_AUTO_TEST_CASE(hooks_run_in_order_and_a_throwing_hook_is_contained) {
  std::vector<int> order;
  inst::set_on_retry_hooks({
      [&](const stamina::retry_details&) { order.push_back(1); },
      [&](const stamina::retry_details&) {
        order.push_back(2);
        throw std::runtime_error("hook bug");
      },
      [&](const stamina::retry_details&) { order.push_back(3); },
  });
  int calls = 0;
  const int v = test::retry_virtual(test::retry_transient(), [&] {
    if (++calls < 3) throw test::transient_error("x");
    return 5;
  });
  inst::set_on_retry_hooks({});
  BOOST_TEST(v == 5);
  BOOST_TEST(order == (std::vector<int>{1, 2, 3, 1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(scope_lives_from_scheduling_until_next_attempt) {
  // The scope object records the number of attempts started when it is created and destroyed.
  struct span {
    std::vector<std::pair<int, int>>* log;
    int* attempts;
    int created;
    span(std::vector<std::pair<int, int>>* l, int* a) : log(l), attempts(a), created(*a) {}
    span(span&& o) noexcept : log(o.log), attempts(o.attempts), created(o.created) { o.log = nullptr; }
    ~span() {
      if (log) log->emplace_back(created, *attempts);
    }
  };
  std::vector<std::pair<int, int>> log;
  int attempts = 0;
  inst::set_on_retry_hooks({[&](const stamina::retry_details&) { return span(&log, &attempts); }});
  BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient().attempts(3),
                                        [&]() -> int {
                                          ++attempts;
                                          throw test::transient_error("x");
                                        }),
                    test::transient_error);
  inst::set_on_retry_hooks({});
  // Created after attempt n failed, destroyed before attempt n+1 ran.
  BOOST_TEST(log == (std::vector<std::pair<int, int>>{{1, 1}, {2, 2}}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(logging_hook_line) {
  std::ostringstream out;
  inst::set_on_retry_hooks({inst::logging_hook(out)});
  int calls = 0;
  BOOST_CHECK_THROW(
      test::retry_virtual(test::retry_transient().attempts(2).name("db").wait_jitter(0s), always_failing(calls)),
      test::transient_error);
  inst::set_on_retry_hooks({});
  const std::string line = out.str();
  BOOST_TEST(line.find("stamina.retry_scheduled callable=\"db\" call_id=") == 0u);
  BOOST_TEST(line.find(" retry_num=1 wait_for=0.1s waited_so_far=0s caused_by=\"") != std::string::npos);
  BOOST_TEST(line.find("down #1") != std::string::npos);
  BOOST_TEST(std::count(line.begin(), line.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(metrics_counters_and_prometheus_text) {
  inst::metrics m;
  inst::set_on_retry_hooks({inst::metrics_hook(m)});
  inst::set_on_give_up_hooks({inst::give_up_metrics_hook(m)});
  int calls = 0;
  for (int i = 0; i < 2; ++i)
    BOOST_CHECK_THROW(test::retry_virtual(test::retry_transient().attempts(3).name("svc \"a\""), always_failing(calls)),
                      test::transient_error);
  inst::set_on_retry_hooks({});
  inst::set_on_give_up_hooks({});
  BOOST_TEST(m.retries("svc \"a\"", 1, "test::transient_error") == 2.0);
  BOOST_TEST(m.retries("svc \"a\"", 2, "test::transient_error") == 2.0);
  BOOST_TEST(m.retries("svc \"a\"", 3, "test::transient_error") == 0.0);
  BOOST_TEST(m.give_ups("svc \"a\"", give_up_reason::attempts_exhausted) == 2.0);
  const std::string text = m.render_prometheus();
  BOOST_TEST(text.find("# TYPE stamina_retries_total counter\n") != std::string::npos);
  BOOST_TEST(text.find("stamina_retries_total{callable=\"svc "
                       "\\\"a\\\"\",retry_num=\"1\",error_type=\"test::transient_error\"} 2\n") != std::string::npos);
  BOOST_TEST(text.find("stamina_give_ups_total{callable=\"svc \\\"a\\\"\",reason=\"attempts_exhausted\"} 2\n") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(defaults_can_be_restored_and_read) {
  inst::reset_on_retry_hooks();
  BOOST_TEST(inst::get_on_retry_hooks().size() == 2u);  // logging + metrics
  inst::set_on_retry_hooks({});
  BOOST_TEST(inst::get_on_retry_hooks().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(readable_instrumentation)

// One format for exceptions, error codes and results: no wrapexcept, category names, values.
BOOST_AUTO_TEST_CASE(caused_by_is_readable_for_codes_exceptions_and_results) {
  const stamina::failure code{boost::system::error_code(boost::asio::error::connection_refused)};
  const std::string category = code.error().category().name();  // "system", or "asio.system" standalone
  BOOST_TEST(code.type_name() == category + ":connection_refused");
  BOOST_TEST(code.describe().rfind(category + ": Connection refused [", 0) == 0u, code.describe());
  std::exception_ptr wrapped;
  try {
    boost::throw_exception(boost::system::system_error(boost::asio::error::connection_refused));
  } catch (...) {
    wrapped = std::current_exception();
  }
  const stamina::failure thrown{wrapped};
  BOOST_TEST(thrown.type_name().find("wrapexcept") == std::string::npos, thrown.type_name());
#if defined(STAMINA_STANDALONE_ASIO)
  BOOST_TEST(thrown.type_name() == "std::system_error");
#else
  BOOST_TEST(thrown.type_name() == "boost::system::system_error");
#endif
  BOOST_TEST(thrown.describe().find("Connection refused") != std::string::npos, thrown.describe());
  // A retried result is described by its value.
  test::hook_recorder hooks;
  int calls = 0;
  const auto policy = test::retry_transient().attempts(2).wait_initial(0s).wait_jitter(0s).on_result(
      [](int status) { return status == 503; });
  BOOST_TEST(stamina::retry(policy, [&] { return ++calls, 503; }) == 503);
  BOOST_REQUIRE(hooks.retries().size() == 1u);
  BOOST_TEST(hooks.retries()[0].caused_by.find("503") != std::string::npos, hooks.retries()[0].caused_by);
}

// hooks_scope installs hooks for a block and puts the previous ones back.
BOOST_AUTO_TEST_CASE(a_hooks_scope_restores_the_previous_hooks) {
  int outer = 0;
  int inner = 0;
  inst::set_on_retry_hooks({[&](const stamina::retry_details&) { ++outer; }});
  int calls = 0;
  const auto policy = test::retry_transient().attempts(2).wait_initial(0s).wait_jitter(0s);
  {
    const inst::hooks_scope scope({[&](const stamina::retry_details&) { ++inner; }}, {});
    BOOST_CHECK_THROW(stamina::retry(policy, always_failing(calls)), test::transient_error);
  }
  BOOST_CHECK_THROW(stamina::retry(policy, always_failing(calls)), test::transient_error);
  inst::set_on_retry_hooks({});
  BOOST_TEST(inner == 1);
  BOOST_TEST(outer == 1);
}

// In a testing scope the default logging hooks write nothing, unless the scope asks for it.
BOOST_AUTO_TEST_CASE(testing_scopes_quiet_the_default_logs) {
  std::ostringstream out;
  inst::set_on_retry_hooks({inst::logging_hook(out)});
  int calls = 0;
  const auto policy = test::retry_transient().attempts(2);
  {
    const stamina::testing_scope scope(2);
    BOOST_CHECK_THROW(stamina::retry(policy, always_failing(calls)), test::transient_error);
  }
  BOOST_TEST(out.str().empty(), out.str());
  {
    stamina::testing_scope scope(2);
    scope.log();
    BOOST_CHECK_THROW(stamina::retry(policy, always_failing(calls)), test::transient_error);
  }
  inst::set_on_retry_hooks({});
  BOOST_TEST(out.str().find("stamina.retry_scheduled") == 0u, out.str());
}

BOOST_AUTO_TEST_SUITE_END()

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

BOOST_AUTO_TEST_SUITE(breaker_hooks)

// Every breaker's changes of state reach the global hooks (logs and metrics by default), before
// its own on_transition.
BOOST_AUTO_TEST_CASE(transitions_are_logged_counted_and_silenced_by_a_scope) {
  using state = stamina::circuit_breaker::state;
  inst::metrics m;
  std::ostringstream log;
  std::vector<stamina::circuit_breaker::transition> seen;
  inst::set_on_breaker_hooks({inst::breaker_logging_hook(log), inst::breaker_metrics_hook(m),
                              [&](const stamina::circuit_breaker::transition& t) { seen.push_back(t); }});
  stamina::circuit_breaker b("orders/shard-a");
  b.isolate();
  b.reset();
  {
    const inst::hooks_scope quiet;  // none while it lives
    b.isolate();
  }
  b.reset();
  inst::reset_on_breaker_hooks();
  BOOST_TEST(inst::get_on_breaker_hooks().size() == 2u);  // logging + metrics

  BOOST_TEST_REQUIRE(seen.size() == 3u);
  BOOST_TEST((seen[0].to == state::isolated && seen[1].to == state::closed && seen[2].to == state::closed));
  BOOST_TEST(seen[0].sequence < seen[1].sequence);
  BOOST_TEST(m.breaker_transitions("orders/shard-a", state::isolated) == 1.0);
  BOOST_TEST(m.breaker_transitions("orders/shard-a", state::closed) == 2.0);
  BOOST_TEST(log.str().find("stamina.circuit_breaker breaker=\"orders/shard-a\" from=closed to=isolated") !=
             std::string::npos);
  const std::string text = m.render_prometheus();
  BOOST_TEST(text.find("stamina_circuit_breaker_transitions_total{breaker=\"orders/shard-a\",to=\"isolated\"} 1") !=
             std::string::npos);
  BOOST_TEST(text.find("stamina_circuit_breaker_state{breaker=\"orders/shard-a\",state=\"closed\"} 1") !=
             std::string::npos);
  BOOST_TEST(text.find("stamina_circuit_breaker_state{breaker=\"orders/shard-a\",state=\"isolated\"} 0") !=
             std::string::npos);
}

// Hooks may run concurrently and report out of order: the gauge keeps the latest sequence, and a
// breaker made later under the same name replaces the earlier one.
BOOST_AUTO_TEST_CASE(the_state_gauge_keeps_the_latest_sequence) {
  using state = stamina::circuit_breaker::state;
  inst::metrics m;
  const auto shows = [&m](const std::string& name, const char* s, int value) {
    return m.render_prometheus().find("stamina_circuit_breaker_state{breaker=\"" + name + "\",state=\"" + s + "\"} " +
                                      std::to_string(value) + "\n") != std::string::npos;
  };
  m.record_breaker({"b", state::closed, state::open, 7, 1});
  m.record_breaker({"b", state::half_open, state::closed, 9, 1});
  m.record_breaker({"b", state::open, state::half_open, 8, 1});  // late
  BOOST_TEST(shows("b", "closed", 1));
  BOOST_TEST(shows("b", "half_open", 0));
  // Across the wrap of the sequence, later is still later.
  m.record_breaker({"w", state::closed, state::open, 0xFFFFFFFFu, 2});
  m.record_breaker({"w", state::open, state::half_open, 1u, 2});
  BOOST_TEST(shows("w", "half_open", 1));
  // "b" made again (a reload): its first change counts though its sequence starts afresh.
  m.record_breaker({"b", state::closed, state::isolated, 1, 3});
  BOOST_TEST(shows("b", "isolated", 1));
  m.record_breaker({"b", state::closed, state::open, 10, 1});  // the old one, late: ignored
  BOOST_TEST(shows("b", "isolated", 1));
  // Unnamed breakers are counted but have no state series (they would overwrite each other).
  m.record_breaker({"", state::closed, state::open, 1, 4});
  BOOST_TEST(m.render_prometheus().find("stamina_circuit_breaker_state{breaker=\"\"") == std::string::npos);
  BOOST_TEST(m.breaker_transitions("", state::open) == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
