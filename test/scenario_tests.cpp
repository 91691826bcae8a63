// One table of scenarios run against every driver and completion token: the blocking loop,
// callbacks (both op forms), use_awaitable (both op forms), deferred, use_future, and
// retry_context (blocking, and co_await async_next()). Each must
// make the same attempts, schedule the same waits, call the same hooks and give up for the
// same reason with the same result: the rules live in one protocol.

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <common/print.hpp>
#include <stamina/adaptive_throttle.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/fallback.hpp>
#include <stamina/global.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#if !defined(STAMINA_STANDALONE_ASIO)
#include <boost/system/result.hpp>
#endif

#include <functional>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::give_up_reason;

namespace {

const error_code ok{};
const error_code refused = asio::error::connection_refused;
const error_code reset = asio::error::connection_reset;  // never retried below
const error_code aborted = asio::error::operation_aborted;
const error_code timed_out = stamina::error::attempt_timeout;
const error_code throttled = stamina::error::throttled;
const error_code circuit_open = stamina::error::circuit_open;

enum class switches { normal, testing, inactive, virtual_time };

struct scenario {
  std::string name{};
  std::function<stamina::retry_policy()> policy{};
  std::vector<error_code> results{};  // attempt n's result; the last one repeats
  double attempt_seconds = 0;         // virtual time each attempt takes
  std::optional<double> cancel_at{};  // virtual time of a terminal cancellation
  switches mode = switches::normal;
  bool async_only = false;  // needs to interrupt an attempt: not for the blocking driver
  // expected, the same for every driver
  int attempts = 0;             // calls of the op
  int held_back = 0;            // attempts the throttle held back (the give-up hook reports them apart)
  std::vector<double> waits{};  // as reported to the on-retry hook
  std::optional<give_up_reason> reason{};
  error_code result{};  // ok: success, with value 10 * attempts
};

std::ostream& operator<<(std::ostream& out, const scenario& s) { return out << s.name; }

stamina::retry_policy base() {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
      .wait_initial(1s)
      .wait_jitter(0s)
      .timeout(std::nullopt);
}

// A throttle pacing a dependency that failed, whose clock then stands still: no token ever
// arrives, so every attempt is held back.
double shedding_seconds = 0;
std::shared_ptr<stamina::adaptive_throttle> shedding_throttle() {
  auto t = std::make_shared<stamina::adaptive_throttle>();
  t->clock(+[] { return shedding_seconds; });
  shedding_seconds += 10;
  t->on_overloaded();
  shedding_seconds += 1;
  for (int i = 0; i < 100 && !t->pacing(); ++i) t->admit();
  return t;
}

// A throttle that admits one attempt (the call's first) and holds back every later one: pacing
// at its lowest rate with one token saved, on a clock that then stands still.
double holding_seconds = 0;
std::shared_ptr<stamina::adaptive_throttle> admits_one_then_holds() {
  auto t = std::make_shared<stamina::adaptive_throttle>();
  t->clock(+[] { return holding_seconds; });
  holding_seconds += 10;
  t->on_overloaded();
  holding_seconds += 1;
  for (int i = 0; i < 100 && !t->pacing(); ++i) t->admit();
  t->admit();            // held: the interval has been busy
  holding_seconds += 1;  // one token at 1/s
  return t;
}

// A concurrency limit of one place: free (a leaked place would hang the call's retry), or held
// by someone else for good.
std::shared_ptr<stamina::concurrency_limit> limit_of_one() {
  auto l = std::make_shared<stamina::concurrency_limit>("scenario");
  l->max_limit(1);
  return l;
}
std::shared_ptr<stamina::concurrency_limit> full_limit() {
  auto l = limit_of_one();
  l->try_acquire();
  return l;
}

// A breaker that opens at the second failure it counts, on a clock that stands still (it never
// becomes half-open), and one that is open whatever happens.
double breaker_seconds = 0;
std::shared_ptr<stamina::circuit_breaker> opens_at_the_second_failure() {
  auto b = std::make_shared<stamina::circuit_breaker>("scenario");
  b->clock(+[] { return breaker_seconds; }).minimum_calls(2).failure_ratio(0.5);
  return b;
}
std::shared_ptr<stamina::circuit_breaker> isolated_breaker() {
  auto b = std::make_shared<stamina::circuit_breaker>("scenario");
  b->isolate();
  return b;
}

const std::vector<scenario> table = {
    {.name = "success", .policy = base, .results = {ok}, .attempts = 1, .waits = {}, .reason = {}, .result = ok},
    {.name = "retry_then_success",
     .policy = base,
     .results = {refused, refused, ok},
     .attempts = 3,
     .waits = {1, 2},
     .reason = {},
     .result = ok},
    {.name = "not_retryable",
     .policy = base,
     .results = {reset},
     .attempts = 1,
     .waits = {},
     .reason = give_up_reason::not_retryable,
     .result = reset},
    {.name = "attempts_exhausted",
     .policy = [] { return base().attempts(3); },
     .results = {refused},
     .attempts = 3,
     .waits = {1, 2},
     .reason = give_up_reason::attempts_exhausted,
     .result = refused},
    {.name = "deadline",
     .policy = [] { return base().timeout(2.5s); },
     .results = {refused},
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::deadline,
     .result = refused},
    {.name = "retry_after",
     .policy =
         [] {
           return base().on(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
             if (f.error() == asio::error::connection_refused) return stamina::decision::retry_after(5s);
             return false;
           }));
         },
     .results = {refused, ok},
     .attempts = 2,
     .waits = {5},
     .reason = {},
     .result = ok},
    {.name = "budget_exhausted",
     .policy = [] { return base().budget(std::make_shared<stamina::retry_budget>(4, 1)); },
     .results = {refused},
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::budget_exhausted,
     .result = refused},
    {.name = "testing_mode",
     .policy = base,
     .results = {refused},
     .mode = switches::testing,
     .attempts = 3,
     .waits = {0, 0},
     .reason = give_up_reason::attempts_exhausted,
     .result = refused},
    {.name = "inactive",
     .policy = base,
     .results = {refused, ok},
     .mode = switches::inactive,
     .attempts = 1,
     .waits = {},
     .reason = {},  // no hooks at all when retrying is inactive
     .result = refused},
    {.name = "cancelled_during_wait",
     .policy = base,
     .results = {refused},
     .cancel_at = 0.5,
     .attempts = 1,
     .waits = {1},
     .reason = give_up_reason::cancelled,
     .result = aborted},
    {.name = "cancelled_during_attempt",
     .policy = base,
     .results = {refused},
     .attempt_seconds = 1,
     .cancel_at = 2.5,  // during the second attempt (it runs from 2 s to 3 s)
     .async_only = true,
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::cancelled,
     .result = aborted},  // the attempt's own result: it honoured the cancellation
    {.name = "throttle_sheds_every_attempt",
     .policy = [] { return base().attempts(3).throttle(shedding_throttle()); },
     .results = {ok},
     .attempts = 0,  // the op is never called
     .held_back = 3,
     .waits = {},  // held-back attempts are not reported to on-retry hooks
     .reason = give_up_reason::throttled,
     .result = throttled},
    {.name = "throttle_sheds_the_only_attempt",  // the call ends before anything starts: never inline
     .policy = [] { return base().attempts(1).throttle(shedding_throttle()); },
     .results = {ok},
     .attempts = 0,
     .held_back = 1,
     .waits = {},
     .reason = give_up_reason::throttled,
     .result = throttled},
    {.name = "throttle_holds_back_after_a_failure_delivers_the_failure",  // not `throttled`: an attempt was sent
     .policy = [] { return base().attempts(3).throttle(admits_one_then_holds()); },
     .results = {refused},
     .attempts = 1,
     .held_back = 2,
     .waits = {1},  // held-back attempts are not reported as retries
     .reason = give_up_reason::throttled,
     .result = refused},
    {.name = "reset_after_restarts_the_schedule_after_a_long_attempt",  // every attempt runs 20 s
     .policy = [] { return base().attempts(3).reset_after(10s); },
     .results = {refused, refused, refused, refused, ok},
     .attempt_seconds = 20,
     .attempts = 5,  // more than attempts(3): each long attempt starts the count afresh
     .waits = {1, 1, 1, 1},
     .reason = {},
     .result = ok},
    {.name = "an_open_breaker_sends_nothing",
     .policy = [] { return base().breaker(isolated_breaker()); },
     .results = {ok},
     .attempts = 0,
     .waits = {},
     .reason = give_up_reason::circuit_open,
     .result = circuit_open},
    {.name = "an_open_breaker_is_not_asked_when_retrying_is_inactive",
     .policy = [] { return base().breaker(isolated_breaker()); },
     .results = {ok},
     .mode = switches::inactive,
     .attempts = 1,
     .waits = {},
     .reason = {},
     .result = ok},
    {.name = "a_breaker_that_opens_ends_the_call_with_the_last_failure_and_no_wait",
     .policy = [] { return base().attempts(5).breaker(opens_at_the_second_failure()); },
     .results = {refused},
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::circuit_open,
     .result = refused},
    {.name = "a_limit_with_a_place_free_changes_nothing",
     .policy = [] { return base().attempts(3).limit(limit_of_one()); },
     .results = {refused, refused, ok},
     .attempts = 3,
     .waits = {1, 2},
     .reason = {},
     .result = ok},
    {.name = "a_full_limit_with_fail_fast_sends_nothing",
     .policy = [] { return base().limit(full_limit()).fail_fast(); },
     .results = {ok},
     .attempts = 0,
     .waits = {},
     .reason = give_up_reason::throttled,
     .result = throttled},
    {.name = "a_full_limit_holds_the_attempt_until_the_deadline",
     .policy = [] { return base().timeout(3s).limit(full_limit()); },
     .results = {ok},
     .async_only = true,  // the blocking drivers would wait in real time
     .attempts = 0,
     .waits = {},
     .reason = give_up_reason::deadline,
     .result = throttled},
    {.name = "a_cancelled_call_leaves_the_limit_queue",
     .policy = [] { return base().limit(full_limit()); },
     .results = {ok},
     .cancel_at = 2,
     .async_only = true,
     .attempts = 0,
     .waits = {},
     .reason = give_up_reason::cancelled,
     .result = aborted},
    {.name = "a_full_limit_is_not_asked_when_retrying_is_inactive",
     .policy = [] { return base().limit(full_limit()); },
     .results = {ok},
     .mode = switches::inactive,
     .attempts = 1,
     .waits = {},
     .reason = {},
     .result = ok},
    {.name = "fail_fast_with_nothing_sent_is_throttled_at_once",
     .policy = [] { return base().throttle(shedding_throttle()).fail_fast(); },
     .results = {refused},
     .attempts = 0,
     .held_back = 1,
     .waits = {},
     .reason = give_up_reason::throttled,
     .result = throttled},
    {.name = "fail_fast_after_a_failure_delivers_the_failure_at_once",
     .policy = [] { return base().attempts(5).throttle(admits_one_then_holds()).fail_fast(); },
     .results = {refused},
     .attempts = 1,
     .held_back = 1,  // the first held-back attempt ends the call: no pacing wait
     .waits = {1},
     .reason = give_up_reason::throttled,
     .result = refused},
    {.name = "throttle_admits_while_healthy",
     .policy = [] { return base().throttle(std::make_shared<stamina::adaptive_throttle>()); },
     .results = {refused, ok},
     .attempts = 2,
     .waits = {1},
     .reason = {},
     .result = ok},
    {.name = "on_result_retries_a_result",
     .policy = [] { return base().on_result([](int value) { return value < 30; }); },
     .results = {ok},
     .attempts = 3,
     .waits = {1, 2},
     .reason = {},
     .result = ok},
    {.name = "on_result_gives_up_with_the_last_result",  // delivered as the success it is
     .policy = [] { return base().attempts(2).on_result([](const int&) { return true; }); },
     .results = {ok},
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::attempts_exhausted,
     .result = ok},
    {.name = "on_result_waits_a_server_given_wait",
     .policy =
         [] {
           return base().wait_jitter(0s).on_result([](int value) -> stamina::decision {
             if (value == 10) return stamina::decision::retry_after(5s);
             return false;
           });
         },
     .results = {ok},
     .attempts = 2,
     .waits = {5},
     .reason = {},
     .result = ok},
    {.name = "on_result_and_failures_share_the_attempts",
     .policy = [] { return base().attempts(3).on_result([](int) { return true; }); },
     .results = {refused, ok},
     .attempts = 3,
     .waits = {1, 2},
     .reason = give_up_reason::attempts_exhausted,
     .result = ok},
    {.name = "virtual_time_skips_the_waits",
     .policy = base,
     .results = {refused, refused, ok},
     .mode = switches::virtual_time,
     .attempts = 3,
     .waits = {1, 2},
     .reason = {},
     .result = ok},
    {.name = "virtual_time_keeps_the_deadline",
     .policy = [] { return base().timeout(2.5s); },
     .results = {refused},
     .mode = switches::virtual_time,
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::deadline,
     .result = refused},
    {.name = "attempt_timeout",
     .policy = [] { return base().attempts(2).attempt_timeout(1s); },
     .results = {refused},
     .attempt_seconds = 10,
     .async_only = true,
     .attempts = 2,
     .waits = {1},
     .reason = give_up_reason::attempts_exhausted,
     .result = timed_out},
};

