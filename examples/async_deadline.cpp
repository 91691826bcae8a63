// Bounding a whole retrying call: a timer that cancels it. async_retry honours terminal
// cancellation during waits (it completes with operation_aborted) and forwards it to a running
// attempt. Awaitable operators are not the tool here: `retry || timer` waits for the first
// *success*, so when the retry gives up early with an exception, `||` still waits out the timer.

#include <stamina/stamina.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
struct still_down : std::runtime_error {
  using std::runtime_error::runtime_error;
};

boost::system::error_code code_of(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return se.code();
  } catch (...) {
  }
  return {};
}
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
        const auto policy = stamina::retry_policy(stamina::on_exception<still_down>())
                                .attempts(std::nullopt)
                                .wait_initial(20ms)
                                .wait_jitter(10ms);
        const auto started = std::chrono::steady_clock::now();
        // [deadline]
        // At most 250 ms for the whole call, waits and attempts included.
        asio::cancellation_signal cancel_call;
        asio::steady_timer deadline(ctx, 250ms);
        deadline.async_wait([&cancel_call](boost::system::error_code ec) {
          if (!ec) cancel_call.emit(asio::cancellation_type::terminal);
        });
        auto bounded = asio::bind_cancellation_slot(cancel_call.slot(), asio::as_tuple(asio::use_awaitable));
        auto [error, value] = co_await stamina::async_retry(ctx, policy, always_down, bounded);
        deadline.cancel();  // the call ended first: the deadline's handler runs with operation_aborted
        deadline_hit = code_of(error) == asio::error::operation_aborted;
        // [deadline]
        const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::cout << (deadline_hit ? "deadline reached" : "retry finished") << " after " << calls << " attempts in "
                  << took << " s (value " << value << ")\n";
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  return deadline_hit && calls >= 2 ? 0 : 1;
}
