// stamina demo: an Asio service that rides out a flaky backend.
//
// One process, loopback only:
//   backend  - a TCP service that is healthy, then refuses connections, then resets them, then
//              answers "BUSY <ms>" (retry after), then recovers;
//   frontend - a TCP server whose per-request coroutine calls the backend through
//              `co_await stamina::async_retry` (budget + rate-limited logging hook);
//   clients  - a few hundred concurrent clients sending requests to the frontend.
// At the end it prints a summary. `--naive` replaces the retry policy with the loop people
// write first (retry at once, no backoff, until a deadline) so the load difference shows.

#include <stamina/stamina.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// --- scenario -------------------------------------------------------------------------------
constexpr int client_count = 300;
constexpr auto run_time = 6s;
constexpr auto think_time = 200ms;  // each client's pause between requests

enum class phase { healthy, refusing, resetting, busy, recovered };
const char* to_string(phase p) {
  switch (p) {
    case phase::healthy:
      return "healthy";
    case phase::refusing:
      return "refusing connections";
    case phase::resetting:
      return "resetting connections";
    case phase::busy:
      return "answering BUSY, retry after 200 ms";
    case phase::recovered:
      return "recovered";
  }
  return "?";
}

clock_type::time_point start_time;
double seconds_since_start() { return std::chrono::duration<double>(clock_type::now() - start_time).count(); }

phase backend_phase() {
  const double t = seconds_since_start();
  if (t < 1.0) return phase::healthy;
  if (t < 2.0) return phase::refusing;
  if (t < 2.6) return phase::resetting;
  if (t < 3.3) return phase::busy;
  return phase::recovered;
}

// --- measurements -----------------------------------------------------------------------------
struct stats {
  long requests = 0, successes = 0, failures = 0;
  long backend_attempts = 0;              // connection attempts that reached the backend port
  std::vector<long> attempts_per_window;  // backend attempts per 100 ms window
  std::vector<double> latencies_ms;
  std::map<std::string, long> give_ups;  // by reason
  long retries_scheduled = 0;

  void backend_attempt() {
    ++backend_attempts;
    const auto window = static_cast<std::size_t>(seconds_since_start() * 10);
    if (attempts_per_window.size() <= window) attempts_per_window.resize(window + 1);
    ++attempts_per_window[window];
  }
} stats;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// --- backend ----------------------------------------------------------------------------------
asio::awaitable<void> backend_session(tcp::socket socket) {
  const phase p = backend_phase();
  if (p == phase::resetting) {
    socket.set_option(asio::socket_base::linger(true, 0));  // close with RST
    socket.close();
    co_return;
  }
  asio::streambuf in;
  co_await asio::async_read_until(socket, in, '\n', asio::use_awaitable);
  const std::string reply = p == phase::busy ? "BUSY 200\n" : "OK\n";
  co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
}

// The backend refuses connections by closing its listening socket during the "refusing" phase.
asio::awaitable<void> backend(tcp::endpoint endpoint) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer tick(ex);
  tcp::acceptor acceptor(ex);
  for (;;) {
    const phase p = backend_phase();
    if (p == phase::refusing && acceptor.is_open()) acceptor.close();
    if (p != phase::refusing && !acceptor.is_open()) {
      acceptor.open(endpoint.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      acceptor.bind(endpoint);
      acceptor.listen(4096);
    }
    if (!acceptor.is_open()) {
      tick.expires_after(10ms);
      co_await tick.async_wait(asio::use_awaitable);
      if (seconds_since_start() > std::chrono::duration<double>(run_time).count() + 5) co_return;
      continue;
    }
    // Accept until the phase says "refuse"; a short timer wakes us to check.
    tick.expires_after(10ms);
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec && backend_phase() == phase::refusing) acceptor.close();
    });
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    tick.cancel();
    if (ec) continue;  // closed for the refusing phase
    stats.backend_attempt();
    asio::co_spawn(ex, backend_session(std::move(socket)), [](std::exception_ptr) {});
    if (seconds_since_start() > std::chrono::duration<double>(run_time).count() + 5) co_return;
  }
}

// --- frontend ---------------------------------------------------------------------------------
struct backend_busy : std::runtime_error {
  explicit backend_busy(std::chrono::milliseconds after) : std::runtime_error("backend busy"), retry_after(after) {}
  std::chrono::milliseconds retry_after;
};