// Where a blocking retry_context's sleep is interrupted (the scenario's cancellation).
std::optional<test::mock_clock::time_point> context_interrupt_at;

}  // namespace

// A blocking retry_context on the mock clock sleeps by advancing it, up to the interruption.
template <>
struct stamina::detail::blocking_sleep<test::mock_clock> {
  static bool sleep(const std::stop_token& /*stop*/, stamina::duration d) {
    auto end = test::mock_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(d);
    if (context_interrupt_at) end = std::min(end, *context_interrupt_at);
    if (end > test::mock_clock::now()) test::mock_clock::advance(end - test::mock_clock::now());
    return !(context_interrupt_at && test::mock_clock::now() >= *context_interrupt_at);
  }
};

namespace {

// What a driver saw.
struct outcome {
  error_code result;
  int value = 0;
  int attempts = 0;
};

// The script of a scenario as an attempt: takes `attempt_seconds` of virtual time (cut short
// by cancellation, which completes it with operation_aborted), then yields result n.
struct script {
  const scenario* s;
  std::shared_ptr<int> calls = std::make_shared<int>(0);

  error_code result(int n) const {
    return s->results[std::min<std::size_t>(static_cast<std::size_t>(n) - 1, s->results.size() - 1)];
  }
};

// The scenarios again, each call given a fallback that records what it is told and stands in
// with 7 (set by fallback_stands_in_on_every_driver).
bool falling_back = false;
std::optional<stamina::give_up_info> fallback_told;
struct recording_fallback {
  int operator()(const stamina::give_up_info& info) const {
    fallback_told = info;
    return 7;
  }
};

// Calls `call(op)`, or with a fallback `call(op with the fallback)`: the public overloads wrap the
// op the same way.
template <class Op, class Call>
void with_scenario_fallback(Op op, Call call) {
  if (falling_back)
    call(stamina::detail::with_fallback_op(std::move(op), stamina::fallback(recording_fallback{})));
  else
    call(std::move(op));
}

struct token_op {
  script sc;
  asio::io_context* ctx;

