#ifndef STAMINA_TEST_COMMON_MOCK_CLOCK_HPP
#define STAMINA_TEST_COMMON_MOCK_CLOCK_HPP

// Virtual time for unit tests: a clock that only moves when the test says so, and wait traits
// that make Asio's reactor never block (to_wait_duration = 0). A timer on this clock fires
// during a poll() once the test has advanced the clock past its expiry, so timing tests are
// instant and deterministic.

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/wait_traits.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace test {

struct mock_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<mock_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept { return time_point(duration(ticks.load(std::memory_order_relaxed))); }
  static void advance(duration d) noexcept { ticks.fetch_add(d.count(), std::memory_order_relaxed); }
  template <class R, class P>
  static void advance(std::chrono::duration<R, P> d) noexcept {
    advance(std::chrono::duration_cast<duration>(d));
  }
  static double seconds() noexcept { return static_cast<double>(ticks.load()) / 1e9; }

  inline static std::atomic<std::int64_t> ticks{0};
};

}  // namespace test

// The reactor never blocks on virtual time: every timer on mock_clock is "due now" as far as
// the reactor is concerned, and fires during a poll() once the clock has passed its expiry.
template <>
struct boost::asio::wait_traits<test::mock_clock> {
  static test::mock_clock::duration to_wait_duration(const test::mock_clock::duration&) {
    return test::mock_clock::duration(0);
  }
  static test::mock_clock::duration to_wait_duration(const test::mock_clock::time_point&) {
    return test::mock_clock::duration(0);
  }
};

namespace test {

using virtual_timer = boost::asio::basic_waitable_timer<mock_clock>;

// Runs handlers until `done()` or until `limit` of virtual time has passed, advancing the
// clock by `step` whenever nothing is ready.
template <class Done>
void run_virtual(boost::asio::io_context& ctx, Done done, std::chrono::nanoseconds step = std::chrono::milliseconds(1),
                 std::chrono::nanoseconds limit = std::chrono::hours(1)) {
  const auto start = mock_clock::now();
  while (!done() && mock_clock::now() - start < limit) {
    ctx.restart();
    if (ctx.poll() == 0) mock_clock::advance(step);
  }
  ctx.restart();
  ctx.poll();
}

}  // namespace test

#endif