// One call to the backend: connect, send, read one line. Failures are exceptions.
asio::awaitable<std::string> call_backend(tcp::endpoint endpoint) {
  tcp::socket socket(co_await asio::this_coro::executor);
  try {
    co_await socket.async_connect(endpoint, asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::connection_refused) stats.backend_attempt();  // a refused attempt hits it too
    throw;
  }
  co_await asio::async_write(socket, asio::buffer("GET\n", 4), asio::use_awaitable);
  asio::streambuf in;
  co_await asio::async_read_until(socket, in, '\n', asio::use_awaitable);
  std::string line(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
  if (line.rfind("BUSY ", 0) == 0) throw backend_busy(std::chrono::milliseconds(std::stoi(line.substr(5))));
  co_return line;
}

// Transient failures: connection refused/reset/closed, and BUSY (with the server's wait).
stamina::decision classify(const stamina::failure& f) {
  if (const auto* busy = f.get<backend_busy>()) return stamina::decision::retry_after(busy->retry_after);
  const auto ec = f.error();
  return ec == asio::error::connection_refused || ec == asio::error::connection_reset || ec == asio::error::eof;
}

stamina::retry_policy frontend_policy() {
  static const auto budget = std::make_shared<stamina::retry_budget>(10000, 1.0);
  return stamina::retry_policy(classify)
      .name("backend")
      .attempts(8)
      .timeout(4s)
      .wait_initial(50ms)
      .wait_max(1s)
      .wait_jitter(200ms)
      .budget(budget);
}

// What people write first: try again at once until it works or time is up.
asio::awaitable<std::string> naive_retry(tcp::endpoint endpoint) {
  const auto deadline = clock_type::now() + 4s;
  for (;;) {
    std::exception_ptr error;
    try {
      co_return co_await call_backend(endpoint);
    } catch (...) {
      error = std::current_exception();
    }
    if (clock_type::now() >= deadline) std::rethrow_exception(error);
    ++stats.retries_scheduled;
  }
}

asio::awaitable<void> frontend_session(tcp::socket socket, tcp::endpoint backend_endpoint, bool naive) {
  asio::streambuf in;
  auto [ec, n] = co_await asio::async_read_until(socket, in, '\n', asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  std::string reply;
  try {
    if (naive) {
      reply = co_await naive_retry(backend_endpoint);
    } else {
      auto op = [backend_endpoint]() { return call_backend(backend_endpoint); };
      reply = co_await stamina::async_retry(co_await asio::this_coro::executor, frontend_policy(), op);
    }
  } catch (const std::exception& e) {
    reply = std::string("ERR ") + e.what() + "\n";
  }
  co_await asio::async_write(socket, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> frontend(tcp::acceptor acceptor, tcp::endpoint backend_endpoint, bool naive) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), frontend_session(std::move(socket), backend_endpoint, naive),
                   [](std::exception_ptr) {});
  }
}

// --- clients ----------------------------------------------------------------------------------
asio::awaitable<void> client(tcp::endpoint frontend_endpoint) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer pause(ex);
  while (clock_type::now() - start_time < run_time) {
    const auto sent = clock_type::now();
    ++stats.requests;
    bool ok = false;
    try {
      tcp::socket socket(ex);
      co_await socket.async_connect(frontend_endpoint, asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer("GET\n", 4), asio::use_awaitable);
      asio::streambuf in;
      co_await asio::async_read_until(socket, in, '\n', asio::use_awaitable);
      ok = std::string(asio::buffers_begin(in.data()), asio::buffers_end(in.data())).rfind("OK", 0) == 0;
    } catch (const std::exception&) {
    }
    ++(ok ? stats.successes : stats.failures);
    stats.latencies_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - sent).count());
    pause.expires_after(think_time);
    co_await pause.async_wait(asio::use_awaitable);
  }
}

// --- rate-limited logging -----------------------------------------------------------------------
// Prints at most a few retry lines per half second, and how many it held back.
class rate_limited_log {
 public:
  void operator()(std::string_view line) {
    const auto now = clock_type::now();
    if (now - window_start_ > 500ms) {
      if (suppressed_ > 0) std::printf("  ... %ld more retries scheduled\n", suppressed_);
      window_start_ = now;
      printed_ = 0;
      suppressed_ = 0;
    }
    if (printed_++ < 2)
      std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    else
      ++suppressed_;
  }

