#define BOOST_TEST_MODULE stamina
#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>

// The default hooks log every retry to standard error; tests that want hooks install their
// own, so start every test run quiet.
struct quiet_hooks {
  quiet_hooks() {
    stamina::instrumentation::set_on_retry_hooks({});
    stamina::instrumentation::set_on_give_up_hooks({});
  }
};
BOOST_TEST_GLOBAL_FIXTURE(quiet_hooks);

// Default throttling is process-wide and learns from every call with the same name: across
// hundreds of failing test calls it would start pacing and make each test depend on the ones
// before it. Tests of default throttling turn it on for themselves (test::default_throttling).
struct independent_tests {
  independent_tests() { stamina::set_default_throttling(false); }
};
BOOST_TEST_GLOBAL_FIXTURE(independent_tests);

// Every exactly_once handler of every test must have been called exactly once, never inline
// (violations are counted on any thread, reported here).
struct handlers_called_exactly_once {
  ~handlers_called_exactly_once() {
    std::string where;
    for (const std::string& name : test::violating_test_cases()) where += " " + name;
    BOOST_TEST(test::handler_violations().load() == 0, "handler rule violated in:" << where);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(handlers_called_exactly_once);
