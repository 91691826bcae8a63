// Per-operation cancellation of async_retry: terminal and partial, during waits and attempts.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/consign.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <initializer_list>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using asio::cancellation_type;
using boost::system::error_code;

namespace {

using test::virtual_timer;

const error_code refused = asio::error::connection_refused;

stamina::retry_policy refused_policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused, asio::error::operation_aborted))
      .wait_jitter(0s)
      .wait_initial(10s)
      .timeout(std::nullopt);
}

// Attempt n: waits `attempt_time` of virtual time, then completes with result(n). A
// cancelled wait completes with operation_aborted (as any Asio operation would).
struct timed_op {
  std::shared_ptr<virtual_timer> timer;
  std::function<error_code(int)> result;
  std::chrono::nanoseconds attempt_time;
  std::shared_ptr<int> calls = std::make_shared<int>(0);

  template <class Token>
  auto operator()(Token&& token) const {
    const int n = ++*calls;
    timer->expires_after(attempt_time);
    auto r = result;
    return asio::async_compose<Token, void(error_code, int)>(
        [this_timer = timer.get(), r, n, started = false](auto& self, error_code ec = {}) mutable {
          if (!started) {
            started = true;
            self.reset_cancellation_state(asio::enable_total_cancellation());
            this_timer->async_wait(std::move(self));
            return;
          }
          self.complete(ec ? ec : r(n), n);
        },
        token, *timer);
  }
};

struct fixture {
  asio::io_context ctx;
  asio::cancellation_signal signal;
  std::shared_ptr<test::completion_record> rec = std::make_shared<test::completion_record>();
  error_code got;
  int value = -1;

  timed_op make_op(std::function<error_code(int)> result, std::chrono::nanoseconds attempt_time = 1s) {
    return timed_op{std::make_shared<virtual_timer>(ctx), std::move(result), attempt_time};
  }

  template <class Op>
  void start(const stamina::retry_policy& policy, Op& op) {
    test::async_retry_virtual(ctx, policy, op,
                              asio::bind_cancellation_slot(signal.slot(), test::once(rec, [this](error_code ec, int v) {
                                                             got = ec;
                                                             value = v;
                                                           })));
  }

  // Advances virtual time to `t` seconds after `origin`, running what becomes ready.
  void run_until(double origin, double t) {
    while (test::mock_clock::seconds() - origin < t) {
      ctx.restart();
      if (ctx.poll() == 0) test::mock_clock::advance(1ms);
    }
    ctx.restart();
    ctx.poll();
  }
  void finish() {
    test::run_virtual(ctx, [&] { return rec->calls > 0; });
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(async_cancellation)

BOOST_AUTO_TEST_CASE(none_completes_normally) {
  fixture f;
  auto op = f.make_op([](int n) { return n < 3 ? refused : error_code(); });
  f.start(refused_policy(), op);
  f.finish();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST(!f.got);
  BOOST_TEST(f.value == 3);
}

BOOST_AUTO_TEST_CASE(terminal_during_wait_aborts_the_wait) {
  test::hook_recorder hooks;
  fixture f;
  auto op = f.make_op([](int) { return refused; });
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy(), op);
  f.run_until(t0, 3);  // attempt 1 fails at 1 s; the 10 s wait has begun
  BOOST_TEST(*op.calls == 1);
  f.signal.emit(cancellation_type::terminal);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST((f.got == asio::error::operation_aborted));
  BOOST_TEST(f.value == 0);  // value-initialised
  BOOST_TEST(*op.calls == 1);
  BOOST_TEST(test::mock_clock::seconds() - t0 < 4.0);
  BOOST_TEST((hooks.give_ups().at(0).reason == stamina::give_up_reason::cancelled));
}

BOOST_AUTO_TEST_CASE(partial_during_wait_aborts_the_wait) {
  fixture f;
  auto op = f.make_op([](int) { return refused; });
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy(), op);
  f.run_until(t0, 3);
  f.signal.emit(cancellation_type::partial);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST((f.got == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(total_is_not_supported_and_is_ignored) {
  fixture f;
  auto op = f.make_op([](int n) { return n < 2 ? refused : error_code(); });
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy(), op);
  f.run_until(t0, 3);  // waiting
  f.signal.emit(cancellation_type::total);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 0);  // still waiting
  f.finish();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST(!f.got);
  BOOST_TEST(f.value == 2);
}

BOOST_AUTO_TEST_CASE(terminal_during_attempt_is_forwarded_and_not_retried) {
  fixture f;
  auto op = f.make_op([](int) { return refused; }, 5s);
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy(), op);
  f.run_until(t0, 2);  // attempt 1 in progress
  f.signal.emit(cancellation_type::terminal);
  f.ctx.restart();
  f.ctx.poll();
  // operation_aborted is retryable per `on`, but a cancelled attempt is never retried.
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST((f.got == asio::error::operation_aborted));
  BOOST_TEST(f.value == 1);  // the attempt's own arguments
  BOOST_TEST(*op.calls == 1);
}