  template <class Token>
  auto operator()(Token&& token) const {
    const int n = ++*sc.calls;
    auto timer = std::make_shared<test::virtual_timer>(*ctx);
    timer->expires_after(
        std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(sc.s->attempt_seconds)));
    return asio::async_compose<Token, void(error_code, int)>(
        [timer, r = sc.result(n), n, started = false](auto& self, error_code ec = {}) mutable {
          if (!started) {
            started = true;
            timer->async_wait(std::move(self));
            return;
          }
          self.complete(ec ? ec : r, r ? 0 : 10 * n);
        },
        token, *ctx);
  }
};

struct awaitable_op {
  script sc;

  asio::awaitable<int> operator()() const {
    const int n = ++*sc.calls;
    const error_code r = sc.result(n);
    test::virtual_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(sc.s->attempt_seconds)));
    co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
    if (r) throw boost::system::system_error(r);
    co_return 10 * n;
  }
};

// Runs one async scenario: `start(ctx, policy, signal)` initiates the call; the io_context runs
// on virtual time until `done()`; then nothing may be left to run.
template <class Start, class Done>
void run_async(const scenario& s, const stamina::retry_policy& policy, Start start, Done done) {
  test::io_fixture io;  // no work may be left once the call has completed
  asio::io_context& ctx = io.ctx;
  asio::cancellation_signal signal;
  const auto t0 = test::mock_clock::now();
  test::virtual_timer canceller(ctx);
  if (s.cancel_at) {
    canceller.expires_at(t0 + std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(*s.cancel_at)));
    canceller.async_wait([&signal](error_code ec) {
      if (!ec) signal.emit(asio::cancellation_type::terminal);
    });
  }
  test::initiate([&] { start(ctx, policy, signal); });
  test::run_virtual(ctx, done, 10ms, 1h);
  canceller.cancel();
}

