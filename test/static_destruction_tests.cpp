// Retries made while the program exits: in the destructor of a static object constructed before
// the first stamina call, so destroyed after every static of the library. Each driver retries a
// failing call once there, with the default hooks (logging, metrics) and default throttling on;
// then a hedged call whose attempt makes a blocking call within its context (the layers), and a
// retried and a hedged call under one concurrency limit.
// A use of a destroyed registry is a use after free: ASan (the README's test command) fails the
// process, and a wrong result exits with status 1.

#define BOOST_TEST_MODULE stamina_static_destruction
#include <boost/test/unit_test.hpp>

#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

stamina::retry_policy policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
      .name("exit")
      .wait_initial(stamina::duration(0))
      .wait_jitter(stamina::duration(0));
}

void fail_unless(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "static destruction: %s\n", what);
  std::_Exit(1);
}

struct retries_at_exit {
  ~retries_at_exit() {
    int n = 0;
    const error_code sync = stamina::retry(policy(), [&] {
      return error_code(++n < 2 ? asio::error::connection_refused : asio::error::connection_reset);
    });
    fail_unless(sync == asio::error::connection_reset && n == 2, "the blocking retry");

    asio::io_context ctx;
    n = 0;
    error_code async;
    stamina::async_retry(
        ctx, policy(),
        [&](auto token) {
          return asio::post(ctx, asio::append(std::move(token), error_code(++n < 2 ? asio::error::connection_refused
                                                                                   : asio::error::connection_reset)));
        },
        [&](error_code ec) { async = ec; });
    ctx.run();
    fail_unless(async == asio::error::connection_reset && n == 2, "async_retry");

    n = 0;
    for (stamina::attempt& attempt : stamina::retry_context(policy()))
      if (++n < 2) attempt.failed(error_code(asio::error::connection_refused));
    fail_unless(n == 2, "retry_context");

    // The layers: a hedged call with an inherited deadline whose op takes the attempt's context
    // and makes a blocking retry within it (the inner call retries; the outer does not).
    n = 0;
    error_code layered;
    auto layer = [&](const stamina::attempt_context& outer, auto token) {
      const error_code inner = stamina::retry(policy().within(outer), [&] {
        return error_code(++n < 2 ? asio::error::connection_refused : asio::error::connection_reset);
      });
      return asio::post(ctx, asio::append(std::move(token), inner, 0));
    };
    const auto hedging = stamina::hedging_policy(stamina::on_error(asio::error::connection_reset))
                             .name("exit")
                             .deadline(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    ctx.restart();
    stamina::async_hedge(ctx, hedging, layer, [&](error_code ec, int) { layered = ec; });
    ctx.run();
    fail_unless(layered == asio::error::connection_reset && n == 2, "a layered hedge");

    // Under a concurrency limit: a retried call and a hedged call take and give back places.
    const auto limit = std::make_shared<stamina::concurrency_limit>("exit");
    n = 0;
    error_code limited;
    auto flaky = [&](auto token) {
      return asio::post(ctx, asio::append(std::move(token), error_code(++n < 2 ? asio::error::connection_refused
                                                                               : asio::error::connection_reset)));
    };
    const auto limited_policy = policy().limit(limit);
    ctx.restart();
    stamina::async_retry(ctx, limited_policy, flaky, [&](error_code ec) { limited = ec; });
    ctx.run();
    fail_unless(limited == asio::error::connection_reset && n == 2, "a limited async_retry");
    error_code hedged = asio::error::fault;
    auto answering = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code())); };
    const auto limited_hedging =
        stamina::hedging_policy(stamina::on_error(asio::error::connection_reset)).name("exit").limit(limit);
    ctx.restart();
    stamina::async_hedge(ctx, limited_hedging, answering, [&](error_code ec) { hedged = ec; });
    ctx.run();
    fail_unless(!hedged, "a limited hedge");
    fail_unless(limit->in_flight() == 0, "every place given back");

    // Attempts in coroutines of their own: under use_awaitable with an attempt time limit (a
    // token op, then an awaitable op), and an awaitable op on the callback driver.
    n = 0;
    int spawned = 0;
    const auto timed_policy = policy().attempt_timeout(std::chrono::seconds(30));
    auto failing_once = [&]() -> asio::awaitable<int> {
      if (++n % 2 == 1) throw boost::system::system_error(asio::error::connection_refused);
      co_return n;
    };
    ctx.restart();
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          try {
            co_await stamina::async_retry(ctx, timed_policy, flaky);
          } catch (const boost::system::system_error& e) {
            spawned += e.code() == asio::error::connection_reset ? 1 : 0;
          }
          spawned += co_await stamina::async_retry(ctx, timed_policy, failing_once) == 4 ? 1 : 0;
        },
        [&](std::exception_ptr e) { fail_unless(!e, "a co_await with an attempt time limit threw"); });
    ctx.run();
    ctx.restart();
    stamina::async_retry(ctx, policy(), failing_once,
                         [&](std::exception_ptr e, int value) { spawned += !e && value == 6 ? 1 : 0; });
    ctx.run();
    fail_unless(spawned == 3, "attempts in coroutines of their own");
    std::fprintf(stderr,
                 "static destruction: four drivers retried during exit, two of them under a limit, three in "
                 "attempts of their own\n");
  }
};
retries_at_exit at_exit;  // constructed before main, so before any static of the library

}  // namespace

// During main, a retry uses the library's statics (hooks, metrics, throttles), so that they are
// constructed after `at_exit`, and destroyed before it; the checks happen after main returns.
BOOST_AUTO_TEST_CASE(a_retry_during_main) {
  int n = 0;
  const error_code ec = stamina::retry(
      policy(), [&] { return error_code(++n < 2 ? asio::error::connection_refused : asio::error::connection_reset); });
  BOOST_TEST(ec == asio::error::connection_reset);
  BOOST_TEST(n == 2);
}