BOOST_AUTO_TEST_CASE(partial_during_attempt_is_forwarded) {
  fixture f;
  auto op = f.make_op([](int) { return refused; }, 5s);
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy(), op);
  f.run_until(t0, 2);
  f.signal.emit(cancellation_type::partial);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST((f.got == asio::error::operation_aborted));
  BOOST_TEST(*op.calls == 1);
}

BOOST_AUTO_TEST_CASE(terminal_during_attempt_with_attempt_timeout) {
  fixture f;
  auto op = f.make_op([](int) { return refused; }, 5s);
  const double t0 = test::mock_clock::seconds();
  f.start(refused_policy().attempt_timeout(3s), op);
  f.run_until(t0, 1);
  f.signal.emit(cancellation_type::terminal);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST((f.got == asio::error::operation_aborted));
  BOOST_TEST(*op.calls == 1);
}

BOOST_AUTO_TEST_CASE(success_racing_cancellation_is_delivered) {
  fixture f;
  // The attempt completes (successfully) at 1 s; the cancellation is emitted after the
  // attempt's handler was queued but before it ran.
  auto op = f.make_op([](int) { return error_code(); });
  f.start(refused_policy(), op);
  test::mock_clock::advance(1s);
  f.ctx.restart();
  f.ctx.run_one();  // the timer's completion is now queued as the composed op's next step
  f.signal.emit(cancellation_type::terminal);
  f.finish();
  BOOST_TEST(f.rec->calls == 1);
  BOOST_TEST(!f.got);
  BOOST_TEST(f.value == 1);
}

BOOST_AUTO_TEST_CASE(after_success_and_emitted_twice_are_harmless) {
  fixture f;
  auto op = f.make_op([](int) { return error_code(); });
  f.start(refused_policy(), op);
  f.finish();
  BOOST_TEST(f.rec->calls == 1);
  f.signal.emit(cancellation_type::terminal);  // nothing is attached any more
  f.signal.emit(cancellation_type::terminal);
  f.ctx.restart();
  f.ctx.poll();
  BOOST_TEST(f.rec->calls == 1);

  fixture g;
  auto op2 = g.make_op([](int) { return refused; });
  const double t0 = test::mock_clock::seconds();
  g.start(refused_policy(), op2);
  g.run_until(t0, 3);
  g.signal.emit(cancellation_type::terminal);
  g.signal.emit(cancellation_type::terminal);  // twice before the handler runs
  g.ctx.restart();
  g.ctx.poll();
  g.signal.emit(cancellation_type::terminal);  // and once after
  g.ctx.restart();
  g.ctx.poll();
  BOOST_TEST(g.rec->calls == 1);
  BOOST_TEST((g.got == asio::error::operation_aborted));
}

