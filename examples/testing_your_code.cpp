// How to make your own retrying code fast and deterministic in your unit tests (Boost.Test).
// The code under test retries with real-world waits (seconds). testing_scope(attempts) makes
// every wait zero and fixes the number of attempts; testing_scope(stamina::virtual_time, seed)
// keeps the policy's schedule but skips the waits on a virtual clock. For the scope only.

#define BOOST_TEST_MODULE testing_your_code
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;

// --- the code under test ---------------------------------------------------------------------
struct unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class config_client {
 public:
  explicit config_client(std::function<std::string()> fetch) : fetch_(std::move(fetch)) {}
  // Production policy: up to 10 attempts, waits of seconds.
  std::string load() {
    return stamina::retry(stamina::retry_policy(stamina::on_exception<unavailable>()).wait_initial(1s), fetch_);
  }

 private:
  std::function<std::string()> fetch_;
};

// --- its tests -------------------------------------------------------------------------------
// [testing-scope]
BOOST_AUTO_TEST_CASE(retries_until_the_service_answers) {
  stamina::testing_scope no_waits(/*attempts=*/3);  // zero waits, exactly 3 attempts
  int calls = 0;
  config_client client([&] {
    if (++calls < 3) throw unavailable("503");
    return std::string("x=1");
  });
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(client.load() == "x=1");
  BOOST_TEST(calls == 3);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));  // the real waits would take seconds
}
// [testing-scope]

// [virtual-time]
// The production schedule itself, without waiting for it: in virtual time every wait is
// skipped at once, the virtual clock moves by it, and the jitter comes from a fixed seed.
std::vector<std::chrono::duration<double>> schedule_of_three_failures(std::uint64_t seed) {
  const stamina::testing_scope virtual_time(stamina::virtual_time, seed);
  int calls = 0;
  config_client client([&] {
    if (++calls < 4) throw unavailable("503");
    return std::string("x=1");
  });
  const auto t0 = stamina::virtual_clock::now();
  BOOST_TEST(client.load() == "x=1");
  const auto waits = virtual_time.waits();
  BOOST_TEST((stamina::virtual_clock::now() - t0 >= 7s));  // 1 + 2 + 4 s, plus jitter
  return waits;
}

BOOST_AUTO_TEST_CASE(waits_the_production_schedule_in_virtual_time) {
  const auto waits = schedule_of_three_failures(42);
  BOOST_REQUIRE(waits.size() == 3u);
  const double base[] = {1, 2, 4};  // wait_initial 1 s, doubling; plus up to wait_jitter (1 s)
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST((waits[i].count() >= base[i] && waits[i].count() < base[i] + 1));
  BOOST_TEST((schedule_of_three_failures(42) == waits));  // the same seed, the same schedule
}
// [virtual-time]

BOOST_AUTO_TEST_CASE(gives_up_after_the_forced_attempts) {
  stamina::testing_scope no_waits(2);
  int calls = 0;
  config_client client([&]() -> std::string {
    ++calls;
    throw unavailable("down");
  });
  BOOST_CHECK_THROW(client.load(), unavailable);
  BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(async_code_too) {
  stamina::testing_scope no_waits(4);
  asio::io_context ctx;
  int calls = 0;
  auto op = [&]() -> asio::awaitable<int> {
    if (++calls < 4) throw unavailable("busy");
    co_return 1;
  };
  auto result = stamina::async_retry(ctx, stamina::on_exception<unavailable>(), op, asio::use_future);
  ctx.run();
  BOOST_TEST(result.get() == 1);
  BOOST_TEST(calls == 4);
}

BOOST_AUTO_TEST_CASE(switching_retries_off) {
  stamina::set_active(false);  // every call runs exactly once
  int calls = 0;
  config_client client([&]() -> std::string {
    ++calls;
    throw unavailable("down");
  });
  BOOST_CHECK_THROW(client.load(), unavailable);
  stamina::set_active(true);
  BOOST_TEST(calls == 1);
}
