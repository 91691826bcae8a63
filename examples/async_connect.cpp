// A coroutine connects to a loopback port whose listener starts late. The op form is
// `op(token)`: async_retry completes with async_connect's own signature, void(error_code).

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

int main() {
  asio::io_context ctx;

  // Find a free port, then leave it closed for a while.
  tcp::endpoint endpoint;
  {
    tcp::acceptor probe(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    endpoint = probe.local_endpoint();
  }

  bool connected = false;
  bool accepted = false;
  tcp::acceptor acceptor(ctx);
  asio::steady_timer late_start(ctx, 300ms);
  late_start.async_wait([&](boost::system::error_code) {
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    std::cout << "listener started on port " << endpoint.port() << "\n";
    acceptor.async_accept([&](boost::system::error_code ec, tcp::socket) { accepted = !ec; });
  });

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // [connect]
        tcp::socket socket(ctx);
        auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .name("connect")
                          .attempts(20)
                          .timeout(10s)
                          .wait_initial(20ms)
                          .wait_jitter(20ms);
        int attempts = 0;
        co_await stamina::async_retry(ctx, policy, [&](auto token) {
          ++attempts;
          socket.close();  // a fresh socket for every attempt; async_connect reopens it
          return socket.async_connect(endpoint, token);
        });
        // [connect]
        connected = socket.is_open();
        std::cout << "connected after " << attempts << " attempts\n";
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });

  ctx.run();
  std::cout << (connected && accepted ? "ok" : "FAILED") << "\n";
  return connected && accepted ? 0 : 1;
}
