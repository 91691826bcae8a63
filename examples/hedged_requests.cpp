// Hedged requests against a backend with a slow tail: a small in-process TCP server answers
// most requests in ~1 ms and every 25th in 100 ms. Each call is one request on its own
// connection; async_hedge sends a second request when the first is slower than the 95th
// percentile of recent calls, and closes the slower connection when one answers.
// Prints the latencies and the hedging counters; checks every call succeeded and the hedges
// stayed within the budget.

#include <stamina/async_hedge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// The backend: reads one line, answers after 1 ms, or 100 ms for every 25th request. A client
// that hangs up first ends the session early (its timer is cancelled with the socket).
asio::awaitable<void> serve(tcp::socket socket, int number, int* abandoned) {
  std::string request;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(request), '\n', asio::use_awaitable);
  auto work = std::make_shared<asio::steady_timer>(socket.get_executor(), number % 25 == 0 ? 100ms : 1ms);
  // Wait for the work or for the client to hang up (the probe ends), whichever comes first.
  auto probe = std::make_shared<char>();
  socket.async_read_some(asio::buffer(probe.get(), 1),
                         [work, probe](boost::system::error_code, std::size_t) { work->cancel(); });
  auto [ec] = co_await work->async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) {
    ++*abandoned;
    co_return;
  }
  co_await asio::async_write(socket, asio::buffer(std::string("pong\n")), asio::use_awaitable);
}

asio::awaitable<void> backend(tcp::acceptor& acceptor, int* abandoned) {
  for (int number = 1;; ++number) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), number, abandoned),
                   [](std::exception_ptr) {});  // a session that fails affects only itself
  }
}

// One request on its own connection: cancelling it closes the connection.
asio::awaitable<std::string> ping(tcp::endpoint server) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(std::string("ping\n")), asio::use_awaitable);
  std::string reply;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(reply), '\n', asio::use_awaitable);
  co_return reply;
}

}  // namespace

int main() {
  asio::io_context ctx;
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const tcp::endpoint server = acceptor.local_endpoint();
  int abandoned = 0;
  asio::co_spawn(ctx, backend(acceptor, &abandoned), [](std::exception_ptr) {});

  // [hedge]
  // Made once per backend: its copies share the budget, the latency window and the counters.
  stamina::hedging_policy policy(stamina::on_error(asio::error::connection_refused));
  policy.name("backend")
      .attempts(2)                                   // at most one hedge per call
      .delay(20ms)                                   // until the window has 32 samples
      .adaptive_delay(0.95)                          // then: hedge when slower than the p95 of recent calls
      .timeout(2s)                                   // no attempt starts after 2 s
      .attempt_timeout(2s);                          // and none runs past them
  auto request = [server] { return ping(server); };  // idempotent, and cancellable

  std::vector<double> latencies;
  auto client = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 400; ++i) {
      const auto start = std::chrono::steady_clock::now();
      std::string reply = co_await stamina::async_hedge(ctx, policy, request);
      latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  };
  // [hedge]

  int failed = 0;
  int clients_done = 0;
  for (int c = 0; c < 4; ++c)
    asio::co_spawn(ctx, client, [&](std::exception_ptr e) {
      if (e) ++failed;
      if (++clients_done == 4) acceptor.close();
    });
  ctx.run();

  std::sort(latencies.begin(), latencies.end());
  const auto at = [&](double q) { return latencies[static_cast<std::size_t>(q * (latencies.size() - 1))]; };
  const stamina::hedge_stats s = policy.stats();
  std::printf("%zu calls: p50 %.1f ms, p99 %.1f ms, max %.1f ms (1 request in 25 takes 100 ms)\n", latencies.size(),
              at(0.5), at(0.99), latencies.back());
  std::printf(
      "hedges: %llu started (%.1f %% of calls), %llu won, %llu cancelled, %llu denied by the budget; "
      "delay now %.2f ms; the backend abandoned %d requests\n",
      static_cast<unsigned long long>(s.hedges), 100.0 * static_cast<double>(s.hedges) / s.calls,
      static_cast<unsigned long long>(s.won), static_cast<unsigned long long>(s.cancelled),
      static_cast<unsigned long long>(s.denied), policy.current_delay().count() * 1e3, abandoned);
  // The default budget: 5 % of calls plus a burst of 10.
  const bool within_budget = static_cast<double>(s.hedges) <= 10 + 0.05 * static_cast<double>(s.calls);
  if (failed != 0 || latencies.size() != 1600 || !within_budget || s.won == 0) {
    std::printf("FAILED: %d clients failed, hedges within budget: %d, won: %llu\n", failed, within_budget,
                static_cast<unsigned long long>(s.won));
    return 1;
  }
  return 0;
}
