// The op form `op()` returning asio::awaitable<T>: an operation that fails twice, then succeeds.
// `co_await stamina::async_retry(ex, policy, op)` runs the attempts in the caller's coroutine.

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct backend_busy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

int main() {
  asio::io_context ctx;
  int calls = 0;
  int answer = 0;

  // [awaitable-op]
  auto fetch = [&]() -> asio::awaitable<int> {
    if (++calls <= 2) throw backend_busy("busy, call " + std::to_string(calls));
    co_return 42;
  };
  // [awaitable-op]

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // The policy is named before the co_await (a class, so even a temporary would be safe).
        const auto policy =
            stamina::retry_policy(stamina::on_exception<backend_busy>()).wait_initial(10ms).wait_jitter(10ms);
        answer = co_await stamina::async_retry(ctx, policy, fetch);
        std::cout << "answer " << answer << " after " << calls << " calls\n";
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  return answer == 42 && calls == 3 ? 0 : 1;
}
