// async_hedge and Asio's rules: cancellation, teardown, executors and threads, the global
// switches, composition with async_retry. (The scenario table is in async_hedge_tests.cpp; two
// translation units so that the suite compiles on both cores.)
#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hedge_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using test::planned_attempt;

BOOST_TEST_DONT_PRINT_LOG_VALUE(stamina::hedge_event_kind)
namespace {

const error_code refused = asio::error::connection_refused;
const error_code reset = asio::error::connection_reset;
const error_code aborted = asio::error::operation_aborted;
using test::base_policy;

}  // namespace

namespace {

// `calls` hedged calls at once on a pool of 4 threads, each attempt `waits` timer waits (real
// timers, no timing assertion; CI runs it under TSan): every call completes exactly once, with
// its own result. `executor_for(pool)` gives each call's executor (its attempts run there too).
// `WithContext`: the op takes the attempt's context, and makes a stamina call within it.
template <bool WithContext = false, class ExecutorFor>
void hedge_concurrently(ExecutorFor executor_for, int calls, std::chrono::microseconds delay, int waits) {
  asio::thread_pool pool(4);
  const stamina::hedging_policy policy = stamina::hedging_policy(stamina::on_error(asio::error::connection_refused))
                                             .delay(delay)
                                             .max_attempts(3)
                                             .budget(nullptr);
  std::atomic<int> completed{0};
  std::atomic<int> wrong{0};
  std::atomic<int> refusals{0};
  std::vector<std::shared_ptr<test::completion_record>> records;
  for (int i = 0; i < calls; ++i) {
    auto rec = std::make_shared<test::completion_record>();
    records.push_back(rec);
    auto ex = executor_for(pool);
    auto op = [ex, i, waits](auto token) {
      auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::microseconds(50 * (i % 7)));
      return asio::async_compose<decltype(token), void(error_code, int)>(
          [timer, i, waits, step = 0](auto& self, error_code ec = {}) mutable {
            if (step++ < waits && !ec) {  // several waits: a loser's cancellation may meet any
              if (step > 1) timer->expires_after(std::chrono::microseconds(20 * (i % 5)));
              timer->async_wait(std::move(self));
              return;
            }
            self.complete(ec, i);
          },
          token, ex);
    };
    // With the context, every third call's first attempt is refused at once after its nested
    // call (the flag written on a pool thread, read on the call's strand): no hedge follows it,
    // and the refusal is delivered unless a hedge the delay started first succeeds.
    const bool refused_first = WithContext && i % 3 == 0;
    auto handler = test::once(rec, [&, i, refused_first](error_code ec, int v) {
      const bool delivered_refusal = refused_first && ec == refused;
      if (delivered_refusal) ++refusals;
      if (!delivered_refusal && (ec || v != i)) ++wrong;
      ++completed;
    });
    if constexpr (WithContext) {
      auto context_op = [op, ex, i, refused_first, &wrong](const stamina::attempt_context& ctx, auto token) {
        if (ctx.attempt() == 0 || ctx.attempt() > 3) ++wrong;
        const stamina::retry_policy inner = stamina::retry_policy(stamina::on_error(refused)).within(ctx);
        (void)inner;
        if (refused_first && ctx.attempt() == 1) return asio::post(ex, asio::append(std::move(token), refused, i));
        return op(std::move(token));
      };
      stamina::async_hedge(ex, policy, context_op, std::move(handler));
    } else {
      stamina::async_hedge(ex, policy, op, std::move(handler));
    }
  }
  pool.join();
  BOOST_TEST(completed.load() == calls);
  BOOST_TEST(wrong.load() == 0);
  for (const auto& rec : records) BOOST_TEST(rec->calls == 1);
  BOOST_TEST(policy.stats().calls == static_cast<std::uint64_t>(calls));
  BOOST_TEST(policy.stats().hedges > 0U);  // some attempts outlast the delay: hedging was exercised
  // Without the nested rule the refusal would be hedged at once and every call would succeed.
  if constexpr (WithContext) BOOST_TEST(refusals.load() > 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hedge_asio_rules)

BOOST_AUTO_TEST_CASE(terminal_and_partial_cancellation_reach_every_attempt) {
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial}) {
    test::io_fixture io;
    asio::cancellation_signal signal;
    auto rec = std::make_shared<test::completion_record>();
    test::planned_token_op op{&io.ctx, {{100ms, {}}, {100ms, {}}, {100ms, {}}}};
    error_code got;
    test::async_hedge_virtual(
        io.ctx, base_policy().max_attempts(3), op,
        asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](error_code ec, int) { got = ec; })));
    const double origin = test::mock_clock::seconds();
    test::run_virtual(io.ctx, [&] { return test::mock_clock::seconds() - origin >= 0.015; });
    BOOST_TEST(op.log->started == 2);
    signal.emit(type);
    test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
    BOOST_TEST(rec->calls == 1);
    BOOST_TEST(got == aborted);  // the last attempt's own failure
    BOOST_TEST(op.log->cancelled == 2);
    BOOST_TEST(op.log->started == 2);  // no hedge after the cancellation
  }
}