outcome run_sync(const scenario& s, const stamina::retry_policy& policy) {
  script sc{&s};
  const auto t0 = test::mock_clock::now();
  auto interrupted = [&] { return s.cancel_at && test::mock_clock::now() - t0 >= stamina::duration(*s.cancel_at); };
  auto sleeper = [&](stamina::duration d) {
    auto end = test::mock_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(d);
    if (s.cancel_at)
      end = std::min(end, t0 + std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(*s.cancel_at)));
    test::mock_clock::advance(end - test::mock_clock::now());
    return !interrupted();
  };
#if !defined(STAMINA_STANDALONE_ASIO)
  auto f = [&]() -> boost::system::result<int> {  // a value, for on_result, like the async ops
    const int n = ++*sc.calls;
    test::mock_clock::advance(
        std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(s.attempt_seconds)));
    if (const error_code r = sc.result(n)) return r;
    return 10 * n;
  };
  stamina::fallback fb(recording_fallback{});
  const boost::system::result<int> r =
      falling_back ? stamina::detail::retry_with<test::mock_clock>(policy, sleeper, f, nullptr, &fb)
                   : stamina::detail::retry_with<test::mock_clock>(policy, sleeper, f);
  if (!r) return {r.error(), 0, *sc.calls};
  return {ok, *r, *sc.calls};
