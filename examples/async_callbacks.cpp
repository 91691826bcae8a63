// The same retried operation completed with a plain callback and with asio::use_future.

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

int main() {
  asio::io_context ctx;

  // A stand-in for any Asio operation with signature void(error_code, int): refused twice,
  // then it yields the attempt number.
  int calls = 0;
  auto lookup = [&](auto token) {
    ++calls;
    const error_code ec = calls % 3 != 0 ? error_code(asio::error::connection_refused) : error_code();
    return asio::post(ctx, asio::append(std::move(token), ec, calls));
  };
  const auto policy =
      stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).wait_initial(5ms).wait_jitter(5ms);

  int from_callback = 0;
  stamina::async_retry(ctx, policy, lookup, [&](error_code ec, int attempt) {
    std::cout << "callback: " << ec.message() << ", succeeded on attempt " << attempt << "\n";
    from_callback = ec ? -1 : attempt;
  });
  ctx.run();

  // use_future: the io_context runs on another thread while this one blocks on the future.
  ctx.restart();
  std::future<int> future = stamina::async_retry(ctx, policy, lookup, asio::use_future);
  std::thread runner([&] { ctx.run(); });
  const int from_future = future.get();
  runner.join();
  std::cout << "future: succeeded on attempt " << from_future << "\n";

  return from_callback == 3 && from_future == 6 ? 0 : 1;
}