BOOST_AUTO_TEST_CASE(a_cancelled_coroutine_cancels_its_hedges) {
  test::io_fixture io;
  asio::cancellation_signal signal;
  auto rec = std::make_shared<test::completion_record>();
  test::planned_awaitable_op op{&io.ctx, {{100ms, {}}, {100ms, {}}}};
  error_code got;
  auto body = [&]() -> asio::awaitable<void> {
    try {
      co_await test::async_hedge_virtual(io.ctx, base_policy(), op, asio::use_awaitable);
    } catch (const boost::system::system_error& e) {
      got = e.code();
    }
  };
  asio::co_spawn(io.ctx, body,
                 asio::bind_cancellation_slot(signal.slot(), test::once(rec, [](const std::exception_ptr&) {})));
  const double origin = test::mock_clock::seconds();
  test::run_virtual(io.ctx, [&] { return test::mock_clock::seconds() - origin >= 0.015; });
  signal.emit(asio::cancellation_type::terminal);
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(got == aborted);
  BOOST_TEST(op.log->cancelled == 2);
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_with_attempts_in_flight_leaks_nothing) {
  // Run under ASan (the README's test command): a leak or a use after free fails it.
  enum class form { token, awaitable, context };
  for (form op_form : {form::token, form::awaitable, form::context})
    for (bool stop_first : {false, true}) {
      auto rec = std::make_shared<test::completion_record>();
      rec->may_be_abandoned = true;
      std::shared_ptr<test::attempt_log> log;
      {
        asio::io_context ctx;
        auto handler = test::once(rec, [](auto, int) {});
        if (op_form == form::awaitable) {
          test::planned_awaitable_op op{&ctx, {{100ms, {}}, {100ms, {}}}};
          log = op.log;
          test::async_hedge_virtual(ctx, base_policy(), op, std::move(handler));
        } else if (op_form == form::context) {  // the contexts live in the state, freed with it
          test::context_token_op op{{&ctx, {{100ms, {}}, {100ms, {}}}}};
          op.nest = true;
          log = op.planned.log;
          test::async_hedge_virtual(ctx, base_policy().deadline(test::mock_clock::now() + 1s), op, std::move(handler));
        } else {
          test::planned_token_op op{&ctx, {{100ms, {}}, {100ms, {}}}};
          log = op.log;
          test::async_hedge_virtual(ctx, base_policy(), op, std::move(handler));
        }
        const double origin = test::mock_clock::seconds();
        test::run_virtual(ctx, [&] { return test::mock_clock::seconds() - origin >= 0.015; });
        BOOST_TEST(log->started == 2);
        if (stop_first) {
          ctx.stop();
          ctx.poll();
        }
      }
      BOOST_TEST(rec->calls == 0);
      BOOST_TEST(rec->destroyed_uncalled);
    }
}

