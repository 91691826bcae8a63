// Fork safety (src/fork_safety.hpp): a child forked while other threads are inside the library's
// process-wide state (the default-throttle registry, a breaker, a concurrency limit, all under
// their locks, a hedged call queued in a limit) can use it; the locks are held across fork().
//
// Not built under ASan: GCC 12's ASan runtime takes its allocator's locks with no fork handler,
// so a child forked while another thread allocates can hang in malloc whatever the library does
// (seen once in 40 children under load). These tests run in the plain builds and under TSan,
// whose runtime holds its own locks across fork().

#include <boost/test/unit_test.hpp>

#include <common/fork_children.hpp>
#include <common/policies.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/global.hpp>
#include <stamina/retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using stamina::circuit_breaker;
using stamina::concurrency_limit;

namespace {

stamina::retry_policy policy() { return test::refused_every_second(); }
stamina::retry_policy fast_policy(const std::string& name) {
  return policy().name(name).wait_initial(1ms).wait_max(1ms);
}

struct default_throttling_on {
  default_throttling_on() { stamina::set_default_throttling(true); }
  ~default_throttling_on() { stamina::set_default_throttling(false); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(fork_safety, default_throttling_on)

// A child forked while another thread holds the registry's lock can still retry.
BOOST_AUTO_TEST_CASE(a_forked_child_can_retry) {
  // The registry is made before the busy thread starts: a fork while another thread is inside
  // a function-local static's initialisation leaves the child waiting on its guard.
  (void)stamina::detail::default_throttle_registry_size();
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    // Per-request names failing at once: the registry's lock is taken over and over.
    for (int i = 0; !stop.load(); ++i)
      stamina::retry(policy().name("fork.busy." + std::to_string(i)).attempts(2).wait_initial(0s),
                     [] { return boost::system::error_code(boost::asio::error::connection_refused); });
  });
  const test::forked_children children = test::fork_children(40, [](int child) {
    int n = 0;
    const auto r = stamina::retry(fast_policy("fork.child." + std::to_string(child)), [&] {
      return ++n < 3 ? boost::system::error_code(boost::asio::error::connection_refused) : boost::system::error_code();
    });
    return !r && n == 3;
  });
  stop = true;
  busy.join();
  BOOST_TEST(children.hung == 0);
  BOOST_TEST(children.failed == 0);
}

// A child forked while other threads are inside a breaker (counting failures, under its lock)
// and a set (looking keys up) can use both: their locks are held across fork().
BOOST_AUTO_TEST_CASE(a_forked_child_can_use_breakers_other_threads_were_in) {
  auto shared = std::make_shared<circuit_breaker>("fork.shared");
  shared->minimum_calls(1000000);  // counting, never opening: every answer takes the lock
  stamina::circuit_breakers shards("fork.shards");
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t)
    busy.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        std::uint32_t ticket = 0;
        if (shared->allow(&ticket)) shared->on_failure(ticket);
        (void)shards["key" + std::to_string((i + t) % 50)];
      }
    });
  const test::forked_children children = test::fork_children(30, [&](int /*child*/) {
    std::uint32_t ticket = 0;
    const bool allowed = shared->allow(&ticket);
    if (allowed) shared->on_failure(ticket);
    return allowed && shards["child"] != nullptr;
  });
  stop = true;
  for (auto& th : busy) th.join();
  BOOST_TEST(children.hung == 0);
  BOOST_TEST(children.failed == 0);
}

