// A new user's first retry: sync and async, from an installed or embedded stamina.
#include <stamina/stamina.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstring>
#include <iostream>

int main() {
  using namespace std::chrono_literals;
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  const auto policy =
      stamina::retry_policy(stamina::on_exception<std::runtime_error>()).wait_initial(1ms).wait_jitter(0s);

  int calls = 0;
  const int sync_value = stamina::retry(policy, [&] {
    if (++calls < 3) throw std::runtime_error("flaky");
    return 7;
  });

  boost::asio::io_context ctx;
  int async_calls = 0;
  auto op = [&]() -> boost::asio::awaitable<int> {
    if (++async_calls < 2) throw std::runtime_error("flaky");
    co_return 8;
  };
  auto future = stamina::async_retry(ctx, policy, op, boost::asio::use_future);
  ctx.run();
  const int async_value = future.get();

  std::cout << "stamina " << stamina::version() << ": sync " << sync_value << " after " << calls << " calls, async "
            << async_value << " after " << async_calls << " calls\n";
  const bool ok = sync_value == 7 && async_value == 8 && std::strcmp(stamina::version(), STAMINA_VERSION_STRING) == 0;
  return ok ? 0 : 1;
}
