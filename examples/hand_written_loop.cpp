// The pattern to copy when neither stamina::retry nor stamina::async_retry fits: drive the
// sans-I/O backoff yourself. It decides; you measure time, sleep and report.

#include <stamina/backoff.hpp>
#include <stamina/retry_policy.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace {

struct flaky_sensor_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Fails three times, then reads 21.5.
double read_sensor() {
  static int calls = 0;
  if (++calls <= 3) throw flaky_sensor_error("sensor busy (call " + std::to_string(calls) + ")");
  return 21.5;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  using clock = std::chrono::steady_clock;

  const auto policy = stamina::retry_policy(stamina::on_exception<flaky_sensor_error>())
                          .attempts(5)
                          .timeout(10s)
                          .wait_initial(10ms)
                          .wait_jitter(5ms);
  // [loop]
  stamina::backoff backoff(policy);  // refers to `policy`: keep the policy alive
  const auto start = clock::now();

  for (;;) {
    try {
      const double celsius = read_sensor();
      backoff.on_success();  // returns tokens to a retry budget, if the policy has one
      std::printf("read %.1f C after %u failures, %.3f s of scheduled waits\n", celsius, backoff.failures(),
                  backoff.waited_so_far().count());
      return celsius == 21.5 && backoff.failures() == 3 ? 0 : 1;
    } catch (const std::exception& e) {
      // Classify, count and decide without touching a clock inside the backoff: we pass the
      // elapsed time in.
      const stamina::failure what(std::current_exception());
      const stamina::backoff::step next = backoff.on_failure(what, clock::now() - start);
      if (!next.retry) {
        std::printf("giving up (%s): %s\n", std::string(stamina::to_string(next.reason)).c_str(), e.what());
        return 1;
      }
      std::printf("retry %u in %.3f s: %s\n", next.retry_num, next.wait.count(), e.what());
      std::this_thread::sleep_for(next.wait);
    }
  }
  // [loop]
}
