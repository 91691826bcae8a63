// async_hedge on virtual time: one scenario table run against both op forms and both kinds of
// completion (a callback, use_awaitable), hooks and the budget. Cancellation, teardown, executors
// and threads: async_hedge_asio_tests.cpp.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hedge_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>

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
#include <functional>
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
const error_code timed_out = stamina::error::attempt_timeout;
const error_code circuit_open = stamina::error::circuit_open;
using stamina::give_up_reason;

using test::base_policy;

struct outcome {
  error_code ec;
  int value = 0;
  double ms = -1;  // virtual time from the start to the completion
};

enum class completion { callback, awaitable };
const char* to_string(completion c) { return c == completion::callback ? "callback" : "use_awaitable"; }

// Runs one hedged call to completion on virtual time.
template <class Op>
outcome run_hedge(asio::io_context& ctx, completion how, const stamina::hedging_policy& policy, const Op& op) {
  outcome out;
  const double origin = test::mock_clock::seconds();
  auto rec = std::make_shared<test::completion_record>();
  if (how == completion::callback) {
    test::initiate([&] {
      test::async_hedge_virtual(ctx, policy, op, test::once(rec, [&](auto first, int value) {
                                  out.ec = test::code_of(first);
                                  out.value = value;
                                  out.ms = (test::mock_clock::seconds() - origin) * 1e3;
                                }));
    });
  } else {
    auto body = [&]() -> asio::awaitable<void> {
      try {
        out.value = co_await test::async_hedge_virtual(ctx, policy, op, asio::use_awaitable);
      } catch (const boost::system::system_error& e) {
        out.ec = e.code();
      }
      out.ms = (test::mock_clock::seconds() - origin) * 1e3;
    };
    asio::co_spawn(ctx, body, test::once(rec, [](const std::exception_ptr& e) {
                     if (e) std::rethrow_exception(e);
                   }));
  }
  test::run_virtual(ctx, [&] { return rec->calls > 0; });
  BOOST_TEST(rec->calls == 1);
  return out;
}

struct scenario {
  std::string name;
  std::vector<planned_attempt> plan;
  std::function<void(stamina::hedging_policy&)> configure;
  error_code ec;  // expected
  int value;      // the attempt whose result is delivered
  double ms;      // when
  int started;
  int cancelled;
  give_up_reason reason = give_up_reason::attempts_exhausted;  // when it fails
};

std::vector<scenario> scenarios() {
  auto none = [](stamina::hedging_policy&) {};
  auto three = [](stamina::hedging_policy& p) { p.max_attempts(3); };
  std::vector<scenario> s;
  s.push_back({"a fast first attempt needs no hedge", {{5ms, {}}}, none, {}, 1, 5, 1, 0});
  s.push_back(
      {"a hedge wins over a slow first attempt, which is cancelled", {{100ms, {}}, {5ms, {}}}, none, {}, 2, 15, 2, 1});
  s.push_back({"the first attempt still wins after a hedge started; the hedge is cancelled",
               {{20ms, {}}, {50ms, {}}},
               none,
               {},
               1,
               20,
               2,
               1});
  s.push_back(
      {"a failure on() accepts starts the next attempt at once", {{2ms, refused}, {5ms, {}}}, none, {}, 2, 7, 2, 0});
  s.push_back({"a failure on() rejects ends the call and cancels the others",
               {{100ms, {}}, {5ms, reset}},
               none,
               reset,
               2,
               15,
               2,
               1});
  s.push_back({"when every attempt failed the last failure is delivered",
               {{1ms, refused}, {2ms, refused}, {3ms, refused}},
               three,
               refused,
               3,
               6,
               3,
               0});
  s.push_back({"hedges stop at max_attempts", {{100ms, {}}, {100ms, {}}, {5ms, {}}}, three, {}, 3, 25, 3, 2});
  s.push_back({"attempts limited to the deadline are cut there",
               {{100ms, {}}, {100ms, {}}},
               [](stamina::hedging_policy& p) { p.timeout(50ms).attempt_timeout(50ms); },
               timed_out,
               0,
               50,
               2,
               2});
  s.push_back({"an empty budget starts no hedge",
               {{30ms, {}}, {5ms, {}}},
               [](stamina::hedging_policy& p) {
                 auto empty = std::make_shared<stamina::hedge_budget>(0.0, 1.0);
                 BOOST_TEST_REQUIRE(empty->try_spend());
                 p.budget(empty);
               },
               {},
               1,
               30,
               1,
               0});
  s.push_back({"max_attempts 1 never hedges",
               {{30ms, {}}, {5ms, {}}},
               [](stamina::hedging_policy& p) { p.max_attempts(1); },
               {},
               1,
               30,
               1,
               0});
  s.push_back({"an open breaker lets nothing through",
               {{5ms, {}}},
               [](stamina::hedging_policy& p) {
                 auto open = std::make_shared<stamina::circuit_breaker>("hedged");
                 open->isolate();
                 p.breaker(open);
               },
               circuit_open,
               0,
               0,
               0,
               0,
               give_up_reason::circuit_open});
  s.push_back({"a breaker that opens stops the hedges; the last failure is delivered",
               {{1ms, refused}, {2ms, refused}, {3ms, {}}},
               [](stamina::hedging_policy& p) {
                 p.max_attempts(3).breaker(std::make_shared<stamina::circuit_breaker>("hedged"));
                 p.breaker()->minimum_calls(2).failure_ratio(0.5);
               },
               refused,
               2,
               3,
               2,
               0,
               give_up_reason::circuit_open});
  return s;
}

