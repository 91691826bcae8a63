// Blocking code: stamina::retry around a blocking connect to a port that starts listening late,
// and a std::stop_token that ends a retry loop at once on shutdown.

#include <stamina/stamina.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <iostream>
#include <stop_token>
#include <thread>

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

tcp::endpoint free_loopback_port(asio::io_context& ctx) {
  tcp::acceptor probe(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return probe.local_endpoint();
}

}  // namespace

int main() {
  asio::io_context ctx;
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .name("connect")
                          .attempts(30)
                          .timeout(10s)
                          .wait_initial(20ms)
                          .wait_jitter(20ms);

  // 1. The listener appears after 300 ms; the blocking connect is retried until it does.
  const tcp::endpoint late = free_loopback_port(ctx);
  std::jthread listener([&] {
    std::this_thread::sleep_for(300ms);
    asio::io_context server_ctx;
    tcp::acceptor acceptor(server_ctx, late, /*reuse_address=*/true);
    tcp::socket peer = acceptor.accept();
  });
  tcp::socket socket(ctx);
  int attempts = 0;
  // f returns error_code: a failed code is a failure, and on give-up the last code is returned.
  const error_code ec = stamina::retry(policy, [&] {
    ++attempts;
    error_code e;
    socket.close(e);
    socket.connect(late, e);  // opens the socket, blocks until connected or refused
    return e;
  });
  std::cout << "connect: " << (ec ? ec.message() : "connected") << " after " << attempts << " attempts\n";
  listener.join();

  // 2. Shutdown: nothing listens here; request_stop() ends the wait at once and the last
  //    error is returned.
  const tcp::endpoint never = free_loopback_port(ctx);
  std::stop_source shutdown;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(200ms);
    shutdown.request_stop();
  });
  const auto slow = stamina::retry_policy(policy).wait_initial(5s).wait_max(5s);  // a copy, changed
  const auto started = std::chrono::steady_clock::now();
  // [stop-token]
  const error_code stopped = stamina::retry(slow, shutdown.get_token(), [&] {
    error_code e;
    tcp::socket s(ctx);
    s.connect(never, e);
    return e;
  });
  // [stop-token]
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "stopped after " << took << " s with: " << stopped.message() << "\n";

  return !ec && stopped == asio::error::connection_refused && took < 4.0 ? 0 : 1;
}
