// Built by ctest only: each misuse must fail to compile with a one-line reason; the control
// (a correct call) must compile, so the failures cannot come from anything else.
#include <stamina/async_retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace asio = boost::asio;

struct no_default {
  explicit no_default(int) {}
};

int main() {
  asio::io_context ctx;
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused));
#if defined(STAMINA_WRONG_OP)
  stamina::async_retry(
      ctx, policy, [](int) { return 1; }, [](boost::system::error_code) {});
#elif defined(STAMINA_NO_DEFAULT_VALUE)
  auto op = [&](auto token) {
    return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), no_default(1)));
  };
  stamina::async_retry(ctx, policy, op, [](boost::system::error_code, no_default) {});
#else
  auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
  stamina::async_retry(ctx, policy, op, [](boost::system::error_code) {});
#endif
  ctx.run();
}
