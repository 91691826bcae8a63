// Built by ctest only: each misuse must fail to compile with its one-line reason; the control
// (the correct forms) must compile, so the failures cannot come from anything else.
#include <stamina/async_retry.hpp>
#include <stamina/backoff.hpp>
#include <stamina/retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <string>

namespace asio = boost::asio;

int main() {
  asio::io_context ctx;
  const auto on = stamina::on_error(asio::error::connection_refused);
  auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), boost::system::error_code())); };
#if defined(STAMINA_NUMBER_PREDICATE) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_NUMBER_PREDICATE"
  {
    // [number-predicate]
    // Python's `return 2.5` would silently mean "retry with the normal backoff": no longer compiles.
    const stamina::retry_on wrong([](const stamina::failure&) { return 2.5; });
    // [number-predicate]
    (void)wrong(stamina::failure(boost::system::error_code()));
  }
#endif
#if defined(STAMINA_NUMBER_RESULT_PREDICATE) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_NUMBER_RESULT_PREDICATE"
  {
    const auto policy = stamina::retry_policy(on).on_result([](int value) { return value; });
  }
#endif
#if defined(STAMINA_GENERIC_RESULT_PREDICATE) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_GENERIC_RESULT_PREDICATE"
  {
    const auto policy = stamina::retry_policy(on).on_result([](auto value) { return value == 0; });
  }
#endif
#if defined(STAMINA_DANGLING_BACKOFF) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_DANGLING_BACKOFF"
  {
    // [dangling-backoff]
    // The chained setter returns an rvalue, so the deleted constructor catches the temporary.
    const stamina::backoff b(stamina::retry_policy(on).attempts(3));
    // [dangling-backoff]
  }
#endif
#if defined(STAMINA_LAMBDA_AS_POLICY) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_LAMBDA_AS_POLICY"
  {
    (void)stamina::retry([](const stamina::failure&) { return true; }, [] { return 1; });
  }
#endif
#if defined(STAMINA_LAMBDA_AS_ASYNC_POLICY) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_LAMBDA_AS_ASYNC_POLICY"
  {
    stamina::async_retry(
        ctx, [](const stamina::failure&) { return true; }, op, [](boost::system::error_code) {});
  }
#endif
#if defined(STAMINA_RESULT_MISMATCH_SYNC) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_RESULT_MISMATCH_SYNC"
  {
    // The function returns an int; the predicate takes a string.
    (void)stamina::retry(stamina::retry_policy(on).on_result([](const std::string& body) { return body.empty(); }),
                         [] { return 1; });
  }
#endif
#if defined(STAMINA_RESULT_MISMATCH_ASYNC) || defined(STAMINA_ALL_MISUSES)
#line 1 "misuse_STAMINA_RESULT_MISMATCH_ASYNC"
  {
    // The operation completes with (error_code, int); the predicate takes a string.
    auto value_op = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), 1));
    };
    stamina::async_retry(ctx, stamina::retry_policy(on).on_result([](const std::string& body) { return body.empty(); }),
                         value_op, [](boost::system::error_code, int) {});
  }
#endif
#if !defined(STAMINA_ALL_MISUSES)
  {  // the control: the correct forms
    const stamina::retry_on right([](const stamina::failure&) { return std::chrono::seconds(2); });
    (void)right(stamina::failure(boost::system::error_code()));
    const auto policy = stamina::retry_policy(on).on_result([](int value) { return value == 0; });
    (void)stamina::retry(policy, [] { return 1; });  // the types match: checked at compile time
    auto value_op = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), boost::system::error_code(), 1));
    };
    stamina::async_retry(ctx, policy, value_op, [](boost::system::error_code, int) {});
    const stamina::retry_policy named = stamina::retry_policy(on).attempts(3);
    const stamina::backoff b(named);
    (void)stamina::retry(stamina::retry_on([](const stamina::failure&) { return true; }), [] { return 1; });
    stamina::async_retry(ctx, on, op, [](boost::system::error_code) {});
    ctx.run();
  }
#endif
}