// What a scenario's fallback was told (the scenarios run again with one: every failure they
// deliver is a give-up it stands in for).
std::optional<stamina::give_up_info> fallback_told;
struct recording_fallback {
  int operator()(const stamina::give_up_info& info) const {
    fallback_told = info;
    return 7;
  }
};

template <class Op>
void check_scenario(const scenario& sc, completion how, bool awaitable_op, bool with_fallback = false) {
  BOOST_TEST_CONTEXT(sc.name << " [" << to_string(how) << ", " << (awaitable_op ? "op()" : "op(token)")
                             << (with_fallback ? ", fallback" : "") << "]") {
    test::io_fixture io;
    stamina::hedging_policy policy = base_policy();
    sc.configure(policy);
    Op op{&io.ctx, sc.plan};
    fallback_told.reset();
    const outcome got =
        with_fallback ? run_hedge(io.ctx, how, policy,
                                  stamina::detail::with_fallback_op(Op(op), stamina::fallback(recording_fallback{})))
                      : run_hedge(io.ctx, how, policy, op);
    if (with_fallback && sc.ec) {
      BOOST_TEST(!got.ec);
      BOOST_TEST(got.value == 7);
      BOOST_TEST_REQUIRE(fallback_told.has_value());
      BOOST_TEST(fallback_told->last.error() == sc.ec);
      BOOST_TEST(fallback_told->attempts == static_cast<unsigned>(sc.started));
      const auto expected_reason = sc.ec == reset ? give_up_reason::not_retryable : sc.reason;
      BOOST_TEST((fallback_told->reason == expected_reason), "told " << stamina::to_string(fallback_told->reason));
    } else {
      BOOST_TEST(!fallback_told.has_value());
      BOOST_TEST(got.ec == sc.ec);
    }
    // Failures as exceptions carry no value; a time-out delivers none.
    if (!with_fallback && (!sc.ec || (!awaitable_op && how == completion::callback)))
      BOOST_TEST(got.value == (sc.ec == timed_out ? 0 : sc.value));
    BOOST_TEST(std::abs(got.ms - sc.ms) <= 1.0, "completed at " << got.ms << " ms, expected " << sc.ms);
    BOOST_TEST(op.log->started == sc.started);
    BOOST_TEST(op.log->cancelled == sc.cancelled);
    // Every attempt returned before the call completed.
    BOOST_TEST(op.log->finished + op.log->cancelled == op.log->started);
    const stamina::hedge_stats stats = policy.stats();
    BOOST_TEST(stats.calls == 1U);
    BOOST_TEST(stats.hedges == static_cast<std::uint64_t>(std::max(sc.started - 1, 0)));
    BOOST_TEST(stats.cancelled == static_cast<std::uint64_t>(sc.cancelled));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hedge_scenarios)

BOOST_AUTO_TEST_CASE(every_scenario_with_every_op_form_and_completion) {
  for (const scenario& sc : scenarios())
    for (completion how : {completion::callback, completion::awaitable}) {
      check_scenario<test::planned_token_op>(sc, how, false);
      check_scenario<test::planned_awaitable_op>(sc, how, true);
    }
}

// A fallback stands in for each failure the table delivers, told why and what; successes pass.
BOOST_AUTO_TEST_CASE(every_scenario_with_a_fallback) {
  for (const scenario& sc : scenarios())
    for (completion how : {completion::callback, completion::awaitable}) {
      check_scenario<test::planned_token_op>(sc, how, false, true);
      check_scenario<test::planned_awaitable_op>(sc, how, true, true);
    }
}

// The table under the switches that make a call one attempt: set_active(false) (Python
// stamina's switch) and testing_scope(1). Every row then ends with its first attempt's outcome,
// at its time, nothing hedged; as for a retry, no deadline applies in either mode, and an
// attempt time limit only in testing mode (where it cuts the attempt).
BOOST_AUTO_TEST_CASE(every_scenario_under_the_one_attempt_switches) {
  struct inactive_scope {
    inactive_scope() { stamina::set_active(false); }
    ~inactive_scope() { stamina::set_active(true); }
    inactive_scope(const inactive_scope&) = delete;
    inactive_scope& operator=(const inactive_scope&) = delete;
  };
  for (const scenario& row : scenarios()) {
    scenario first_only = row;
    first_only.ec = row.plan[0].result;
    first_only.value = 1;
    first_only.ms = static_cast<double>(row.plan[0].latency.count());
    first_only.started = 1;
    first_only.cancelled = 0;
    stamina::hedging_policy configured = base_policy();
    row.configure(configured);
    const auto limit = configured.attempt_timeout();
    for (const bool inactive : {true, false}) {
      first_only.name = row.name + (inactive ? " [set_active(false)]" : " [testing_scope(1)]");
      if (!inactive && limit && stamina::duration(row.plan[0].latency) > *limit) {
        first_only.ec = timed_out;
        first_only.ms = limit->count() * 1e3;
        first_only.cancelled = 1;
      }
      if (!inactive && configured.breaker() &&
          configured.breaker()->current() == stamina::circuit_breaker::state::isolated) {
        // A testing scope leaves breakers on: an isolated one still lets nothing through.
        first_only.ec = circuit_open;
        first_only.value = 0;
        first_only.ms = 0;
        first_only.started = 0;
      }
      std::optional<inactive_scope> off;
      std::optional<stamina::testing_scope> testing;
      if (inactive)
        off.emplace();
      else
        testing.emplace(1);
      for (completion how : {completion::callback, completion::awaitable}) {
        check_scenario<test::planned_token_op>(first_only, how, false);
        check_scenario<test::planned_awaitable_op>(first_only, how, true);
      }
    }
  }
}

// A loser cancelled because another attempt won, and an attempt cut by the caller's
// cancellation, ended without an answer: the breaker does not count them as failures.
BOOST_AUTO_TEST_CASE(a_breaker_counts_answers_not_the_attempts_the_call_cancelled) {
  test::io_fixture io;
  auto breaker = std::make_shared<stamina::circuit_breaker>("hedged");
  breaker->minimum_calls(1).failure_ratio(0.5);  // one failure counted would open it
  // Every failure is retryable here, the loser's operation_aborted too: were it an answer, it
  // would count as a failure.
  stamina::hedging_policy policy(stamina::retry_on([](const stamina::failure&) { return true; }));
  policy.delay(10ms).breaker(breaker);
  test::planned_token_op op{&io.ctx, {{100ms, {}}, {5ms, {}}}};
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(!got.ec);
  BOOST_TEST(op.log->cancelled == 1);
  BOOST_TEST((breaker->current() == stamina::circuit_breaker::state::closed));
  // Not sent while it is isolated, and used again once reset.
  breaker->isolate();
  test::planned_token_op refused_op{&io.ctx, {{5ms, {}}}};
  BOOST_TEST(run_hedge(io.ctx, completion::callback, policy, refused_op).ec == circuit_open);
  BOOST_TEST(refused_op.log->started == 0);
  breaker->reset();
  test::planned_token_op again{&io.ctx, {{5ms, {}}}};
  BOOST_TEST(!run_hedge(io.ctx, completion::awaitable, policy, again).ec);
}

// A hedged call destroyed with its attempt in flight (the io_context destroyed) frees the
// breaker's probe place that attempt held; a hedge the breaker refuses is an event.
BOOST_AUTO_TEST_CASE(a_destroyed_call_frees_its_probe_and_a_refused_hedge_is_reported) {
  static double now = 0;
  auto breaker = std::make_shared<stamina::circuit_breaker>("hedged");
  breaker->clock(+[] { return now; }).minimum_calls(1).open_for(std::chrono::seconds(5)).probes(1);
  std::uint32_t ticket = 0;
  BOOST_REQUIRE(breaker->allow(&ticket));
  breaker->on_failure(ticket);  // open
  now += 10;                    // half-open at the next ask: one probe
  stamina::hedging_policy policy = base_policy();
  policy.breaker(breaker);
  {
    asio::io_context ctx;
    auto rec = std::make_shared<test::completion_record>();
    rec->may_be_abandoned = true;
    test::planned_token_op op{&ctx, {{100ms, {}}, {100ms, {}}}};
    test::async_hedge_virtual(ctx, policy, op, test::once(rec, [](error_code, int) {}));
    ctx.poll();
    BOOST_TEST(op.log->started == 1);
    BOOST_TEST(!breaker->allow());  // the probe is out
  }
  BOOST_TEST(breaker->allow(&ticket));  // freed when the call was destroyed
  breaker->on_failure(ticket);          // open again (a failed probe)

  // A breaker that opens at the first failure refuses the hedge it would start.
  now += 10;
  BOOST_REQUIRE(breaker->allow(&ticket));
  breaker->on_success(ticket);  // closed
  test::io_fixture io;
  std::vector<stamina::hedge_event_kind> kinds;
  policy.on_hedge([&kinds](const stamina::hedge_event& e) { kinds.push_back(e.kind); });
  test::hook_recorder hooks;
  test::planned_token_op failing{&io.ctx, {{1ms, refused}, {1ms, {}}}};
  const outcome got = run_hedge(io.ctx, completion::callback, policy, failing);
  BOOST_TEST(got.ec == refused);  // the last failure
  BOOST_TEST(failing.log->started == 1);
  BOOST_TEST((kinds == std::vector<stamina::hedge_event_kind>{stamina::hedge_event_kind::breaker_open}));
  BOOST_TEST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::circuit_open));

  // Refused at the start: the give-up reports circuit_open as its cause, and nothing was sent.
  breaker->isolate();
  test::planned_token_op unsent{&io.ctx, {{1ms, {}}}};
  BOOST_TEST(run_hedge(io.ctx, completion::callback, policy, unsent).ec == circuit_open);
  BOOST_TEST_REQUIRE(hooks.give_ups().size() == 2u);
  BOOST_TEST(hooks.give_ups()[1].caused_by == stamina::failure(circuit_open).describe());
  BOOST_TEST(hooks.give_ups()[1].attempts == 0u);
}

