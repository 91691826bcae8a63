// An overall deadline for a retrying call with `||`: whichever finishes first wins and the
// other is cancelled (async_retry honours terminal cancellation during waits and attempts).

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

namespace {
struct still_down : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace

int main() {
  asio::io_context ctx;
  int calls = 0;
  bool deadline_hit = false;
  auto always_down = [&]() -> asio::awaitable<int> {
    ++calls;
    throw still_down("still down");
    co_return 0;
  };

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // [deadline]
        asio::steady_timer deadline(ctx, 250ms);
        const auto policy = stamina::retry_policy(stamina::on_exception<still_down>())
                                .attempts(std::nullopt)
                                .wait_initial(20ms)
                                .wait_jitter(10ms);
        const auto started = std::chrono::steady_clock::now();
        auto winner =
            co_await (stamina::async_retry(ctx, policy, always_down) || deadline.async_wait(asio::use_awaitable));
        deadline_hit = winner.index() == 1;
        // [deadline]
        const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::cout << (deadline_hit ? "deadline reached" : "retry finished") << " after " << calls << " attempts in "
                  << took << " s\n";
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  return deadline_hit && calls >= 2 ? 0 : 1;
}
