#ifndef STAMINA_TEST_COMMON_HEDGE_SUPPORT_HPP
#define STAMINA_TEST_COMMON_HEDGE_SUPPORT_HPP

// Attempts with planned latencies and results on virtual time, in both op forms, for the
// async_hedge tests. Each attempt waits on a virtual timer, which honours per-operation
// cancellation as any Asio operation does, and reports whether it finished or was cancelled.

#include <common/async_helpers.hpp>
#include <common/mock_clock.hpp>
#include <stamina/async_hedge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <vector>

namespace test {

// async_hedge on virtual time.
template <class Ex, class Op, class Token>
auto async_hedge_virtual(Ex&& ex, stamina::hedging_policy policy, Op op, Token&& token) {
  return stamina::detail::async_hedge_with_clock<mock_clock>(std::forward<Ex>(ex), std::move(policy), std::move(op),
                                                             std::forward<Token>(token));
}

// The policy the hedge tests start from: hedge a refused connection after 10 ms, named "backend".
inline stamina::hedging_policy base_policy() {
  using namespace std::chrono_literals;
  return stamina::hedging_policy(stamina::on_error(boost::asio::error::connection_refused)).delay(10ms).name("backend");
}

struct planned_attempt {
  std::chrono::milliseconds latency;
  boost::system::error_code result;  // after the latency; success when empty
};

struct attempt_log {
  int started = 0;
  int finished = 0;                 // ran to the end of its latency
  int cancelled = 0;                // stopped by cancellation
  std::vector<double> start_times;  // virtual seconds
};

// op(token): completes with (result, attempt number), or (operation_aborted, n) when cancelled.
struct planned_token_op {
  boost::asio::io_context* ctx;
  std::vector<planned_attempt> plan;
  std::shared_ptr<attempt_log> log = std::make_shared<attempt_log>();

  template <class Token>
  auto operator()(Token&& token) const {
    const int n = ++log->started;
    log->start_times.push_back(mock_clock::seconds());
    const planned_attempt p = plan.at(static_cast<std::size_t>(n - 1));
    auto timer = std::make_shared<virtual_timer>(*ctx, p.latency);
    return boost::asio::async_compose<Token, void(boost::system::error_code, int)>(
        [timer, p, n, log = log, started = false](auto& self, boost::system::error_code ec = {}) mutable {
          if (!started) {
            started = true;
            // Every kind of cancellation stops the wait (partial too).
            self.reset_cancellation_state(boost::asio::enable_total_cancellation());
            timer->async_wait(std::move(self));
            return;
          }
          ++(ec ? log->cancelled : log->finished);
          self.complete(ec ? ec : p.result, n);
        },
        token, *ctx);
  }
};

// op() returning awaitable<int>: failures are system_error exceptions.
struct planned_awaitable_op {
  boost::asio::io_context* ctx;
  std::vector<planned_attempt> plan;
  std::shared_ptr<attempt_log> log = std::make_shared<attempt_log>();

  boost::asio::awaitable<int> operator()() const {
    const int n = ++log->started;
    log->start_times.push_back(mock_clock::seconds());
    const planned_attempt p = plan.at(static_cast<std::size_t>(n - 1));
    virtual_timer timer(*ctx, p.latency);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    ++(ec ? log->cancelled : log->finished);
    if (ec) throw boost::system::system_error(ec);
    if (p.result) throw boost::system::system_error(p.result);
    co_return n;
  }
};

struct seen_attempt {
  unsigned num;
  double remaining;  // -1: none
};

// The planned token op in the form that takes the attempt's context, which it records; `nest`
// makes a stamina call within each attempt (a policy given the context).
struct context_token_op {
  planned_token_op planned;
  std::shared_ptr<std::vector<seen_attempt>> seen = std::make_shared<std::vector<seen_attempt>>();
  bool nest = false;
  // Each attempt reads the previous attempt's context again (valid while that attempt is still
  // in flight, as in a hedge started by the delay): a context shared by the attempts would
  // show this attempt's number instead.
  bool reread_previous = false;
  std::shared_ptr<std::vector<const stamina::attempt_context*>> contexts =
      std::make_shared<std::vector<const stamina::attempt_context*>>();
  std::shared_ptr<int> stale = std::make_shared<int>(0);

  template <class Token>
  auto operator()(const stamina::attempt_context& ctx, Token&& token) const {
    if (reread_previous && !contexts->empty() && contexts->back()->attempt() != contexts->size()) ++*stale;
    contexts->push_back(&ctx);
    seen->push_back({ctx.attempt(), ctx.remaining() ? ctx.remaining()->count() : -1.0});
    if (nest) {
      const stamina::hedging_policy inner = base_policy().within(ctx);
      (void)inner;
    }
    return planned(std::forward<Token>(token));
  }
};

}  // namespace test

#endif
