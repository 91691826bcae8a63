// The same retried operation completed with a plain callback, asio::use_future, asio::deferred
// composed with a deadline, and on a strand.

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
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

  // [callback]
  int from_callback = 0;
  stamina::async_retry(ctx, policy, lookup, [&](error_code ec, int attempt) {
    std::cout << "callback: " << ec.message() << ", succeeded on attempt " << attempt << "\n";
    from_callback = ec ? -1 : attempt;
  });
  // [callback]
  ctx.run();

  // use_future: the io_context runs on another thread while this one blocks on the future.
  ctx.restart();
  // [future]
  std::future<int> future = stamina::async_retry(ctx, policy, lookup, asio::use_future);
  std::thread runner([&] { ctx.run(); });
  const int from_future = future.get();
  // [future]
  runner.join();
  std::cout << "future: succeeded on attempt " << from_future << "\n";

  // deferred: nothing starts until the operation is initiated; here it races a deadline in a
  // parallel group, and whichever finishes first cancels the other.
  ctx.restart();
  // [deferred]
  asio::steady_timer deadline(ctx, 5s);
  int from_deferred = 0;
  asio::experimental::make_parallel_group(stamina::async_retry(ctx, policy, lookup, asio::deferred),
                                          deadline.async_wait(asio::deferred))
      .async_wait(asio::experimental::wait_for_one(),
                  [&](std::array<std::size_t, 2> order, error_code ec, int attempt, error_code /*timer*/) {
                    std::cout << "deferred: " << (order[0] == 0 ? "retry finished first" : "deadline first")
                              << ", attempt " << attempt << "\n";
                    from_deferred = order[0] == 0 && !ec ? attempt : -1;
                  });
  // [deferred]
  ctx.run();

  // A strand: attempts run through it and the handler is invoked on it.
  ctx.restart();
  // [strand]
  auto strand = asio::make_strand(ctx);
  bool handler_on_strand = false;
  stamina::async_retry(strand, policy, lookup, asio::bind_executor(strand, [&](error_code, int attempt) {
                         handler_on_strand = strand.running_in_this_thread();
                         std::cout << "strand: attempt " << attempt << ", handler on the strand: " << std::boolalpha
                                   << handler_on_strand << "\n";
                       }));
  // [strand]
  ctx.run();

  return from_callback == 3 && from_future == 6 && from_deferred == 9 && handler_on_strand ? 0 : 1;
}