// A child forked while other threads are inside a limit (under its lock) can use it, and starts
// it afresh: a full limit with a thread of the parent blocked in its queue is empty in the child.
BOOST_AUTO_TEST_CASE(a_forked_child_can_use_a_limit_other_threads_were_in) {
  concurrency_limit l("fork");
  l.min_limit(4);             // the busy threads' round trips (about 0 s) must not take it below their use
  std::uint32_t parents = 0;  // a place of the parent's, given back in the child: ignored there
  BOOST_TEST_REQUIRE(l.try_acquire(&parents));
  concurrency_limit full("fork.full");
  full.max_limit(1);
  BOOST_TEST_REQUIRE(full.try_acquire());
  std::stop_source stop_waiting;
  const std::stop_token token = stop_waiting.get_token();
  std::thread waiter([&] { full.wait(std::nullopt, &token); });
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t)
    busy.emplace_back([&] {
      while (!stop.load())
        if (l.try_acquire()) l.release(l.now(), false);
    });
  while (full.waiting() == 0) std::this_thread::sleep_for(1ms);
  const test::forked_children children = test::fork_children(30, [&](int /*child*/) {
    if (l.in_flight() != 0 || full.waiting() != 0 || full.in_flight() != 0) return false;
    const bool got = l.try_acquire() && full.try_acquire();
    l.release(parents, std::nullopt, stamina::detail::limit_sample::none);
    const bool still_held = l.in_flight() == 1;
    l.release(std::nullopt, false);
    full.release(std::nullopt, false);
    return got && still_held;
  });
  l.release(parents, std::nullopt, stamina::detail::limit_sample::none);
  stop = true;
  for (auto& th : busy) th.join();
  stop_waiting.request_stop();
  waiter.join();
  BOOST_TEST(children.hung == 0);
  BOOST_TEST(children.failed == 0);
  BOOST_TEST(full.waiting() == 0u);  // the parent's own state is untouched
  BOOST_TEST(full.in_flight() == 1u);
}

// A child forked while the parent has a hedged call queued for a place (an async waiter in the
// limit's queue, its io_context run by another thread) can hedge under the same limit on a
// context of its own: the parent's waiter is not in the child's queue, so nothing the child
// does wakes it. The parent's call then gets its place and completes as usual.
BOOST_AUTO_TEST_CASE(a_forked_child_can_hedge_under_a_limit_the_parent_has_a_call_queued_in) {
  namespace asio = boost::asio;
  using boost::system::error_code;
  auto limit = std::make_shared<concurrency_limit>("fork.hedge");
  limit->max_limit(1);
  std::uint32_t held = 0;
  BOOST_TEST_REQUIRE(limit->try_acquire(&held));  // full: the parent's call must queue
  const auto hedging =
      stamina::hedging_policy(stamina::on_error(asio::error::connection_refused)).delay(1ms).limit(limit);
  asio::io_context parent_ctx;
  auto parent_op = [&parent_ctx](auto token) {
    return asio::post(parent_ctx, asio::append(std::move(token), error_code()));
  };
  std::atomic<int> parent_calls{0};
  error_code parent_result = asio::error::fault;
  stamina::async_hedge(parent_ctx, hedging, parent_op, [&](error_code ec) {
    parent_result = ec;
    ++parent_calls;
  });
  std::thread runner([&] { parent_ctx.run(); });
  while (limit->waiting() == 0) std::this_thread::sleep_for(1ms);
  const test::forked_children children = test::fork_children(20, [&](int /*child*/) {
    if (limit->waiting() != 0 || limit->in_flight() != 0) return false;
    asio::io_context ctx;
    auto op = [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code())); };
    int calls = 0, succeeded = 0;
    for (int i = 0; i < 3; ++i)
      stamina::async_hedge(ctx, hedging, op, [&](error_code ec) {
        succeeded += ec ? 0 : 1;
        ++calls;
      });
    ctx.run();
    return calls == 3 && succeeded == 3 && limit->in_flight() == 0 && limit->waiting() == 0;
  });
  BOOST_TEST(parent_calls.load() == 0);  // still queued in the parent
  limit->release(held, std::nullopt, stamina::detail::limit_sample::none);
  runner.join();  // the call got the place, completed, and the context ran out of work
  BOOST_TEST(children.hung == 0);
  BOOST_TEST(children.failed == 0);
  BOOST_TEST(parent_calls.load() == 1);
  BOOST_TEST(!parent_result);
  BOOST_TEST(limit->in_flight() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