BOOST_AUTO_TEST_CASE(an_op_that_completes_inline_is_not_completed_inline) {
  test::io_fixture io;
  auto rec = std::make_shared<test::completion_record>();
  auto inline_op = [](auto token) {
    return asio::async_initiate<decltype(token), void(error_code, int)>(
        [](auto handler) { std::move(handler)(error_code(), 7); }, token);
  };
  int got = 0;
  test::initiate([&] {
    test::async_hedge_virtual(io.ctx, base_policy(), inline_op, test::once(rec, [&](error_code, int v) { got = v; }));
  });
  BOOST_TEST(rec->calls == 0);
  io.ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(got == 7);
}

// async_hedge takes the policy by reference (a by-value parameter would sit in the awaiting frame
// for the whole call), so the call must keep its own copy: an awaitable made from a temporary
// policy, or from one changed and destroyed before the await, runs the policy it was given.
BOOST_AUTO_TEST_CASE(an_awaitable_keeps_its_own_policy_after_the_argument_is_gone) {
  asio::io_context ctx;
  auto op = [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code(), 5)); };
  int from_temporary = 0, from_lvalue = 0;
  std::exception_ptr failed;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto first = stamina::async_hedge(ctx, base_policy().max_attempts(3), op);
        std::optional<asio::awaitable<int>> second;
        {
          auto policy = std::make_unique<stamina::hedging_policy>(base_policy());
          second.emplace(stamina::async_hedge(ctx, *policy, op));
          *policy = stamina::hedging_policy(stamina::on_error(reset));  // changed, then destroyed
        }
        from_temporary = co_await std::move(first);
        from_lvalue = co_await std::move(*second);
      },
      [&](std::exception_ptr e) { failed = e; });
  ctx.run();
  BOOST_TEST(!failed);
  BOOST_TEST(from_temporary == 5);
  BOOST_TEST(from_lvalue == 5);
}

BOOST_AUTO_TEST_CASE(the_handler_runs_on_its_associated_executor) {
  test::io_fixture io;
  auto strand = asio::make_strand(io.ctx);
  auto rec = std::make_shared<test::completion_record>();
  bool in_strand = false;
  test::planned_token_op op{&io.ctx, {{100ms, {}}, {5ms, {}}}};
  test::async_hedge_virtual(io.ctx, base_policy(), op,
                            asio::bind_executor(strand, test::once(rec, [&](error_code, int) {
                                                  in_strand = strand.running_in_this_thread();
                                                })));
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(in_strand);
}