#else
  // std has no result<T>: a value, or the failure as a system_error (which on_error matches).
  auto f = [&]() -> int {
    const int n = ++*sc.calls;
    test::mock_clock::advance(
        std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(s.attempt_seconds)));
    if (const error_code r = sc.result(n)) throw boost::system::system_error(r);
    return 10 * n;
  };
  try {
    stamina::fallback fb(recording_fallback{});
    const int value = falling_back ? stamina::detail::retry_with<test::mock_clock>(policy, sleeper, f, nullptr, &fb)
                                   : stamina::detail::retry_with<test::mock_clock>(policy, sleeper, f);
    return {ok, value, *sc.calls};
  } catch (const boost::system::system_error& e) {
    return {e.code(), 0, *sc.calls};
  }
#endif
}

// Runs an async driver: `start(ctx, policy, script, out, handler)` initiates the call so that
// it completes into `handler` (exactly once, never inline, cancellable through the scenario's
// signal); the handler records the first argument's error and the value, if any.
template <class Start>
outcome run_with_handler(const scenario& s, const stamina::retry_policy& policy, Start start) {
  outcome out;
  script sc{&s};
  auto rec = std::make_shared<test::completion_record>();
  run_async(
      s, policy,
      [&](asio::io_context& ctx, const stamina::retry_policy& p, asio::cancellation_signal& signal) {
        start(ctx, p, sc, out, asio::bind_cancellation_slot(signal.slot(), test::once(rec, [&](auto first, auto... v) {
                                                              out.result = test::code_of(first);
                                                              if constexpr (sizeof...(v) == 1) out.value = (v, ...);
                                                            })));
      },
      [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  out.attempts = *sc.calls;
  return out;
}

outcome run_callback_token(const scenario& s, const stamina::retry_policy& policy) {
  return run_with_handler(
      s, policy, [](asio::io_context& ctx, const auto& p, const script& sc, outcome&, auto handler) {
        with_scenario_fallback(token_op{sc, &ctx},
                               [&](auto op) { test::async_retry_virtual(ctx, p, std::move(op), std::move(handler)); });
      });
}

outcome run_callback_awaitable(const scenario& s, const stamina::retry_policy& policy) {
  return run_with_handler(
      s, policy, [](asio::io_context& ctx, const auto& p, const script& sc, outcome&, auto handler) {
        with_scenario_fallback(awaitable_op{sc},
                               [&](auto op) { test::async_retry_virtual(ctx, p, std::move(op), std::move(handler)); });
      });
}

// use_awaitable: a coroutine awaits the call; the coroutine's completion is the handler.
template <class MakeOp>
outcome run_co_await(const scenario& s, const stamina::retry_policy& policy, MakeOp make_op) {
  return run_with_handler(s, policy,
                          [&](asio::io_context& ctx, const auto& p, const script& sc, outcome& out, auto handler) {
                            with_scenario_fallback(make_op(sc, ctx), [&](auto op) {
                              asio::co_spawn(
                                  ctx,
                                  [&ctx, &out, op, p]() -> asio::awaitable<void> {
                                    out.value = co_await test::async_retry_virtual(ctx, p, op, asio::use_awaitable);
                                  },
                                  std::move(handler));
                            });
                          });
}

outcome run_co_await_token(const scenario& s, const stamina::retry_policy& policy) {
  return run_co_await(s, policy, [](const script& sc, asio::io_context& ctx) { return token_op{sc, &ctx}; });
}

outcome run_co_await_awaitable(const scenario& s, const stamina::retry_policy& policy) {
  return run_co_await(s, policy, [](const script& sc, asio::io_context&) { return awaitable_op{sc}; });
}

outcome run_deferred(const scenario& s, const stamina::retry_policy& policy) {
  return run_with_handler(s, policy,
                          [](asio::io_context& ctx, const auto& p, const script& sc, outcome&, auto handler) {
                            with_scenario_fallback(token_op{sc, &ctx}, [&](auto op) {
                              auto deferred_call = test::async_retry_virtual(ctx, p, std::move(op), asio::deferred);
                              std::move(deferred_call)(std::move(handler));
                            });
                          });
}

outcome run_future(const scenario& s, const stamina::retry_policy& policy) {
  outcome out;
  script sc{&s};
  std::future<int> result;
  run_async(
      s, policy,
      [&](asio::io_context& ctx, const stamina::retry_policy& p, asio::cancellation_signal& signal) {
        with_scenario_fallback(token_op{sc, &ctx}, [&](auto op) {
          result = test::async_retry_virtual(ctx, p, std::move(op),
                                             asio::bind_cancellation_slot(signal.slot(), asio::use_future));
        });
        // Never ready before the io_context runs: the call cannot complete inside async_retry.
        BOOST_TEST((result.wait_for(0s) == std::future_status::timeout));
      },
      [&] { return result.wait_for(0s) == std::future_status::ready; });
  try {
    out.value = result.get();
  } catch (const boost::system::system_error& e) {
    out.result = e.code();
  }
  out.attempts = *sc.calls;
  return out;
}

// retry_context, blocking: the body of the loop is the attempt; an error code is reported with
// failed(ec), which ends the loop when the call gives up (the caller holds its code).
outcome run_context_blocking(const scenario& s, const stamina::retry_policy& policy) {
  outcome out;
  script sc{&s};
  const auto t0 = test::mock_clock::now();
  if (s.cancel_at)
    context_interrupt_at = t0 + std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(*s.cancel_at));
  error_code last;
  try {
    stamina::basic_retry_context<test::mock_clock> context(policy);
    for (stamina::attempt& attempt : context) {
      const int n = ++*sc.calls;
      test::mock_clock::advance(
          std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(s.attempt_seconds)));
      last = sc.result(n);
      if (last)
        attempt.failed(last);
      else
        out.value = 10 * n;
    }
    out.result = last;
  } catch (const boost::system::system_error& e) {  // throttled: nothing was ever sent
    out.result = e.code();
  }
  context_interrupt_at.reset();
  out.attempts = *sc.calls;
  return out;
}

