// Hooks, give-up reasons, Prometheus metrics, a shared retry budget and Retry-After, in one
// program. `observability --metrics FILE` also writes the metrics text to FILE (CI checks it
// with `promtool check metrics`).

#include <stamina/stamina.hpp>

#include <cstring>
#include <fstream>
#include <iostream>

namespace inst = stamina::instrumentation;
using namespace std::chrono_literals;

namespace {

struct http_error : std::runtime_error {
  http_error(int status, std::string retry_after)
      : std::runtime_error("HTTP " + std::to_string(status)), status(status), retry_after(std::move(retry_after)) {}
  int status;
  std::string retry_after;  // the response's Retry-After header, if any
};

// [hooks] A tracing-span-like object: the library keeps it alive during the wait.
struct wait_span {
  explicit wait_span(unsigned n) : retry_num(n) { std::cout << "  span open  (wait before attempt " << n + 1 << ")\n"; }
  wait_span(wait_span&& o) noexcept : retry_num(std::exchange(o.retry_num, 0)) {}
  ~wait_span() {
    if (retry_num) std::cout << "  span close (attempt " << retry_num + 1 << " starts)\n";
  }
  unsigned retry_num;
};
// [hooks]

}  // namespace

int main(int argc, char** argv) {
  // [install-hooks]
  inst::metrics metrics;  // or inst::default_metrics()
  inst::set_on_retry_hooks({
      inst::logging_hook(std::cout),                                           // one line per retry
      inst::metrics_hook(metrics),                                             // stamina_retries_total
      [](const stamina::retry_details& d) { return wait_span(d.retry_num); },  // a scope
  });
  inst::set_on_give_up_hooks({
      inst::give_up_logging_hook(std::cout),
      inst::give_up_metrics_hook(metrics),  // stamina_give_ups_total{callable, reason}
  });
  // [install-hooks]

  // [retry-after] 503 with Retry-After is retried after exactly that wait; other 5xx use the
  // policy's backoff; anything else is not retried.
  const auto policy = stamina::retry_policy(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
                        const auto* e = f.get<http_error>();
                        if (!e || e->status < 500) return stamina::decision::no_retry();
                        if (auto wait = stamina::parse_retry_after(e->retry_after, std::chrono::system_clock::now()))
                          return stamina::decision::retry_after(*wait);
                        return stamina::decision::retry();
                      }))
                          .name("GET /config")
                          .attempts(4)
                          .wait_initial(10ms)
                          .wait_jitter(10ms);
  // [retry-after]

  int calls = 0;
  const std::string body = stamina::retry(policy, [&] {
    ++calls;
    if (calls == 1) throw http_error(503, "0");  // "retry after 0 s"
    if (calls == 2) throw http_error(502, "");   // backoff
    return std::string("{\"ok\":true}");
  });
  std::cout << "body " << body << " after " << calls << " calls\n";

  // [budget] One bucket shared by every call to a dependency: during an outage, retries stop
  // once half the tokens are gone, so retries cannot multiply the load.
  auto budget = std::make_shared<stamina::retry_budget>(/*max_tokens=*/10, /*token_ratio=*/0.1);
  const auto guarded = stamina::retry_policy(stamina::on_exception<http_error>())
                           .name("GET /down")
                           .wait_initial(1ms)
                           .wait_jitter(0s)
                           .budget(budget);
  int outage_calls = 0;
  for (int request = 0; request < 3; ++request) {
    try {
      stamina::retry(guarded, [&]() -> int {
        ++outage_calls;
        throw http_error(500, "");
      });
    } catch (const http_error&) {
    }
  }
  std::cout << "outage: " << outage_calls << " calls for 3 requests, " << budget->tokens() << " tokens left\n";
  // [budget]

  // [breaker-hooks]
  // Every breaker's changes of state, logged and counted
  // (stamina_circuit_breaker_transitions_total, stamina_circuit_breaker_state).
  inst::set_on_breaker_hooks({inst::breaker_logging_hook(std::cout), inst::breaker_metrics_hook(metrics)});
  auto breaker = std::make_shared<stamina::circuit_breaker>("config-service");
  breaker->isolate();  // taken out by hand, e.g. during a migration: its calls fail at once
  breaker->reset();
  // [breaker-hooks]

  // [metrics]
  const std::string text = metrics.render_prometheus();
  std::cout << text;
  // [metrics]
  if (argc == 3 && std::strcmp(argv[1], "--metrics") == 0) std::ofstream(argv[2]) << text;

  const bool ok = calls == 3 && outage_calls == 7 &&
                  metrics.give_ups("GET /down", stamina::give_up_reason::budget_exhausted) == 3 &&
                  metrics.retries("GET /config", 1, "(anonymous namespace)::http_error") == 1 &&
                  metrics.breaker_transitions("config-service", stamina::circuit_breaker::state::isolated) == 1;
  return ok ? 0 : 1;
}