BOOST_AUTO_TEST_CASE(policies_reject_invalid_values_naming_the_field) {
  auto p = base_policy();
  auto message = [](auto f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  BOOST_TEST(message([&] { p.attempts(0); }).find("attempts") != std::string::npos);
  BOOST_TEST(message([&] { p.attempt_timeout(0s); }).find("attempt_timeout") != std::string::npos);
  BOOST_TEST(message([&] { p.delay(-1ms); }).find("delay") != std::string::npos);
  BOOST_TEST(message([&] { p.delay(stamina::duration(NAN)); }).find("delay") != std::string::npos);
  BOOST_TEST(message([&] { p.adaptive_delay(1.5); }).find("adaptive_delay") != std::string::npos);
  BOOST_TEST(message([&] { p.timeout(0s); }).find("timeout") != std::string::npos);
  BOOST_TEST(message([] { stamina::hedge_budget(2.0); }).find("ratio") != std::string::npos);
  BOOST_TEST(message([] { stamina::hedge_budget(0.1, 0.5); }).find("burst") != std::string::npos);
  // hostile values saturate
  p.attempts(1'000'000'000'000LL);
  BOOST_TEST(p.attempts() == stamina::hedging_policy::max_attempts_limit);
  BOOST_TEST(p.attempts() == 10U);  // the failed setters changed nothing else
  BOOST_TEST(p.delay().count() == 0.010);
}

// A pool runs attempts of many calls at once. Each call runs on a strand of the pool, as
// async_hedge requires on several threads (a loser may only be cancelled in its own context).
BOOST_AUTO_TEST_CASE(concurrent_calls_on_a_thread_pool) {
  hedge_concurrently([](asio::thread_pool& pool) { return asio::make_strand(pool); }, 300, 200us, 1);
}

BOOST_AUTO_TEST_SUITE_END()

// What an adversarial review of 0.2 found in hedging: timers shared between calls, teardown,
// work tracking, user code re-entering its own call, threads without a strand, invalid awaitables.
BOOST_AUTO_TEST_SUITE(hedge_isolation)

// A hedge delay must not wait for another call's strand. The first call arms its delay on
// strand A; strand A is then kept busy until the call on strand B completes (or 5 s pass). With
// the delays of every call behind strand A, call B's hedge could only start after the 5 s.
BOOST_AUTO_TEST_CASE(a_call_s_timers_do_not_run_on_another_call_s_strand) {
  asio::io_context ctx(2);
  auto strand_a = asio::make_strand(ctx);
  auto strand_b = asio::make_strand(ctx);
  const auto policy = stamina::hedging_policy(stamina::on_error(asio::error::connection_refused))
                          .delay(20ms)
                          .budget(nullptr)
                          .timeout(10s);
  // Attempt 1 waits (cancellably) for `slow`, attempt 2 answers at once with its number.
  auto op_on = [](auto strand, std::chrono::milliseconds slow) {
    return [strand, slow, n = std::make_shared<int>(0)](auto token) {
      const int attempt = ++*n;
      auto timer = std::make_shared<asio::steady_timer>(strand, attempt == 1 ? slow : 0ms);
      return asio::async_compose<decltype(token), void(error_code, int)>(
          [timer, attempt, started = false](auto& self, error_code ec = {}) mutable {
            if (!started) {
              started = true;
              timer->async_wait(std::move(self));
              return;
            }
            self.complete(ec, attempt);
          },
          token, strand);
    };
  };
  std::atomic<bool> b_done{false};
  std::atomic<bool> released_by_b{false};
  auto rec_a = std::make_shared<test::completion_record>();
  auto rec_b = std::make_shared<test::completion_record>();
  stamina::async_hedge(strand_a, policy, op_on(strand_a, 300ms),
                       test::once(rec_a, [](error_code, int) {}));  // arms its delay first
  asio::post(strand_a, [&] {
    const auto give_up_at = std::chrono::steady_clock::now() + 5s;
    while (!b_done.load() && std::chrono::steady_clock::now() < give_up_at) std::this_thread::sleep_for(1ms);
    released_by_b = b_done.load();
  });
  int b_value = 0;
  stamina::async_hedge(strand_b, policy, op_on(strand_b, 10s), test::once(rec_b, [&](error_code ec, int v) {
                         BOOST_CHECK(!ec);
                         b_value = v;
                         b_done = true;
                       }));
  std::thread second([&] { ctx.run(); });
  ctx.run();
  second.join();
  BOOST_TEST(rec_b->calls == 1);
  BOOST_TEST(b_value == 2);  // the hedge won
  BOOST_TEST(released_by_b.load());
}

// A work-tracking executor keeps run() going only while a call is pending.
BOOST_AUTO_TEST_CASE(a_work_tracking_executor_lets_run_return) {
  asio::io_context ctx;
  auto rec = std::make_shared<test::completion_record>();
  auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code(), 5)); };
  // The tracked executor is a temporary: only the call may keep it.
  stamina::async_hedge(asio::require(ctx.get_executor(), asio::execution::outstanding_work.tracked), base_policy(), op,
                       test::once(rec, [](error_code, int) {}));
  ctx.run_for(5s);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(ctx.stopped());  // run() ran out of work instead of waiting for the 5 s
}

