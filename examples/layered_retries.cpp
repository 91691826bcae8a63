// Retries that do not multiply across layers. A request goes to service A, A calls B and B
// calls C, each call through stamina with 3 attempts. When C is down, naive layering sends
// 3 x 3 = 9 attempts to C per request (27 with one more layer). Wired as below, C sees 3 (only
// B, the layer directly above it, retries), and when C is slow no attempt starts anywhere after
// the request's deadline:
//  - down: each call puts its time left into the request (`grpc-timeout`, from the attempt's
//    context); each service inherits it (`retry_policy::deadline`);
//  - up: a service whose own call gave up after retrying answers "do not retry"
//    (`grpc-retry-pushback-ms: -1`), and the caller's classifier honours it.
// The services run in this process and talk through plain structs standing for HTTP requests and
// responses (docs/layered-retries.md describes the wiring with Beast). The program checks its numbers.

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// [wire]
struct request {
  std::string timeout;  // the caller's time left: a grpc-timeout value, or empty
};
struct response {
  bool ok = false;
  std::string pushback;  // grpc-retry-pushback-ms: "-1" = do not retry; empty = none
};

// A failed response, as the calling op reports it to stamina.
struct service_error : std::runtime_error {
  explicit service_error(std::string pushback_value)
      : std::runtime_error("service failed"), pushback(std::move(pushback_value)) {}
  std::string pushback;
};

// The caller's rule: a failed service is retried, unless its answer says not to.
stamina::retry_on service_failures() {
  return stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
    const auto* e = f.get<service_error>();
    if (e == nullptr) return stamina::decision::no_retry();
    if (auto asked = stamina::parse_pushback(e->pushback)) return *asked;
    return stamina::decision::retry();
  });
}
// [wire]

struct run_stats {
  int attempts_at_c = 0;
  int started_after_deadline = 0;  // at any layer
};

struct chain {
  asio::io_context& io;
  bool layered;  // deadline down, pushback up
  bool c_slow;   // C answers late instead of failing at once
  steady::time_point top_deadline{};
  run_stats stats{};

  stamina::retry_policy policy(const char* name) const {
    // stamina's defaults scaled down in time (waits from 10 ms), three attempts per layer.
    return stamina::retry_policy(service_failures())
        .name(name)
        .attempts(3)
        .wait_initial(10ms)
        .wait_max(40ms)
        .wait_jitter(5ms)
        .throttle(nullptr);  // the comparison is about layering, not the adaptive throttle
  }

  void note_start() {
    if (steady::now() > top_deadline) ++stats.started_after_deadline;
  }

  // C: down (fails at once), or slow (answers after 80 ms, failing).
  asio::awaitable<response> serve_c(request) {
    note_start();
    ++stats.attempts_at_c;
    if (c_slow) {
      asio::steady_timer t(io, 80ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return response{};
  }

  // [service]
  // A service: calls the next one through stamina, passing its time left down, and answers a
  // give-up that retried already with "do not retry".
  asio::awaitable<response> serve(const char* name, request in,
                                  std::function<asio::awaitable<response>(request)> next) {
    note_start();
    stamina::retry_policy p = policy(name);
    if (layered)
      if (const auto left = stamina::parse_grpc_timeout(in.timeout)) p.deadline(steady::now() + *left);
    const stamina::fallback on_give_up([&](const stamina::give_up_info& info) {
      response failed;
      if (layered && stamina::answers_with_pushback(info.reason)) failed.pushback = stamina::dont_retry_pushback;
      return failed;
    });
    co_return co_await stamina::async_retry(
        io, p,
        [&](const stamina::attempt_context& ctx) -> asio::awaitable<response> {
          request out;
          if (layered && ctx.remaining()) out.timeout = stamina::format_grpc_timeout(*ctx.remaining());
          response r = co_await next(out);
          if (!r.ok) throw service_error(r.pushback);
          co_return r;
        },
        on_give_up, asio::use_awaitable);
  }
  // [service]

  // One request with a 300 ms deadline, as A receives it: A -> B -> C.
  asio::awaitable<void> client() {
    top_deadline = steady::now() + 300ms;
    request top;
    top.timeout = stamina::format_grpc_timeout(300ms);
    auto c = [this](request r) { return serve_c(std::move(r)); };
    auto b = [this, c](request r) { return serve("B", std::move(r), c); };
    const response got = co_await serve("A", top, b);
    if (got.ok) throw std::logic_error("C never succeeds");
  }
};

run_stats run(bool layered, bool c_slow) {
  asio::io_context io;
  chain ch{io, layered, c_slow};
  std::exception_ptr failed;
  asio::co_spawn(io, ch.client(), [&](std::exception_ptr e) { failed = e; });
  io.run();
  if (failed) std::rethrow_exception(failed);
  return ch.stats;
}

}  // namespace

int main() {
  const run_stats naive_down = run(false, false);
  const run_stats layered_down = run(true, false);
  const run_stats naive_slow = run(false, true);
  const run_stats layered_slow = run(true, true);
  std::printf("%-28s %14s %14s\n", "", "naive layers", "deadline+pushback");
  std::printf("%-28s %14d %14d\n", "C down: attempts at C", naive_down.attempts_at_c, layered_down.attempts_at_c);
  std::printf("%-28s %14d %14d\n", "C slow: starts after deadline", naive_slow.started_after_deadline,
              layered_slow.started_after_deadline);
  // One layer alone makes 3 attempts; naive layering 3 x 3 = 9 at C (A's three each lead to
  // B's three).
  const bool ok = naive_down.attempts_at_c == 9 && layered_down.attempts_at_c == 3 &&
                  layered_slow.started_after_deadline == 0 && naive_slow.started_after_deadline > 0;
  std::printf("%s\n", ok ? "as expected" : "UNEXPECTED");
  return ok ? 0 : 1;
}
