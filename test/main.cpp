#define BOOST_TEST_MODULE stamina
#include <boost/test/unit_test.hpp>

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