// The same with a call that waits for a place under a concurrency limit: the wait keeps run()
// going until the place comes (freed by a handler on the same context), then lets it return.
BOOST_AUTO_TEST_CASE(a_work_tracking_executor_lets_run_return_after_a_wait_for_a_place) {
  asio::io_context ctx;
  auto limit = std::make_shared<stamina::concurrency_limit>("tracked");
  limit->max_limit(1);
  std::uint32_t held = 0;
  BOOST_TEST_REQUIRE(limit->try_acquire(&held));
  auto rec = std::make_shared<test::completion_record>();
  std::optional<int> value;
  auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code(), 5)); };
  stamina::async_hedge(asio::require(ctx.get_executor(), asio::execution::outstanding_work.tracked),
                       base_policy().limit(limit), op, test::once(rec, [&](error_code ec, int v) {
                         BOOST_TEST(!ec);
                         value = v;
                       }));
  BOOST_TEST(limit->waiting() == 1u);
  asio::post(ctx, [&] { limit->release(held, std::nullopt, stamina::detail::limit_sample::none); });
  ctx.run_for(5s);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST((value == 5));
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(limit->in_flight() == 0u);
}

// A session that cancels its hedged call in its destructor, destroyed while the io_context
// shuts down (its handler is abandoned): the call must not touch the context's torn-down timer.
BOOST_AUTO_TEST_CASE(cancelling_during_io_context_teardown_is_safe) {
  auto rec = std::make_shared<test::completion_record>();
  rec->may_be_abandoned = true;
  // Attempts that never complete: their handlers are parked outside the io_context, so the call
  // is still alive when the session is destroyed; the session lets them go after cancelling.
  using parked_handlers = std::vector<std::shared_ptr<void>>;
  struct session {
    asio::cancellation_signal signal;
    std::shared_ptr<parked_handlers> parked = std::make_shared<parked_handlers>();
    ~session() {
      signal.emit(asio::cancellation_type::terminal);
      parked->clear();
    }
  };
  {
    asio::io_context ctx;
    // The session is owned by a pending timer wait, abandoned when the context shuts down (after
    // the hedging timer: Asio shuts services down in the reverse order of their creation).
    auto holder = std::make_shared<test::virtual_timer>(ctx, 1h);
    auto s = std::make_shared<session>();
    auto op = [parked = s->parked](auto token) {
      return asio::async_initiate<decltype(token), void(error_code, int)>(
          [parked](auto handler) {
            parked->push_back(std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler)));
          },
          token);
    };
    test::async_hedge_virtual(ctx, base_policy().delay(50ms), op,
                              asio::bind_cancellation_slot(s->signal.slot(), test::once(rec, [](error_code, int) {})));
    holder->async_wait([s, holder](error_code) {});
    s.reset();
    ctx.poll();
  }
  BOOST_TEST(rec->calls == 0);
}

// An op that cancels its own call (from inside op(), while the call is starting a hedge), and a
// classifier that does: no deadlock, and the call completes once.
BOOST_AUTO_TEST_CASE(an_op_or_a_classifier_may_cancel_its_own_call) {
  for (bool from_classifier : {false, true}) {
    BOOST_TEST_CONTEXT((from_classifier ? "the classifier" : "the op") << " cancels the call") {
      test::io_fixture io;
      asio::cancellation_signal signal;
      auto rec = std::make_shared<test::completion_record>();
      test::planned_token_op planned{&io.ctx, {{100ms, {}}, {100ms, {}}}};
      auto op = [&, from_classifier](auto token) {
        if (!from_classifier && planned.log->started == 1) signal.emit(asio::cancellation_type::terminal);
        return planned(std::move(token));
      };
      auto policy = base_policy();
      if (from_classifier) {
        policy.on(stamina::retry_on([&](const stamina::failure&) {
          signal.emit(asio::cancellation_type::terminal);
          return true;
        }));
        planned.plan[0] = {1ms, refused};
      }
      error_code got;
      test::async_hedge_virtual(
          io.ctx, policy, op,
          asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](error_code ec, int) { got = ec; })));
      test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST(planned.log->finished + planned.log->cancelled == planned.log->started);
    }
  }
}

// Several threads and no strand: each call must still be safe (TSan and ASan check this).
BOOST_AUTO_TEST_CASE(concurrent_calls_on_a_thread_pool_without_a_strand) {
  hedge_concurrently([](asio::thread_pool& pool) { return pool.get_executor(); }, 200, 100us, 2);
  // With ops that take the attempt's context (each attempt its own, written while others run).
  hedge_concurrently<true>([](asio::thread_pool& pool) { return pool.get_executor(); }, 200, 100us, 2);
}

