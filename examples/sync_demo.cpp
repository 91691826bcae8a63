// The synchronous twin: retry a flaky function with the default-shaped backoff. Every scheduled
// wait is logged to standard error by the default hooks, as Python stamina does.

#include <stamina/stamina.hpp>

#include <cstdio>
#include <iostream>
#include <stdexcept>

namespace {

struct service_unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int calls = 0;

std::string fetch_greeting() {
  ++calls;
  if (calls < 4) throw service_unavailable("HTTP 503 (call " + std::to_string(calls) + ")");
  return "hello after " + std::to_string(calls) + " calls";
}

}  // namespace

int main() {
  using namespace std::chrono_literals;

  // Small waits so the demo is quick; the shape is the default one: exponential + jitter.
  const auto policy = stamina::retry_policy(stamina::on_exception<service_unavailable>())
                          .name("fetch_greeting")
                          .attempts(5)
                          .wait_initial(50ms)
                          .wait_jitter(100ms);
  const std::string greeting = stamina::retry(policy, fetch_greeting);
  std::cout << "result: " << greeting << "\n";

  // A failure `on` does not name is delivered at once, after a single call.
  int other_calls = 0;
  try {
    stamina::retry(policy, [&]() -> int {
      ++other_calls;
      throw std::logic_error("bug, not a transient failure");
    });
  } catch (const std::logic_error& e) {
    std::cout << "not retried: " << e.what() << " (calls: " << other_calls << ")\n";
  }
  return calls == 4 && other_calls == 1 ? 0 : 1;
}