 private:
  clock_type::time_point window_start_ = clock_type::now();
  int printed_ = 0;
  long suppressed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const bool naive = argc > 1 && std::strcmp(argv[1], "--naive") == 0;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  namespace inst = stamina::instrumentation;
  auto log = std::make_shared<rate_limited_log>();
  inst::set_on_retry_hooks({inst::logging_hook([log](std::string_view line) { (*log)(line); }),
                            [](const stamina::retry_details&) { ++stats.retries_scheduled; }});
  inst::set_on_give_up_hooks(
      {[](const stamina::give_up_details& d) { ++stats.give_ups[std::string(stamina::to_string(d.reason))]; }});

  asio::io_context ctx(1);
  const auto loopback = asio::ip::address_v4::loopback();
  tcp::endpoint backend_endpoint;
  {
    tcp::acceptor probe(ctx, tcp::endpoint(loopback, 0));
    backend_endpoint = probe.local_endpoint();
  }
  tcp::acceptor frontend_acceptor(ctx, tcp::endpoint(loopback, 0));
  frontend_acceptor.listen(4096);
  const tcp::endpoint frontend_endpoint = frontend_acceptor.local_endpoint();

  std::printf("stamina demo (%s): %d clients for %lld s; backend on port %d, frontend on port %d\n",
              naive ? "--naive: immediate retries, no backoff" : "async_retry with backoff, jitter and a budget",
              client_count, static_cast<long long>(run_time.count()), backend_endpoint.port(),
              frontend_endpoint.port());

  start_time = clock_type::now();
  const auto check = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(ctx, backend(backend_endpoint), check);
  asio::co_spawn(ctx, frontend(std::move(frontend_acceptor), backend_endpoint, naive), check);
  for (int i = 0; i < client_count; ++i) asio::co_spawn(ctx, client(frontend_endpoint), check);

  // Progress line, twice a second.
  asio::steady_timer progress(ctx);
  phase last_phase = phase::healthy;
  long last_attempts = 0;
  std::function<void(boost::system::error_code)> report = [&](boost::system::error_code) {
    const phase p = backend_phase();
    if (p != last_phase) {
      std::printf("[%4.1fs] backend is now %s\n", seconds_since_start(), to_string(p));
      last_phase = p;
    }
    std::printf("[%4.1fs] requests %ld  ok %ld  failed %ld  retries %ld  backend attempts/s %ld\n",
                seconds_since_start(), stats.requests, stats.successes, stats.failures, stats.retries_scheduled,
                (stats.backend_attempts - last_attempts) * 2);
    last_attempts = stats.backend_attempts;
    if (clock_type::now() - start_time < run_time + 1s) {
      progress.expires_after(500ms);
      progress.async_wait(report);
    } else {
      ctx.stop();  // the backend loop would run forever otherwise
    }
  };
  progress.expires_after(500ms);
  progress.async_wait(report);
  ctx.run();

  // Normal load: the mean of the healthy windows after the start-up burst (0.2 s to 1 s).
  long peak = 0;
  long normal = 0;
  for (std::size_t i = 0; i < stats.attempts_per_window.size(); ++i) {
    peak = std::max(peak, stats.attempts_per_window[i] * 10);
    if (i >= 2 && i < 10) normal += stats.attempts_per_window[i] * 10;
  }
  normal /= 8;
  std::printf("\nsummary (%s)\n", naive ? "naive immediate retry" : "stamina::async_retry");
  std::printf("  requests          %ld\n", stats.requests);
  std::printf(
      "  successes         %ld (%.1f%%)\n", stats.successes,
      stats.requests ? 100.0 * static_cast<double>(stats.successes) / static_cast<double>(stats.requests) : 0.0);
  std::printf("  retries           %ld\n", stats.retries_scheduled);
  std::printf("  give-ups          ");
  if (stats.give_ups.empty()) std::printf("none");
  for (const auto& [reason, count] : stats.give_ups) std::printf("%s=%ld ", reason.c_str(), count);
  std::printf("\n  latency p50/p99   %.1f ms / %.1f ms\n", percentile(stats.latencies_ms, 0.5),
              percentile(stats.latencies_ms, 0.99));
  std::printf("  backend attempts  %ld in total\n", stats.backend_attempts);
  std::printf("  peak backend load %ld attempts/s (healthy: %ld attempts/s, %.1fx)\n", peak, normal,
              normal ? static_cast<double>(peak) / static_cast<double>(normal) : 0.0);
  // The run is judged: every request was answered and most succeeded.
  const bool answered = stats.successes + stats.failures == stats.requests;
  return answered && stats.successes > stats.requests / 2 ? 0 : 1;
}
