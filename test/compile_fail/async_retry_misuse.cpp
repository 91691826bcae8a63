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
#if defined(STAMINA_FALLBACK_WRONG_TYPE) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_FALLBACK_WRONG_TYPE"
  {
    // The call's success value is an int: a string cannot stand in for it.
    auto op = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), 1));
    };
    stamina::async_retry(ctx, policy, op, stamina::fallback([] { return std::string("cached"); }),
                         [](boost::system::error_code, int) {});
  }
#endif
#if defined(STAMINA_TEMPORARY_FALLBACK) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_TEMPORARY_FALLBACK"
  {
    auto op = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), 1));
    };
    const std::string cached = "cached";
    (void)stamina::async_retry(ctx, policy, op,
                               stamina::fallback([cached] { return static_cast<int>(cached.size()); }));
  }
#endif
#if !defined(STAMINA_ALL_MISUSES)
  {  // the control: the correct forms
    auto valued = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), 1));
    };
    const std::string cached = "cached";
    const stamina::fallback named_fallback([cached] { return static_cast<int>(cached.size()); });
    (void)stamina::async_retry(ctx, policy, valued, named_fallback);
    stamina::async_retry(ctx, policy, valued, stamina::fallback([cached] { return 2; }),
                         [](boost::system::error_code, int) {});
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