// A use_awaitable call whose op always fails, cancelled through the caller's slot with `emits`
// (in that order, before the call resumes) while it waits: it ends once, with operation_aborted,
// after its one attempt.
void cancel_a_waiting_coroutine_call(std::initializer_list<cancellation_type> emits) {
  asio::io_context ctx;
  asio::cancellation_signal signal;
  auto calls = std::make_shared<int>(0);
  auto op = [calls]() -> asio::awaitable<int> {
    ++*calls;
    throw test::transient_error("x");
    co_return 0;
  };
  error_code got;
  auto rec = std::make_shared<test::completion_record>();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await test::async_retry_virtual(ctx, test::retry_transient().wait_initial(10s), op, asio::use_awaitable);
        } catch (const boost::system::system_error& e) {
          got = e.code();
        }
      },
      asio::bind_cancellation_slot(signal.slot(), test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); })));
  ctx.poll();
  test::mock_clock::advance(1s);
  ctx.poll();
  BOOST_TEST(*calls == 1);
  for (const cancellation_type type : emits) signal.emit(type);
  ctx.restart();
  ctx.poll();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST((got == asio::error::operation_aborted));
  BOOST_TEST(*calls == 1);
}

BOOST_AUTO_TEST_CASE(coroutine_cancelled_during_wait) {
  // use_awaitable: the loop runs in the caller's coroutine and obeys its cancellation state.
  cancel_a_waiting_coroutine_call({cancellation_type::terminal});
}

// A coroutine's cancellation state records the last emit it accepted, and an emit its filter
// refuses clears it (Asio assigns, it does not add): terminal then partial, before the call
// resumes, leaves the state uncancelled while the wait has already ended with operation_aborted.
// The call ends there, as cancelled, rather than sending an attempt its wait never waited for.
BOOST_AUTO_TEST_CASE(a_wait_cut_by_an_emit_its_state_then_forgot_ends_the_call) {
  // The wait is cut by terminal; partial is refused by the default filter: the state says none.
  cancel_a_waiting_coroutine_call({cancellation_type::terminal, cancellation_type::partial});
}

// Starts a call of `op` under `policy` on the use_awaitable driver (`coroutine`) or the callback
// one, cancellable through `signal`; its error into `got`, its completions counted by `rec`.
template <class Op>
void start_cancellable(bool coroutine, asio::io_context& ctx, const stamina::retry_policy& policy, Op& op,
                       asio::cancellation_signal& signal, error_code& got,
                       const std::shared_ptr<test::completion_record>& rec) {
  if (coroutine) {
    asio::co_spawn(
        ctx,
        [&ctx, &policy, &op, &got]() -> asio::awaitable<void> {
          try {
            co_await test::async_retry_virtual(ctx, policy, op, asio::use_awaitable);
          } catch (const boost::system::system_error& e) {
            got = e.code();
          }
        },
        asio::bind_cancellation_slot(signal.slot(), test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); })));
  } else {
    test::async_retry_virtual(
        ctx, policy, op,
        asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&got](error_code ec) { got = ec; })));
  }
}

// An op may read the cancellation slot from its token when it starts, not from the handler
// (Boost.MySQL's connection pool and asio-grpc do): the attempt's token carries the caller's slot,
// with or without an attempt time limit (which binds its own), on both drivers. Without one, an
// unbound token would still let the cancellation below arrive (the handler takes the slot when
// the operation starts); only `connected` tells.
BOOST_AUTO_TEST_CASE(an_attempts_token_carries_the_callers_slot) {
  for (const bool coroutine : {true, false})
    for (const bool limited : {false, true}) {
      BOOST_TEST_CONTEXT((coroutine ? "use_awaitable" : "callback") << ", attempt_timeout " << limited) {
        asio::io_context ctx;
        asio::cancellation_signal signal;
        virtual_timer timer(ctx);
        std::vector<bool> connected;
        auto op = [&](auto token) {
          connected.push_back(asio::get_associated_cancellation_slot(token).is_connected());
          timer.expires_after(5s);
          return timer.async_wait(std::move(token));
        };
        stamina::retry_policy policy = refused_policy();
        if (limited) policy.attempt_timeout(30s);
        error_code got;
        auto rec = std::make_shared<test::completion_record>();
        start_cancellable(coroutine, ctx, policy, op, signal, got, rec);
        ctx.poll();
        test::mock_clock::advance(1s);
        ctx.poll();
        BOOST_TEST(connected == std::vector<bool>{true});
        signal.emit(cancellation_type::terminal);
        ctx.restart();
        ctx.poll();
        BOOST_TEST(rec->calls == 1);
        BOOST_TEST((got == asio::error::operation_aborted));
        BOOST_TEST(connected.size() == 1u);
      }
    }
}

