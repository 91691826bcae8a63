// Built by ctest only: each misuse must fail to compile with a one-line reason; the control
// (a correct call) must compile, so the failures cannot come from anything else.
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <string>

namespace asio = boost::asio;

struct no_default {
  explicit no_default(int) {}
};

int main() {
  asio::io_context ctx;
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused));
#if defined(STAMINA_WRONG_OP) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_WRONG_OP"
  {
    stamina::async_retry(
        ctx, policy, [](int) { return 1; }, [](boost::system::error_code) {});
  }
#endif
#if defined(STAMINA_NO_DEFAULT_VALUE) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_NO_DEFAULT_VALUE"
  {
    auto op = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), no_default(1)));
    };
    stamina::async_retry(ctx, policy, op, [](boost::system::error_code, no_default) {});
  }
#endif
#if defined(STAMINA_NO_EXECUTOR) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_NO_EXECUTOR"
  {
    auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
    (void)stamina::async_retry(policy, op);
  }
#endif
#if defined(STAMINA_HEDGE_NO_EXECUTOR) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_HEDGE_NO_EXECUTOR"
  {
    auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
    (void)stamina::async_hedge(stamina::hedging_policy(stamina::on_error(asio::error::connection_refused)), op);
  }
#endif
#if defined(STAMINA_NO_RETURN) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_NO_RETURN"
  {
    // The operation is started, but its result is not returned.
    auto op = [&](auto token) { asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
    stamina::async_retry(ctx, policy, op, [](boost::system::error_code) {});
  }
#endif
#if defined(STAMINA_TEMPORARY_OP) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_TEMPORARY_OP"
  {
    // What `co_await stamina::async_retry(ctx, policy, [&ctx, name] { ... })` would free twice.
    const std::string name = "backend";
    (void)stamina::async_retry(ctx, policy, [&ctx, name](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code()));
    });
  }
#endif
#if !defined(STAMINA_ALL_MISUSES)
  {  // the control: the correct forms
    auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
    stamina::async_retry(ctx, policy, op, [](boost::system::error_code) {});
    // Named first, the same op is fine for the use_awaitable form too.
    const std::string name = "backend";
    auto named = [&ctx, name](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code()));
    };
    (void)stamina::async_retry(ctx, policy, named);
    (void)stamina::async_hedge(ctx, stamina::hedging_policy(stamina::on_error(asio::error::connection_refused)), named);
  }
#endif
  ctx.run();
}
