#ifndef STAMINA_TEST_COMMON_ASYNC_SUPPORT_HPP
#define STAMINA_TEST_COMMON_ASYNC_SUPPORT_HPP

// Helpers shared by the async_retry test files.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/policies.hpp>
#include <stamina/async_retry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <string>

namespace asio = boost::asio;
using boost::system::error_code;

namespace async_support {

using namespace std::chrono_literals;

inline const error_code refused = asio::error::connection_refused;

inline stamina::retry_policy refused_policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
      .wait_jitter(0s)
      .timeout(std::nullopt);
}

// Fails with connection_refused until attempt `succeed_at`.
inline test::scripted_op refusing_until(asio::io_context& ctx, int succeed_at) {
  return test::scripted_op{&ctx, [succeed_at](int n) { return n < succeed_at ? refused : error_code(); }};
}

// An awaitable op that throws transient_error until attempt `succeed_at`, then returns 7 * n.
struct flaky_awaitable {
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  int succeed_at;
  asio::awaitable<int> operator()() const {
    const int n = ++*calls;
    if (n < succeed_at) throw test::transient_error("attempt " + std::to_string(n));
    co_return 7 * n;
  }
};

// Runs a coroutine to completion and rethrows what it threw (never `detached`).
template <class F>
void run_coroutine(asio::io_context& ctx, F f, bool virtual_time = false) {
  ctx.restart();
  auto rec = std::make_shared<test::completion_record>();
  std::exception_ptr failure;
  asio::co_spawn(ctx, std::move(f), test::once(rec, [&](const std::exception_ptr& e) { failure = e; }));
  if (virtual_time)
    test::run_virtual(ctx, [&] { return rec->calls > 0; });
  else
    ctx.run();
  BOOST_REQUIRE_EQUAL(rec->calls, 1);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace async_support

#endif