// An op may hand its token to Asio's adaptors before it starts an operation with it: the
// operation still gets the attempt's slot, on both drivers. With an attempt time limit, the
// limit cuts the first attempt through the adaptor (2 s of its 5 s) and the second one starts;
// then, with or without one, the caller's cancellation reaches the attempt in flight, which is
// not retried.
template <int Adaptor, class Token>
auto wait_through_adaptor(virtual_timer& timer, asio::strand<asio::io_context::executor_type>& strand, Token token) {
  timer.expires_after(5s);
  if constexpr (Adaptor == 0) {
    return timer.async_wait(asio::bind_executor(strand, std::move(token)));
  } else if constexpr (Adaptor == 1) {
    return timer.async_wait(asio::consign(std::move(token), std::make_shared<int>(1)));
  } else {
    return asio::async_compose<Token, void(error_code)>(
        [&timer, started = false](auto& self, error_code ec = {}) mutable {
          if (!started) {
            started = true;
            timer.async_wait(std::move(self));
            return;
          }
          self.complete(ec);
        },
        token, timer);
  }
}

template <int Adaptor>
void check_adaptor(const char* name) {
  for (const bool coroutine : {true, false})
    for (const bool limited : {false, true}) {
      BOOST_TEST_CONTEXT(name << ", " << (coroutine ? "use_awaitable" : "callback") << ", attempt_timeout "
                              << limited) {
        asio::io_context ctx;
        auto strand = asio::make_strand(ctx.get_executor());
        asio::cancellation_signal signal;
        virtual_timer timer(ctx);
        int attempts = 0;
        auto op = [&](auto token) {
          ++attempts;
          return wait_through_adaptor<Adaptor>(timer, strand, std::move(token));
        };
        stamina::retry_policy policy = refused_policy();
        if (limited) policy.attempt_timeout(2s);
        error_code got;
        auto rec = std::make_shared<test::completion_record>();
        start_cancellable(coroutine, ctx, policy, op, signal, got, rec);
        const auto step = [&ctx](std::chrono::seconds by) {
          test::mock_clock::advance(by);
          ctx.restart();
          ctx.poll();
        };
        ctx.poll();
        step(1s);
        const int sent = limited ? 2 : 1;
        if (limited) {
          step(2s);   // past the 2 s limit: the first attempt is cut, a 10 s wait follows
          step(10s);  // the second attempt starts
        }
        BOOST_TEST(attempts == sent);
        BOOST_TEST(rec->calls == 0);
        signal.emit(cancellation_type::terminal);
        ctx.restart();
        ctx.poll();
        BOOST_TEST(rec->calls == 1);
        BOOST_TEST((got == asio::error::operation_aborted));
        BOOST_TEST(attempts == sent);
      }
    }
}

BOOST_AUTO_TEST_CASE(an_attempts_token_goes_through_asio_adaptors) {
  check_adaptor<0>("bind_executor");
  check_adaptor<1>("consign");
  check_adaptor<2>("async_compose");
}