// retry_context in a coroutine: co_await async_next(); the coroutine's end is the handler.
outcome run_context_co_await(const scenario& s, const stamina::retry_policy& policy) {
  return run_with_handler(
      s, policy, [](asio::io_context& ctx, const auto& p, const script& sc, outcome& out, auto handler) {
        asio::co_spawn(
            ctx,
            [&ctx, &out, sc, p]() -> asio::awaitable<void> {
              stamina::basic_retry_context<test::mock_clock> context(p);
              error_code last;
              while (stamina::attempt* attempt = co_await context.async_next()) {
                const int n = ++*sc.calls;
                test::virtual_timer timer(ctx);
                timer.expires_after(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(stamina::duration(sc.s->attempt_seconds)));
                co_await timer.async_wait(asio::use_awaitable);
                last = sc.result(n);
                if (last)
                  attempt->failed(last);
                else
                  out.value = 10 * n;
              }
              if (last) throw boost::system::system_error(last);
            },
            std::move(handler));
      });
}

struct driver {
  const char* name;
  outcome (*run)(const scenario&, const stamina::retry_policy&);
  bool interrupts_attempts;  // false: the blocking driver, which cannot stop a running attempt
  bool is_context = false;   // retry_context: no attempt time limit, no on_result, no stop inside an attempt
};

