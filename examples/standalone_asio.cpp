// stamina with standalone Asio (Debian's libasio-dev, no Boost): the same API, with
// std::error_code. Link stamina::stamina_standalone. A coroutine connects to a loopback port
// whose listener starts late (async_retry), then asks it for a line with a hedge
// (async_hedge); the blocking retry works the same way.

#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/retry.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <iostream>
#include <string>
#include <system_error>

using asio::ip::tcp;
using namespace std::chrono_literals;

int main() {
  asio::io_context ctx;
  tcp::endpoint endpoint;
  {
    tcp::acceptor probe(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    endpoint = probe.local_endpoint();
  }

  // The server starts 300 ms late and answers every connection with one line.
  tcp::acceptor acceptor(ctx);
  asio::steady_timer late_start(ctx, 300ms);
  auto serve = [&]() -> asio::awaitable<void> {
    co_await late_start.async_wait(asio::use_awaitable);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    for (;;) {
      tcp::socket peer = co_await acceptor.async_accept(asio::use_awaitable);
      co_await asio::async_write(peer, asio::buffer(std::string("hello\n")), asio::use_awaitable);
    }
  };
  asio::co_spawn(ctx, serve, [](std::exception_ptr) {});  // ends when the acceptor closes

  std::string line;
  int attempts = 0;
  auto client = [&]() -> asio::awaitable<void> {
    // [standalone]
    tcp::socket socket(ctx);
    auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                      .name("connect")
                      .attempts(20)
                      .wait_initial(20ms)
                      .wait_jitter(20ms);
    co_await stamina::async_retry(ctx, policy, [&](auto token) {
      ++attempts;
      socket.close();
      return socket.async_connect(endpoint, token);  // completes with std::error_code
    });

    stamina::hedging_policy hedging(stamina::on_error(asio::error::connection_reset));
    hedging.delay(50ms);
    auto read_line = [endpoint]() -> asio::awaitable<std::string> {
      tcp::socket s(co_await asio::this_coro::executor);
      co_await s.async_connect(endpoint, asio::use_awaitable);
      std::string text;
      co_await asio::async_read_until(s, asio::dynamic_buffer(text), '\n', asio::use_awaitable);
      co_return text;
    };
    line = co_await stamina::async_hedge(ctx, hedging, read_line);
    // [standalone]
    acceptor.close();
  };
  bool failed = false;
  asio::co_spawn(ctx, client, [&](std::exception_ptr e) {
    if (!e) return;
    failed = true;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cout << "client failed: " << ex.what() << "\n";
    }
  });
  ctx.run();

  // The blocking twin, with a std::error_code result.
  int calls = 0;
  const std::error_code last = stamina::retry(
      stamina::retry_policy(stamina::on_error(std::errc::resource_unavailable_try_again))
          .wait_initial(1ms)
          .wait_jitter(0s),
      [&]() -> std::error_code {
        return ++calls < 3 ? std::make_error_code(std::errc::resource_unavailable_try_again) : std::error_code();
      });

  std::cout << "connected after " << attempts << " attempts, read \"" << line.substr(0, line.size() - 1)
            << "\"; blocking retry: " << calls << " calls, " << (last ? last.message() : "success") << "\n";
  const bool ok = !failed && attempts > 1 && line == "hello\n" && calls == 3 && !last;
  std::cout << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}