// An op that takes its cancellation from its token's slot, not its handler's (its operation
// started with no slot, as a pool hands its waiter an unbound handler), is cut by the time limit
// too: on both drivers, the slot the token shows is the one the limit emits into.
BOOST_AUTO_TEST_CASE(an_op_cancelled_through_its_tokens_slot_is_cut_by_the_time_limit) {
  for (const bool coroutine : {true, false}) {
    BOOST_TEST_CONTEXT((coroutine ? "use_awaitable" : "callback")) {
      asio::io_context ctx;
      asio::cancellation_signal signal;
      virtual_timer timer(ctx);
      int attempts = 0;
      std::vector<cancellation_type> cut;
      auto op = [&](auto token) {
        ++attempts;
        return asio::async_initiate<decltype(token), void(error_code)>(
            [&](auto handler, asio::cancellation_slot slot) {
              if (slot.is_connected())
                slot.assign([&](cancellation_type type) {
                  cut.push_back(type);
                  timer.cancel();
                });
              timer.expires_after(5s);
              // The handler is wrapped: the timer sees no slot on it.
              auto ex = asio::get_associated_executor(handler, timer.get_executor());
              timer.async_wait(
                  asio::bind_executor(ex, [h = std::move(handler)](error_code ec) mutable { std::move(h)(ec); }));
            },
            token, asio::get_associated_cancellation_slot(token));
      };
      const auto policy = refused_policy().attempt_timeout(2s).attempts(1);
      error_code got;
      auto rec = std::make_shared<test::completion_record>();
      start_cancellable(coroutine, ctx, policy, op, signal, got, rec);
      ctx.poll();
      for (int s = 0; s < 3 && rec->calls == 0; ++s) {
        test::mock_clock::advance(1s);
        ctx.restart();
        ctx.poll();
      }
      BOOST_TEST(attempts == 1);
      BOOST_TEST(cut == std::vector<cancellation_type>{cancellation_type::terminal});
      BOOST_TEST(rec->calls == 1);  // at 2 s, not at the attempt's 5 s
      BOOST_TEST((got == stamina::error::attempt_timeout));
    }
  }
}

// An attempt the use_awaitable driver runs in a coroutine of its own (under a time limit; an
// awaitable op on another executor) gets what the caller's filter lets through, as an attempt
// awaited in the caller's own chain does: here partial, which a co_spawned coroutine would drop
// by default. So does every awaitable attempt of the composed driver, which passes partial on.
BOOST_AUTO_TEST_CASE(a_spawned_attempt_gets_the_cancellation_its_caller_accepts) {
  enum class form { token_limited, awaitable_limited, awaitable_elsewhere, awaitable_callback };
  for (const form f :
       {form::token_limited, form::awaitable_limited, form::awaitable_elsewhere, form::awaitable_callback}) {
    BOOST_TEST_CONTEXT("form " << static_cast<int>(f)) {
      asio::io_context ctx;
      asio::cancellation_signal signal;
      int attempts = 0;
      error_code got;
      auto rec = std::make_shared<test::completion_record>();
      const auto policy = refused_policy().attempt_timeout(
          f == form::awaitable_elsewhere ? std::nullopt : std::optional<stamina::duration>(3s));
      auto awaitable_op = [&ctx, &attempts]() -> asio::awaitable<int> {
        ++attempts;
        virtual_timer t(ctx);
        t.expires_after(5s);
        co_await t.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
        co_return 1;
      };
      auto token_op = [&ctx, &attempts](auto token) {
        ++attempts;
        auto t = std::make_shared<virtual_timer>(ctx);
        t->expires_after(5s);
        return t->async_wait(asio::consign(std::move(token), t));
      };
      const auto strand = asio::make_strand(ctx);  // another executor: the attempt is co_spawned onto it
      if (f == form::awaitable_callback)           // the composed driver spawns every awaitable attempt
        test::async_retry_virtual(
            ctx, policy, awaitable_op,
            asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](std::exception_ptr e, int) {
                                           try {
                                             if (e) std::rethrow_exception(e);
                                           } catch (const boost::system::system_error& failure) {
                                             got = failure.code();
                                           }
                                         })));
      else
        asio::co_spawn(
            ctx,
            [&]() -> asio::awaitable<void> {
              co_await asio::this_coro::reset_cancellation_state(asio::enable_partial_cancellation());
              try {
                if (f == form::token_limited)
                  co_await test::async_retry_virtual(ctx, policy, token_op, asio::use_awaitable);
                else if (f == form::awaitable_limited)
                  co_await test::async_retry_virtual(ctx, policy, awaitable_op, asio::use_awaitable);
                else
                  co_await test::async_retry_virtual(strand, policy, awaitable_op, asio::use_awaitable);
              } catch (const boost::system::system_error& e) {
                got = e.code();
              }
            },
            asio::bind_cancellation_slot(signal.slot(), test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); })));
      ctx.poll();
      test::mock_clock::advance(1s);
      ctx.restart();
      ctx.poll();
      BOOST_TEST(attempts == 1);
      signal.emit(cancellation_type::partial);
      ctx.restart();
      ctx.poll();
      // Cut at once, never retried, and not by the 3 s limit.
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST((got == asio::error::operation_aborted));
      BOOST_TEST(attempts == 1);
    }
  }
}

