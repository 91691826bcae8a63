// The pattern to copy when neither stamina::retry nor stamina::async_retry fits, because the
// attempt is several statements of your own: stamina::retry_context, Python's retry_context.
// Hooks, logging, deadline, budget and throttle behave exactly as in retry().

#include <stamina/retry_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct flaky_sensor_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Fails three times, then reads 21.5.
int sensor_calls = 0;
double read_sensor() {
  if (++sensor_calls % 4 != 0) throw flaky_sensor_error("sensor busy (call " + std::to_string(sensor_calls) + ")");
  return 21.5;
}

double blocking(const stamina::retry_policy& policy) {
  double celsius = 0;
  // [context]
  for (stamina::attempt& attempt : stamina::retry_context(policy)) {
    std::printf("attempt %u (if it fails: wait %.3f s)\n", attempt.num(), attempt.next_wait().count());
    try {
      celsius = read_sensor();
    } catch (const flaky_sensor_error&) {
      attempt.failed();  // retryable: the loop waits, then runs again; not: rethrown here
    }
  }
  // [context]
  return celsius;
}

asio::awaitable<double> in_a_coroutine(stamina::retry_policy policy) {
  // [async-context]
  stamina::retry_context ctx(policy);
  while (stamina::attempt* attempt = co_await ctx.async_next()) {  // waits on a timer, not the thread
    try {
      co_return read_sensor();  // co_await your operations here
    } catch (const flaky_sensor_error&) {
      attempt->failed();  // no co_await in the catch block, nothing to carry out of it
    }
  }
  // [async-context]
  co_return 0.0;  // not reached: a give-up rethrows the last failure
}

}  // namespace

int main() {
  const auto policy = stamina::retry_policy(stamina::on_exception<flaky_sensor_error>())
                          .name("read_sensor")
                          .attempts(5)
                          .timeout(10s)
                          .wait_initial(10ms)
                          .wait_jitter(5ms);
  const double a = blocking(policy);
  std::printf("blocking: read %.1f C after %d calls\n", a, sensor_calls);

  asio::io_context ctx;
  double b = 0;
  asio::co_spawn(ctx, in_a_coroutine(policy), [&](std::exception_ptr e, double celsius) {
    if (e) std::rethrow_exception(e);
    b = celsius;
  });
  ctx.run();
  std::printf("coroutine: read %.1f C after %d calls\n", b, sensor_calls);
  return a == 21.5 && b == 21.5 && sensor_calls == 8 ? 0 : 1;
}