// The one documented difference: a blocking call has no "aborted" value, so an interrupted
// wait delivers the last failure.
error_code expected_result(const scenario& s, const driver& d) {
  return !d.interrupts_attempts && s.result == aborted ? s.results.back() : s.result;
}

const driver drivers[] = {
    {"sync", run_sync, false},
    {"callback, op(token)", run_callback_token, true},
    {"callback, op() -> awaitable", run_callback_awaitable, true},
    {"use_awaitable, op(token)", run_co_await_token, true},
    {"use_awaitable, op() -> awaitable", run_co_await_awaitable, true},
    {"deferred", run_deferred, true},
    {"use_future", run_future, true},
    {"retry_context, blocking", run_context_blocking, false, true},
    {"retry_context, co_await async_next()", run_context_co_await, true, true},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(scenarios)

BOOST_DATA_TEST_CASE(same_behaviour_on_every_driver, boost::unit_test::data::make(table), s) {
  for (const driver& d : drivers) {
    if (s.async_only && (!d.interrupts_attempts || d.is_context)) continue;
    if (d.is_context && s.policy().has_on_result()) continue;  // the context does not see results
    BOOST_TEST_CONTEXT("scenario " << s.name << ", driver " << d.name) {
      std::optional<stamina::testing_scope> testing;
      if (s.mode == switches::testing) testing.emplace(3);
      std::optional<stamina::testing_scope> virtual_time;
      if (s.mode == switches::virtual_time) virtual_time.emplace(stamina::virtual_time, 7);
      const auto virtual_start = stamina::virtual_clock::now();
      const auto mock_start = test::mock_clock::now();
      if (s.mode == switches::inactive) stamina::set_active(false);
      test::hook_recorder hooks;
      const stamina::retry_policy policy = s.policy();  // made under the switches, as a user would
      const outcome out = d.run(s, policy);
      stamina::set_active(true);

      BOOST_TEST(out.attempts == s.attempts);
      BOOST_TEST(out.result == expected_result(s, d));
      if (!s.result) BOOST_TEST(out.value == 10 * s.attempts);
      std::vector<double> waits;
      for (const auto& r : hooks.retries()) waits.push_back(r.wait_for);
      BOOST_TEST(waits == s.waits, boost::test_tools::per_element());
      if (virtual_time) {
        // Every wait was skipped: the virtual clock moved by their sum, the driver's clock not at all.
        const double skipped = stamina::duration(stamina::virtual_clock::now() - virtual_start).count();
        BOOST_TEST(skipped == std::accumulate(s.waits.begin(), s.waits.end(), 0.0), boost::test_tools::tolerance(1e-9));
        BOOST_TEST((test::mock_clock::now() - mock_start).count() < std::chrono::nanoseconds(1s).count());
        std::vector<double> listed;
        for (const auto w : virtual_time->waits()) listed.push_back(w.count());
        BOOST_TEST(listed == s.waits, boost::test_tools::per_element());
      }
      const auto give_ups = hooks.give_ups();
      if (s.reason) {
        BOOST_TEST_REQUIRE(give_ups.size() == 1u);
        BOOST_TEST((give_ups[0].reason == *s.reason), "give-up reason " << stamina::to_string(give_ups[0].reason));
        BOOST_TEST(give_ups[0].attempts == static_cast<unsigned>(s.attempts));  // sent
        BOOST_TEST(give_ups[0].held_back == static_cast<unsigned>(s.held_back));
      } else {
        BOOST_TEST(give_ups.empty());
      }
    }
  }
}

// A fallback stands in for every give-up but a cancelled call, on every driver that takes one
// (a retry_context has none: its caller's loop decides), told what the call would have delivered.
BOOST_DATA_TEST_CASE(fallback_stands_in_on_every_driver, boost::unit_test::data::make(table), s) {
  struct fallback_scope {
    fallback_scope() { falling_back = true; }
    ~fallback_scope() { falling_back = false; }
    fallback_scope(const fallback_scope&) = delete;
    fallback_scope& operator=(const fallback_scope&) = delete;
  } scope;
  for (const driver& d : drivers) {
    if (d.is_context || (s.async_only && !d.interrupts_attempts)) continue;
    BOOST_TEST_CONTEXT("scenario " << s.name << ", driver " << d.name) {
      std::optional<stamina::testing_scope> testing;
      if (s.mode == switches::testing) testing.emplace(3);
      std::optional<stamina::testing_scope> virtual_time;
      if (s.mode == switches::virtual_time) virtual_time.emplace(stamina::virtual_time, 7);
      if (s.mode == switches::inactive) stamina::set_active(false);
      test::hook_recorder hooks;
      const stamina::retry_policy policy = s.policy();
      fallback_told.reset();
      const outcome out = d.run(s, policy);
      stamina::set_active(true);

      BOOST_TEST(out.attempts == s.attempts);
      // A call that fails with retrying inactive gave up too (its one attempt), unreported.
      const give_up_reason reason = s.reason.value_or(give_up_reason::attempts_exhausted);
      if ((s.reason || s.result) && reason != give_up_reason::cancelled) {
        BOOST_TEST(out.result == ok);
        BOOST_TEST(out.value == 7);
        BOOST_TEST_REQUIRE(fallback_told.has_value());
        BOOST_TEST((fallback_told->reason == reason), "told " << stamina::to_string(fallback_told->reason));
        BOOST_TEST(fallback_told->attempts == static_cast<unsigned>(s.attempts));
        const error_code delivered = s.result ? expected_result(s, d) : error_code(stamina::error::retried_result);
        BOOST_TEST(fallback_told->last.error() == delivered);
        BOOST_TEST(hooks.give_ups().size() == (s.reason ? 1u : 0u));  // still reported, as without one
      } else {
        BOOST_TEST(!fallback_told.has_value());
        BOOST_TEST(out.result == expected_result(s, d));
        if (!s.result) BOOST_TEST(out.value == 10 * s.attempts);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