// An op that cancels its own call while it is being called (the caller's signal emitted from
// inside `op`): the call completes once, with what the attempt gave, and nothing escapes
// io_context::run() (Boost 1.81's co_spawn rethrows a cancellation out of run() when a cancelled
// coroutine ends without having left its first executor turn). Each attempt the driver runs in a
// coroutine of its own, and one awaited in the caller's chain as the control.
BOOST_AUTO_TEST_CASE(an_op_cancelling_its_own_call_while_called_loses_nothing) {
  enum class form { token_limited, token_limited_throws, token, awaitable_limited, awaitable_elsewhere };
  for (const bool coroutine : {true, false})
    for (const form f : {form::token_limited, form::token_limited_throws, form::token, form::awaitable_limited,
                         form::awaitable_elsewhere})
      for (const cancellation_type type : {cancellation_type::terminal, cancellation_type::partial}) {
        BOOST_TEST_CONTEXT((coroutine ? "use_awaitable" : "callback")
                           << ", form " << static_cast<int>(f) << ", " << static_cast<int>(type)) {
          asio::io_context ctx;
          asio::cancellation_signal signal;
          virtual_timer timer(ctx);
          int attempts = 0;
          auto token_op = [&](auto token) {
            if (++attempts == 1) signal.emit(type);
            if (f == form::token_limited_throws) throw std::runtime_error("after cancelling");
            timer.expires_after(5s);
            return timer.async_wait(std::move(token));
          };
          // Elsewhere, it ends its body after cancelling; under a limit, it awaits once more,
          // which throws in a cancelled coroutine.
          auto awaitable_op = [&]() -> asio::awaitable<int> {
            if (++attempts == 1) signal.emit(type);
            if (f == form::awaitable_limited) co_await asio::post(ctx, asio::use_awaitable);
            co_return 7;
          };
          const bool limited = f != form::token && f != form::awaitable_elsewhere;
          const auto policy =
              refused_policy().attempt_timeout(limited ? std::optional<stamina::duration>(3s) : std::nullopt);
          const auto strand = asio::make_strand(ctx);
          std::string outcome = "none";
          auto rec = std::make_shared<test::completion_record>();
          const auto record = [&outcome](const std::exception_ptr& e) {
            try {
              if (e) std::rethrow_exception(e);
              outcome = "success";
            } catch (const boost::system::system_error& failure) {
              outcome = failure.code().message();
            }
          };
          if (coroutine) {
            asio::co_spawn(
                ctx,
                [&]() -> asio::awaitable<void> {
                  co_await asio::post(ctx, asio::use_awaitable);  // not in co_spawn's first turn (see above)
                  co_await asio::this_coro::reset_cancellation_state(asio::enable_partial_cancellation());
                  std::exception_ptr e;
                  try {
                    if (f == form::awaitable_elsewhere)
                      co_await test::async_retry_virtual(strand, policy, awaitable_op, asio::use_awaitable);
                    else if (f == form::awaitable_limited)
                      co_await test::async_retry_virtual(ctx, policy, awaitable_op, asio::use_awaitable);
                    else
                      co_await test::async_retry_virtual(ctx, policy, token_op, asio::use_awaitable);
                  } catch (...) {
                    e = std::current_exception();
                  }
                  record(e);
                },
                asio::bind_cancellation_slot(signal.slot(),
                                             test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); })));
          } else {
            const auto awaitable_done = [&] {
              return asio::bind_cancellation_slot(signal.slot(),
                                                  test::once(rec, [&](std::exception_ptr e, int) { record(e); }));
            };
            if (f == form::awaitable_elsewhere)
              test::async_retry_virtual(strand, policy, awaitable_op, awaitable_done());
            else if (f == form::awaitable_limited)
              test::async_retry_virtual(ctx, policy, awaitable_op, awaitable_done());
            else
              test::async_retry_virtual(ctx, policy, token_op,
                                        asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](error_code ec) {
                                                                       outcome = ec ? ec.message() : "success";
                                                                     })));
          }
          BOOST_CHECK_NO_THROW(test::run_virtual(
              ctx, [&] { return rec->calls > 0; }, 1ms, 10s));
          BOOST_TEST(rec->calls == 1);
          BOOST_TEST(attempts == 1);  // cancelled: never retried
          // An awaitable op finished its body, or its next co_await threw. A token op threw; or, under either driver,
          // its operation started after the cancellation and never saw it (Asio's rule), and the attempt's own result
          // is delivered: cut by the 3 s limit, or the 5 s wait's success.
          std::string expected = error_code(asio::error::operation_aborted).message();
          if (f == form::awaitable_elsewhere)
            expected = "success";
          else if (f == form::token_limited_throws)
            expected = make_error_code(stamina::error::op_threw).message();
          else if (f != form::awaitable_limited)
            expected = limited ? make_error_code(stamina::error::attempt_timeout).message() : "success";
          BOOST_TEST(outcome == expected);
        }
      }
}

