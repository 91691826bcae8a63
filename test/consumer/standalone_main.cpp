// A program on standalone Asio, without Boost: co_await stamina::async_retry.
#include <stamina/async_retry.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <iostream>
#include <stdexcept>
#include <system_error>

int main() {
  using namespace std::chrono_literals;
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  asio::io_context ctx;
  int calls = 0;
  int value = 0;
  auto flaky = [&]() -> asio::awaitable<int> {
    if (++calls < 3) throw std::system_error(make_error_code(std::errc::resource_unavailable_try_again));
    co_return 42;
  };
  auto policy = stamina::retry_policy(stamina::on_error(std::errc::resource_unavailable_try_again))
                    .wait_initial(1ms)
                    .wait_jitter(0s);
  asio::co_spawn(
      ctx, [&]() -> asio::awaitable<void> { value = co_await stamina::async_retry(ctx, policy, flaky); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  std::cout << "standalone consumer: " << value << " after " << calls << " attempts\n";
  return value == 42 && calls == 3 ? 0 : 1;
}
