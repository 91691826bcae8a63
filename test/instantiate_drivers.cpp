// Instantiates every driver of the retry protocol once, for clang-tidy (scripts/tidy.sh): the
// blocking loop, the caller coroutine with both op forms and an attempt limit, and the composed
// operation with both op forms; each kind once more with a fallback; the forms taking the
// attempt's context (blocking, composed, caller coroutine) with an inherited deadline. Compiled in every build so that
// it stays valid; never run.

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

void instantiate_drivers(asio::io_context& ctx) {
  const auto policy =
      stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).attempt_timeout(1s).timeout(5s);
  auto token_op = [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code(), 1)); };
  auto awaitable_op = []() -> asio::awaitable<int> { co_return 1; };

  (void)stamina::retry(stamina::retry_policy(stamina::on_exception<std::runtime_error>()), [] { return 1; });
  (void)stamina::retry(policy, [] { return error_code(); });
  const stamina::fallback substitute([](const stamina::give_up_info&) { return 0; });
  (void)stamina::retry(
      stamina::retry_policy(stamina::on_exception<std::runtime_error>()), [] { return 1; }, substitute);

  stamina::async_retry(ctx, policy, token_op, [](error_code, int) {});
  stamina::async_retry(ctx, policy, awaitable_op, [](const std::exception_ptr&, int) {});
  const auto within_deadline = stamina::retry_policy(policy).deadline(std::chrono::steady_clock::now() + 1s);
  auto context_token_op = [&ctx](const stamina::attempt_context& attempt, auto token) {
    return asio::post(ctx, asio::append(std::move(token), error_code(), static_cast<int>(attempt.attempt())));
  };
  auto context_awaitable_op = [](const stamina::attempt_context& attempt) -> asio::awaitable<int> {
    co_return static_cast<int>(attempt.attempt());
  };
  (void)stamina::retry(within_deadline, [](const stamina::attempt_context& attempt) {
    return attempt.remaining() ? error_code() : error_code(asio::error::timed_out);
  });
  stamina::async_retry(ctx, within_deadline, context_token_op, [](error_code, int) {});
  const auto hedging =
      stamina::hedging_policy(stamina::on_error(asio::error::connection_refused)).max_attempts(3).timeout(5s);
  stamina::async_hedge(ctx, hedging, token_op, [](error_code, int) {});
  stamina::async_retry(ctx, policy, token_op, substitute, [](error_code, int) {});
  stamina::async_hedge(ctx, hedging, token_op, substitute, [](error_code, int) {});
  stamina::async_hedge(ctx, hedging, awaitable_op, [](const std::exception_ptr&, int) {});
  const auto hedging_within = stamina::hedging_policy(hedging).deadline(std::chrono::steady_clock::now() + 1s);
  stamina::async_hedge(ctx, hedging_within, context_token_op, [](error_code, int) {});
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        (void)co_await stamina::async_retry(ctx, policy, token_op);
        (void)co_await stamina::async_retry(ctx, policy, awaitable_op);
        (void)co_await stamina::async_retry(ctx, policy, awaitable_op, substitute);
        (void)co_await stamina::async_retry(ctx, within_deadline, context_awaitable_op);
        (void)co_await stamina::async_hedge(ctx, hedging, token_op);
        (void)co_await stamina::async_hedge(ctx, hedging, awaitable_op);
        (void)co_await stamina::async_hedge(ctx, hedging_within, context_awaitable_op);
      },
      [](const std::exception_ptr&) {});
}