BOOST_AUTO_TEST_CASE(overall_deadline_with_or_operator) {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context ctx;
  auto calls = std::make_shared<int>(0);
  auto op = [calls]() -> asio::awaitable<int> {
    ++*calls;
    throw test::transient_error("x");
    co_return 0;
  };
  bool deadline_won = false;
  auto rec = std::make_shared<test::completion_record>();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        virtual_timer deadline(ctx);
        deadline.expires_after(5s);
        const auto policy = test::retry_transient().wait_initial(2s).wait_jitter(0s).timeout(std::nullopt);
        auto result = co_await (test::async_retry_virtual(ctx, policy, op, asio::use_awaitable) ||
                                deadline.async_wait(asio::use_awaitable));
        deadline_won = result.index() == 1;
      },
      test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); }));
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(deadline_won);
  BOOST_TEST(*calls == 2);  // attempts at 0 s and 2 s; the wait to 6 s is cut at 5 s
}

// What the docs say of `||`: it waits for the first *success*, so a retry that gives up at
// once (not retryable) still waits out the whole timer, which is then reported as the winner;
// the retry's failure is lost.
BOOST_AUTO_TEST_CASE(or_operator_waits_out_the_timer_when_the_retry_gives_up_early) {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context ctx;
  auto op = []() -> asio::awaitable<int> {
    throw test::fatal_error("not retryable");
    co_return 0;
  };
  double returned_after = -1;
  std::size_t winner = 0;
  auto rec = std::make_shared<test::completion_record>();
  const auto t0 = test::mock_clock::now();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        virtual_timer deadline(ctx);
        deadline.expires_after(30s);
        const auto result =
            co_await (test::async_retry_virtual(ctx, test::retry_transient(), op, asio::use_awaitable) ||
                      deadline.async_wait(asio::use_awaitable));
        winner = result.index();
        returned_after = std::chrono::duration<double>(test::mock_clock::now() - t0).count();
      },
      test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); }));
  test::run_virtual(
      ctx, [&] { return rec->calls > 0; }, 100ms);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(returned_after >= 30.0);  // the failure was known at 0 s
  BOOST_TEST(winner == 1u);            // and it is not reported at all
}