BOOST_AUTO_TEST_CASE(an_accepted_failure_starts_the_next_hedge_at_the_moment_it_fails) {
  test::io_fixture io;
  test::planned_token_op op{&io.ctx, {{2ms, refused}, {50ms, {}}, {5ms, {}}}};
  const stamina::hedging_policy policy = base_policy().max_attempts(3);
  const double origin = test::mock_clock::seconds();
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(!got.ec);
  BOOST_REQUIRE_EQUAL(op.log->start_times.size(), 3U);
  // attempt 2 at once after attempt 1 failed (2 ms), attempt 3 a full delay after attempt 2
  BOOST_TEST(std::abs((op.log->start_times[1] - origin) * 1e3 - 2) <= 1.0);
  BOOST_TEST(std::abs((op.log->start_times[2] - origin) * 1e3 - 12) <= 1.0);
  BOOST_TEST(got.value == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hedge_hooks_and_budget)

BOOST_AUTO_TEST_CASE(the_hook_sees_started_won_and_cancelled) {
  test::io_fixture io;
  std::vector<stamina::hedge_event> events;
  const stamina::hedging_policy policy =
      base_policy().on_hedge([&](const stamina::hedge_event& e) { events.push_back(e); });
  test::planned_token_op op{&io.ctx, {{100ms, {}}, {5ms, {}}}};
  run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_REQUIRE_EQUAL(events.size(), 3U);
  BOOST_TEST(events[0].kind == stamina::hedge_event_kind::started);
  BOOST_TEST(events[0].attempt == 2U);
  BOOST_TEST(std::abs(events[0].elapsed.count() - 0.010) < 0.0015);
  BOOST_TEST(events[1].kind == stamina::hedge_event_kind::won);
  BOOST_TEST(events[1].attempt == 2U);
  BOOST_TEST(events[2].kind == stamina::hedge_event_kind::cancelled);
  BOOST_TEST(events[2].attempt == 1U);
  BOOST_TEST(events[2].name == "backend");
  const stamina::hedge_stats s = policy.stats();
  BOOST_TEST(s.won == 1U);
}

BOOST_AUTO_TEST_CASE(the_budget_caps_hedges_to_its_ratio_of_calls) {
  test::io_fixture io;
  // 10 % of calls, burst 2: over 40 slow calls at most 2 + 0.1 * 40 = 6 hedges. Exactly: the
  // full bucket pays calls 1 and 2, then every 10th call has saved a token (11, 21, 31).
  auto budget = std::make_shared<stamina::hedge_budget>(0.1, 2.0);
  std::vector<stamina::hedge_event_kind> kinds;
  const stamina::hedging_policy policy =
      base_policy().budget(budget).on_hedge([&](const stamina::hedge_event& e) { kinds.push_back(e.kind); });
  int hedged = 0;
  for (int i = 0; i < 40; ++i) {
    test::planned_token_op op{&io.ctx, {{30ms, {}}, {30ms, {}}}};
    run_hedge(io.ctx, completion::callback, policy, op);
    hedged += op.log->started - 1;
  }
  const stamina::hedge_stats s = policy.stats();
  BOOST_TEST(s.calls == 40U);
  BOOST_TEST(hedged <= 2 + 0.1 * 40);
  BOOST_TEST(hedged == 5);
  BOOST_TEST(s.hedges == 5U);
  BOOST_TEST(s.denied == 35U);
  BOOST_TEST(std::count(kinds.begin(), kinds.end(), stamina::hedge_event_kind::budget_denied) == 35);
}

BOOST_AUTO_TEST_CASE(a_throwing_hook_is_contained) {
  test::io_fixture io;
  const stamina::hedging_policy policy =
      base_policy().on_hedge([](const stamina::hedge_event&) { throw std::runtime_error("hook failed"); });
  test::planned_token_op op{&io.ctx, {{100ms, {}}, {5ms, {}}}};
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(!got.ec);
  BOOST_TEST(got.value == 2);
}

BOOST_AUTO_TEST_CASE(the_adaptive_delay_follows_the_quantile_of_recent_latencies) {
  test::io_fixture io;
  // Constant delay 50 ms until the window has 32 samples; then the median of them.
  const stamina::hedging_policy policy = base_policy().delay(50ms).adaptive_delay(0.5);
  BOOST_TEST(policy.current_delay().count() == 0.050);
  for (int i = 0; i < 32; ++i) {
    test::planned_token_op op{&io.ctx, {{std::chrono::milliseconds(i % 2 == 0 ? 4 : 6), {}}}};
    run_hedge(io.ctx, completion::callback, policy, op);
  }
  BOOST_TEST(std::abs(policy.current_delay().count() - 0.005) <= 0.0011, policy.current_delay().count());
  // A slow first attempt is now hedged after ~5 ms instead of 50.
  test::planned_token_op op{&io.ctx, {{100ms, {}}, {1ms, {}}}};
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(got.value == 2);
  BOOST_TEST(got.ms <= 8.0, got.ms);
}

BOOST_AUTO_TEST_SUITE_END()

// The layers rules through the driver (stepped in hedge_protocol_tests.cpp): each attempt gets
// its own context, an inherited deadline cuts the attempts in flight, a passed one sends
// nothing, and a call made within an attempt keeps its failure from being hedged again.
BOOST_AUTO_TEST_SUITE(hedge_layers)

namespace {

using test::context_token_op;
using test::seen_attempt;

struct context_awaitable_op {
  test::planned_awaitable_op planned;
  std::shared_ptr<std::vector<seen_attempt>> seen = std::make_shared<std::vector<seen_attempt>>();

  asio::awaitable<int> operator()(const stamina::attempt_context& ctx) const {
    seen->push_back({ctx.attempt(), ctx.remaining() ? ctx.remaining()->count() : -1.0});
    co_return co_await planned();
  }
};

void check_seen(const std::vector<seen_attempt>& seen, const std::vector<double>& remaining) {
  BOOST_TEST_REQUIRE(seen.size() == remaining.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    BOOST_TEST(seen[i].num == i + 1);
    BOOST_TEST(std::abs(seen[i].remaining - remaining[i]) <= 1e-3,
               seen[i].remaining << " s left, expected " << remaining[i]);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_attempt_gets_its_context_in_both_op_forms) {
  for (const completion how : {completion::callback, completion::awaitable}) {
    BOOST_TEST_CONTEXT(to_string(how)) {
      test::io_fixture io;
      const auto policy = base_policy().deadline(test::mock_clock::now() + 50ms);
      context_token_op token_op{{&io.ctx, {{100ms, {}}, {5ms, {}}}}};
      token_op.reread_previous = true;
      outcome got = run_hedge(io.ctx, how, policy, token_op);
      BOOST_TEST(!got.ec);
      BOOST_TEST(got.value == 2);
      check_seen(*token_op.seen, {0.050, 0.040});
      BOOST_TEST(*token_op.stale == 0);  // attempt 1's context still says attempt 1
      const context_awaitable_op awaitable_op{{&io.ctx, {{100ms, {}}, {5ms, {}}}}};
      const auto later = base_policy().deadline(test::mock_clock::now() + 50ms);
      got = run_hedge(io.ctx, how, later, awaitable_op);
      BOOST_TEST(!got.ec);
      BOOST_TEST(got.value == 2);
      check_seen(*awaitable_op.seen, {0.050, 0.040});
    }
  }
}

BOOST_AUTO_TEST_CASE(an_inherited_deadline_cuts_the_attempts_in_flight) {
  test::io_fixture io;
  const auto policy = base_policy().attempts(3).deadline(test::mock_clock::now() + 25ms);
  const context_token_op op{{&io.ctx, {{1h, {}}, {1h, {}}, {1h, {}}}}};
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(got.ec == timed_out);
  BOOST_TEST(std::abs(got.ms - 25) <= 1.5, got.ms << " ms");  // not after an hour (the virtual timers step by ~1 ms)
  BOOST_TEST(op.planned.log->started == 3);                   // at 0, 10 and 20 ms; none would start at 30 ms
  BOOST_TEST(op.planned.log->cancelled == 3);
}

BOOST_AUTO_TEST_CASE(a_passed_deadline_sends_nothing_and_completes_with_deadline_exceeded) {
  for (const completion how : {completion::callback, completion::awaitable}) {
    BOOST_TEST_CONTEXT(to_string(how)) {
      test::io_fixture io;
      test::hook_recorder hooks;
      const auto policy = base_policy().deadline(test::mock_clock::now() - 1ms);
      const context_token_op op{{&io.ctx, {{1ms, {}}}}};
      const outcome got = run_hedge(io.ctx, how, policy, op);  // checks: once, not inline
      BOOST_TEST(got.ec == error_code(stamina::error::deadline_exceeded));
      BOOST_TEST(op.planned.log->started == 0);
      const auto give_ups = hooks.give_ups();
      BOOST_TEST_REQUIRE(give_ups.size() == 1U);
      BOOST_TEST((give_ups[0].reason == give_up_reason::deadline));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_failure_after_a_nested_call_is_not_hedged_again) {
  test::io_fixture io;
  test::hook_recorder hooks;
  const auto policy = base_policy().attempts(3);
  context_token_op op{{&io.ctx, {{2ms, refused}, {1ms, {}}}}};
  op.nest = true;
  const outcome got = run_hedge(io.ctx, completion::callback, policy, op);
  BOOST_TEST(got.ec == refused);  // delivered as it is
  BOOST_TEST(op.planned.log->started == 1);
  const auto give_ups = hooks.give_ups();
  BOOST_TEST_REQUIRE(give_ups.size() == 1U);
  BOOST_TEST((give_ups[0].reason == give_up_reason::pushback));
}

BOOST_AUTO_TEST_SUITE_END()
