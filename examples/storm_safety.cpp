// Storm safety in a few lines: the default throttle every policy shares with the calls of
// its name, a throttle of your own for one dependency, opting out, a retry budget and a
// server-given Retry-After. A blocking "dependency" is down for its first 600 ms; 60 calls
// a little apart show the throttle pacing, raising its pace and letting go.

#include <stamina/stamina.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct unavailable : std::runtime_error {
  unavailable() : std::runtime_error("503 Service Unavailable") {}
};

const steady::time_point started = steady::now();
int sent = 0;

// Down for 600 ms, then healthy.
int call_dependency() {
  ++sent;
  if (steady::now() - started < 600ms) throw unavailable();
  return 42;
}

}  // namespace

int main() {
  // [shared-throttle]
  // One throttle for every call to this dependency, shared by all threads that call it.
  // (Without `throttle(...)`, a policy uses stamina::default_throttle(name()): the calls of one
  // name share one throttle, which is usually what you want.)
  // (k = 2, window = 100, min_sent = 5: pace after 5 failed attempts, for a short demo.)
  auto payments = std::make_shared<stamina::adaptive_throttle>(2.0, 100, 5);
  payments->interval(0.05);  // revise the pace every 50 ms (default 0.5 s), for a short demo
  const auto policy = stamina::retry_policy(stamina::on_exception<unavailable>())
                          .name("payments")
                          .wait_initial(10ms)
                          .wait_max(100ms)
                          .wait_jitter(10ms)
                          .timeout(2s)
                          .throttle(payments);
  // [shared-throttle]

  int ok = 0, throttled = 0;
  for (int i = 0; i < 60; ++i) {
    try {
      stamina::retry(policy, call_dependency);
      ++ok;
    } catch (const boost::system::system_error& e) {
      if (e.code() != stamina::error::throttled) throw;
      ++throttled;
    } catch (const unavailable&) {
    }
    if (i % 6 == 0)
      std::printf("call %2d: %s (pace %.0f/s), %d attempts sent so far, %llu held back\n", i,
                  payments->pacing() ? "pacing" : (payments->watching() ? "watching" : "healthy"), payments->rate(),
                  sent, static_cast<unsigned long long>(payments->held_back()));
    std::this_thread::sleep_for(5ms);
  }
  std::printf("%d calls succeeded, %d ended throttled; the throttle is %s\n", ok, throttled,
              payments->pacing() ? "still pacing" : "healthy again");

  // [opt-out]
  // A call that must not be throttled (a health check, say): no throttle at all.
  const auto health_check = stamina::retry_policy(stamina::on_exception<unavailable>()).throttle(nullptr);
  // [opt-out]
  (void)health_check;

  // [budget-and-retry-after]
  // A retry budget caps retries to a fraction of successes (gRPC's rule); a 503 or 429 with a
  // Retry-After waits at least that long, then a random part of it more (up to wait_jitter),
  // so that clients turned away together do not all come back together.
  const auto careful = stamina::retry_policy(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
                         if (f.get<unavailable>()) return stamina::decision::retry_after(1s);
                         return false;
                       })).budget(std::make_shared<stamina::retry_budget>());
  // [budget-and-retry-after]
  (void)careful;
  return ok > 0 ? 0 : 1;
}