// The documented way to bound a call: a timer that emits terminal cancellation into its slot.
BOOST_AUTO_TEST_CASE(a_cancelling_timer_bounds_the_call_and_a_fatal_failure_is_immediate) {
  for (const bool fatal : {false, true}) {
    asio::io_context ctx;
    auto op = [fatal]() -> asio::awaitable<int> {
      if (fatal) throw test::fatal_error("not retryable");
      throw test::transient_error("again");
      co_return 0;
    };
    double ended_after = -1;
    std::exception_ptr error;
    auto rec = std::make_shared<test::completion_record>();
    const auto t0 = test::mock_clock::now();
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          asio::cancellation_signal cancel_call;
          virtual_timer deadline(ctx);
          deadline.expires_after(30s);
          deadline.async_wait([&cancel_call](error_code ec) {
            if (!ec) cancel_call.emit(cancellation_type::terminal);
          });
          // Waits of 0.7 s, no jitter: at 30 s the call is waiting (from 29.4 s to 30.1 s), never
          // starting an attempt in the same instant (then the attempt's own failure would be the
          // result, as a cancelled attempt's is).
          const auto policy = test::retry_transient()
                                  .attempts(std::nullopt)
                                  .timeout(std::nullopt)
                                  .wait_initial(0.7s)
                                  .wait_max(0.7s)
                                  .wait_jitter(0s);
          auto bounded = asio::bind_cancellation_slot(cancel_call.slot(), asio::as_tuple(asio::use_awaitable));
          auto [e, value] = co_await test::async_retry_virtual(ctx, policy, op, bounded);
          deadline.cancel();
          error = e;
          ended_after = std::chrono::duration<double>(test::mock_clock::now() - t0).count();
        },
        test::once(rec, [](std::exception_ptr e) { BOOST_TEST(!e); }));
    test::run_virtual(
        ctx, [&] { return rec->calls > 0; }, 100ms);
    BOOST_TEST_REQUIRE(rec->calls == 1);
    if (fatal) {
      BOOST_TEST(ended_after < 0.001);
      BOOST_CHECK_THROW(std::rethrow_exception(error), test::fatal_error);
    } else {
      BOOST_TEST(ended_after >= 30.0);
      BOOST_TEST(ended_after < 30.2);
      BOOST_CHECK_EXCEPTION(std::rethrow_exception(error), boost::system::system_error,
                            [](const auto& e) { return e.code() == asio::error::operation_aborted; });
    }
    ctx.restart();
    ctx.poll();
    BOOST_TEST(ctx.stopped());
  }
}

// A call destroyed during its attempt (the io_context destroyed) will never hear its answer:
// the breaker's probe place it held is freed at once, not after another open_for. Both the
// composed operation and the caller coroutine.
BOOST_AUTO_TEST_CASE(a_call_destroyed_during_its_attempt_frees_its_breaker_probe) {
  static double now = 0;
  for (const bool coroutine : {false, true}) {
    BOOST_TEST_CONTEXT((coroutine ? "use_awaitable" : "callback")) {
      auto breaker = std::make_shared<stamina::circuit_breaker>("teardown");
      breaker->clock(+[] { return now; }).minimum_calls(1).open_for(std::chrono::seconds(5)).probes(1);
      std::uint32_t ticket = 0;
      BOOST_REQUIRE(breaker->allow(&ticket));
      breaker->on_failure(ticket);  // open
      now += 10;                    // half-open at the next ask: one probe
      const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).breaker(breaker);
      auto rec = std::make_shared<test::completion_record>();
      rec->may_be_abandoned = true;
      {
        asio::io_context ctx;
        asio::steady_timer never(ctx, std::chrono::hours(1));
        auto hangs = [&never](auto token) { return never.async_wait(token); };
        if (coroutine) {
          asio::co_spawn(
              ctx,
              [&]() -> asio::awaitable<void> {
                co_await stamina::async_retry(ctx, policy, hangs, asio::use_awaitable);
              },
              test::once(rec, [](const std::exception_ptr&) {}));
        } else {
          stamina::async_retry(ctx, policy, hangs, test::once(rec, [](error_code) {}));
        }
        ctx.poll();  // the attempt starts: the probe is out
        BOOST_TEST(!breaker->allow());
      }  // destroyed mid-attempt
      BOOST_TEST(rec->calls == 0);
      BOOST_TEST(breaker->allow(&ticket));  // the place is free again
      breaker->on_success(ticket);
      BOOST_TEST((breaker->current() == stamina::circuit_breaker::state::closed));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