// An op() that returns an awaitable that holds no coroutine is a failed attempt, not a crash.
BOOST_AUTO_TEST_CASE(an_invalid_awaitable_is_a_failed_attempt) {
  test::io_fixture io;
  auto rec = std::make_shared<test::completion_record>();
  int calls = 0;
  auto op = [&]() -> asio::awaitable<int> {
    ++calls;
    return {};
  };
  error_code got;
  test::async_hedge_virtual(io.ctx, base_policy().on(stamina::retry_on([](const stamina::failure&) { return false; })),
                            op, test::once(rec, [&](std::exception_ptr e, int) { got = test::code_of(e); }));
  test::run_virtual(io.ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(calls == 1);
  BOOST_TEST(got == asio::error::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// Hedging obeys what retries obey: the switches, the testing scopes and the global hooks.
BOOST_AUTO_TEST_SUITE(hedge_switches)

namespace {

// The first attempt hangs (a real timer of an hour, until cancelled); later ones succeed at
// once. Completes with (error_code, attempt number).
struct hang_then_succeed {
  asio::io_context* ctx;
  std::shared_ptr<std::vector<std::unique_ptr<asio::steady_timer>>> timers =
      std::make_shared<std::vector<std::unique_ptr<asio::steady_timer>>>();
  template <class Token>
  auto operator()(Token&& token) const {
    const bool first = timers->empty();
    timers->push_back(std::make_unique<asio::steady_timer>(*ctx, first ? std::chrono::hours(1) : 0h));
    const int n = static_cast<int>(timers->size());
    return timers->back()->async_wait(asio::append(std::forward<Token>(token), n));
  }
};

struct real_outcome {
  bool completed = false;
  error_code ec;
  int value = 0;
};

// One hedged call on real timers, bounded by `bound` of real time.
real_outcome run_real(asio::io_context& ctx, const stamina::hedging_policy& policy, const hang_then_succeed& op,
                      std::chrono::seconds bound) {
  real_outcome out;
  auto rec = std::make_shared<test::completion_record>();
  stamina::async_hedge(ctx.get_executor(), policy, op, test::once(rec, [&](error_code ec, int n) {
                         out.completed = true;
                         out.ec = ec;
                         out.value = n;
                       }));
  ctx.run_for(bound);
  BOOST_TEST(rec->calls == 1);
  return out;
}

}  // namespace

// A hedge due in 20 s is due at once in virtual time: the call completes without waiting
// (a real wait would outlast the 10 s bound), and the skipped delay is listed.
BOOST_AUTO_TEST_CASE(virtual_time_skips_the_hedge_delay) {
  asio::io_context ctx;
  const stamina::testing_scope scope(stamina::virtual_time);
  const hang_then_succeed op{&ctx};
  const real_outcome got = run_real(ctx, base_policy().delay(20s).timeout(60s), op, 10s);
  BOOST_TEST(got.completed);
  BOOST_TEST(!got.ec);
  BOOST_TEST(got.value == 2);
  BOOST_TEST(op.timers->size() == 2U);
  const auto waits = scope.waits();
  BOOST_REQUIRE_EQUAL(waits.size(), 1U);
  BOOST_TEST(waits[0].count() == 20.0);
}

// testing_scope(n): n attempts, no delay between them, no deadline.
BOOST_AUTO_TEST_CASE(a_testing_scope_starts_its_attempts_without_delay) {
  asio::io_context ctx;
  const stamina::testing_scope scope(2);
  const hang_then_succeed op{&ctx};
  const real_outcome got = run_real(ctx, base_policy().delay(20s).attempts(5), op, 10s);
  BOOST_TEST(got.completed);
  BOOST_TEST(got.value == 2);
  BOOST_TEST(op.timers->size() == 2U);
}

// set_active(false) is Python stamina's switch: one attempt, no hedge.
BOOST_AUTO_TEST_CASE(an_inactive_library_makes_one_attempt) {
  asio::io_context ctx;
  stamina::set_active(false);
  int calls = 0;
  auto op = [&](auto token) { return asio::post(ctx, asio::append(std::move(token), refused, ++calls)); };
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  stamina::async_hedge(ctx.get_executor(), base_policy().attempts(3).delay(1ms), op,
                       test::once(rec, [&](error_code ec, int) { got = ec; }));
  ctx.run_for(10s);
  stamina::set_active(true);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(calls == 1);
  BOOST_TEST(got == refused);
}

// The global on-hedge hooks see every hedged call, and the default metrics count hedges.
BOOST_AUTO_TEST_CASE(global_hooks_and_the_default_metrics_see_hedges) {
  std::vector<stamina::hedge_event_kind> seen;
  stamina::instrumentation::set_on_hedge_hooks(
      {[&](const stamina::hedge_event& e) { seen.push_back(e.kind); }, stamina::instrumentation::hedge_metrics_hook()});
  stamina::instrumentation::default_metrics().clear();
  {
    asio::io_context ctx;
    const stamina::testing_scope scope(stamina::virtual_time);
    const hang_then_succeed op{&ctx};
    BOOST_TEST(run_real(ctx, base_policy().name("hedged-db"), op, 10s).value == 2);
  }
  stamina::instrumentation::reset_on_hedge_hooks();
  BOOST_TEST((seen == std::vector<stamina::hedge_event_kind>{stamina::hedge_event_kind::started,
                                                             stamina::hedge_event_kind::won,
                                                             stamina::hedge_event_kind::cancelled}),
             boost::test_tools::per_element());
  const std::string text = stamina::instrumentation::default_metrics().render_prometheus();
  BOOST_TEST(text.find("stamina_hedges_total{callable=\"hedged-db\",event=\"started\"} 1") != std::string::npos, text);
  BOOST_TEST(text.find("stamina_hedges_total{callable=\"hedged-db\",event=\"won\"} 1") != std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hedge_composition)

// A result on_result retries (a 503) starts the next hedge at once, like an accepted failure.
BOOST_AUTO_TEST_CASE(a_retried_result_starts_the_next_hedge) {
  asio::io_context ctx;
  int calls = 0;
  auto op = [&](auto token) {
    ++calls;
    return asio::post(ctx, asio::append(std::move(token), error_code(), calls == 1 ? 503 : 200));
  };
  const auto policy = base_policy().delay(20s).on_result([](int status) { return status == 503; });
  auto rec = std::make_shared<test::completion_record>();
  int status = 0;
  stamina::async_hedge(ctx.get_executor(), policy, op, test::once(rec, [&](error_code ec, int s) {
                         BOOST_TEST(!ec);
                         status = s;
                       }));
  ctx.run_for(10s);  // a hedge that waited for its delay would not be back in time
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(calls == 2);
  BOOST_TEST(status == 200);
}

// Hedging inside a retry: each retry attempt is a hedged call; the retry's deadline and
// attempts bound the whole, the hedging policy only the parallel attempts of one round.
BOOST_AUTO_TEST_CASE(hedging_inside_a_retry) {
  asio::io_context ctx;
  int calls = 0;
  auto backend = [&](auto token) {
    ++calls;  // refused four times (two hedged rounds), then served
    return asio::post(ctx, asio::append(std::move(token), calls <= 4 ? refused : error_code(), calls));
  };
  const auto hedging = base_policy().attempts(2).delay(20s);  // hedges here only on a refusal
  auto hedged = [&](auto token) { return stamina::async_hedge(ctx, hedging, backend, std::move(token)); };
  const auto retrying = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                            .attempts(3)
                            .timeout(10s)
                            .wait_initial(1ms)
                            .wait_jitter(0s);
  auto rec = std::make_shared<test::completion_record>();
  int served_by = 0;
  stamina::async_retry(ctx, retrying, hedged, test::once(rec, [&](error_code ec, int n) {
                         BOOST_TEST(!ec);
                         served_by = n;
                       }));
  ctx.run_for(10s);
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(calls == 5);
  BOOST_TEST(served_by == 5);
}

BOOST_AUTO_TEST_SUITE_END()
