// concurrency_limit: its arithmetic stepped by hand (limit_estimator), its queue, and the
// drivers' waits for a place on virtual time (order, deadline, cancellation, a grant racing a
// cancellation, the io_context destroyed with a call queued), the blocking driver on threads.
// What each driver does with a full or free limit is also in the scenario table
// (scenario_tests.cpp); four threads through strands are in stress_tests.cpp (TSan).

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/hedge_support.hpp>
#include <common/mock_clock.hpp>
#include <stamina/adaptive_throttle.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::concurrency_limit;
using stamina::detail::limit_estimator;

namespace {

limit_estimator::settings settings(double initial = 20) {
  limit_estimator::settings s;
  s.initial = initial;
  return s;
}

// A waiter that records its grant.
struct recorded_waiter : stamina::detail::limit_waiter {
  explicit recorded_waiter(std::vector<int>& log, int id) : log_(&log), id_(id) { wake = &record; }
  static void record(stamina::detail::limit_waiter& w) {
    auto& self = static_cast<recorded_waiter&>(w);
    self.log_->push_back(self.id_);
  }
  std::vector<int>* log_;
  int id_;
};

double virtual_seconds() { return test::mock_clock::seconds(); }

std::shared_ptr<concurrency_limit> limit_of(unsigned places) {
  auto l = std::make_shared<concurrency_limit>("db");
  l->clock(&virtual_seconds).max_limit(places);
  return l;
}

stamina::retry_policy limited(const std::shared_ptr<concurrency_limit>& l) {
  return stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).timeout(100s).limit(l);
}

// What the ops of a test saw: when each started and ended (virtual seconds), the most in flight.
struct ledger {
  std::vector<int> started;
  std::vector<double> started_at;
  int in_flight = 0;
  int most = 0;
  void start(int id) {
    started.push_back(id);
    started_at.push_back(test::mock_clock::seconds());
    most = std::max(most, ++in_flight);
  }
};

struct hook_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<hook_clock>;
  static constexpr bool is_steady = true;
  inline static int reads = 0;
  inline static int fire_at = -1;  // the read that runs `hook`
  inline static std::function<void()> hook;
  static time_point now() {
    if (++reads == fire_at && hook) hook();
    return time_point(duration(test::mock_clock::ticks.load()));
  }
};

// Frees the one place of `limit` (and isolates `to_isolate`, when given) just as a call queues:
// at the clock's second read, the first being the call's start and the second the queue's timer
// being set. Disarmed when the scope ends.
class place_freed_as_the_call_queues {
 public:
  place_freed_as_the_call_queues(std::shared_ptr<concurrency_limit> limit,
                                 std::shared_ptr<stamina::circuit_breaker> to_isolate) {
    hook_clock::reads = 0;
    hook_clock::fire_at = 2;
    hook_clock::hook = [this, limit = std::move(limit), to_isolate = std::move(to_isolate)] {
      fired = true;
      limit->release(std::nullopt, false);
      if (to_isolate) to_isolate->isolate();
    };
  }
  place_freed_as_the_call_queues(const place_freed_as_the_call_queues&) = delete;
  place_freed_as_the_call_queues& operator=(const place_freed_as_the_call_queues&) = delete;
  ~place_freed_as_the_call_queues() { hook_clock::hook = nullptr; }
  bool fired = false;
};

}  // namespace

template <>
struct boost::asio::wait_traits<hook_clock> {
  static hook_clock::duration to_wait_duration(const hook_clock::duration&) { return hook_clock::duration(0); }
  static hook_clock::duration to_wait_duration(const hook_clock::time_point&) { return hook_clock::duration(0); }
};

BOOST_AUTO_TEST_SUITE(limit_estimator_steps)

BOOST_AUTO_TEST_CASE(stays_put_while_callers_use_less_than_half) {
  limit_estimator e(settings(20));
  for (int i = 0; i < 100; ++i) e.on_sample(0.010, 3, false);
  BOOST_TEST(e.limit() == 20);
}

BOOST_AUTO_TEST_CASE(grows_by_about_its_square_root_while_in_use_and_answered_in_time) {
  limit_estimator e(settings(16));
  e.on_sample(0.010, 16, false);  // the first answer only sets the usual latency
  BOOST_TEST(e.limit() == 16);
  e.on_sample(0.010, 16, false);
  BOOST_TEST(e.limit() == 16 + 0.2 * 4, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(shrinks_to_what_was_in_flight_scaled_when_answers_come_slower_than_tolerated) {
  limit_estimator::settings twice = settings(20);
  twice.tolerance = 2;
  limit_estimator e(twice);
  e.on_sample(0.010, 2, false);
  for (int i = 0; i < 3; ++i) e.on_sample(0.010, 2, false);
  BOOST_TEST(e.limit() == 20);
  // Answers four times slower: the short average crosses twice the usual on the second one.
  e.on_sample(0.040, 6, false);
  const double after_one = e.limit();
  e.on_sample(0.040, 6, false);
  BOOST_TEST(after_one == 20);  // 0.019 s average: within the tolerance of 2
  const double gradient = 2 * e.long_rtt() / e.short_rtt();
  BOOST_TEST(gradient < 1);
  BOOST_TEST(e.limit() == 6 * std::max(0.5, gradient), boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(a_failure_counts_only_when_slower_than_usual) {
  limit_estimator::settings twice = settings(20);
  twice.tolerance = 2;
  limit_estimator e(twice);
  e.on_sample(0.010, 10, false);
  for (int i = 0; i < 30; ++i) e.on_sample(0.0001, 10, false, true);  // refused at once: nothing learned
  BOOST_TEST(e.long_rtt() == 0.010, boost::test_tools::tolerance(1e-12));
  for (int i = 0; i < 5; ++i) e.on_sample(0.200, 10, false, true);  // failures slowly: queueing
  BOOST_TEST(e.limit() < 20);
}

BOOST_AUTO_TEST_CASE(a_dropped_answer_halves_it_down_to_the_minimum) {
  limit_estimator e(settings(20));
  e.on_sample(0, 0, true);
  BOOST_TEST(e.limit() == 10);
  for (int i = 0; i < 20; ++i) e.on_sample(0, 0, true);
  BOOST_TEST(e.limit() == 1);
}

BOOST_AUTO_TEST_CASE(hostile_samples_are_ignored) {
  limit_estimator e(settings(20));
  e.on_sample(std::nan(""), 20, false);
  e.on_sample(-1, 20, false);
  e.on_sample(INFINITY, 20, false);
  BOOST_TEST(e.short_rtt() == 0);  // nothing learned
  BOOST_TEST(e.limit() == 20);
  e.on_sample(0, 20, false);  // an answer in no measurable time: no division by zero later
  e.on_sample(0.010, 20, false);
  BOOST_TEST(std::isfinite(e.limit()));
}

BOOST_AUTO_TEST_CASE(the_usual_latency_follows_a_fall_quickly_and_a_rise_slowly) {
  limit_estimator e(settings(20));
  e.on_sample(0.100, 1, false);
  for (int i = 0; i < 30; ++i) e.on_sample(0.010, 1, false);
  BOOST_TEST(e.long_rtt() < 0.020);
  for (int i = 0; i < 30; ++i) e.on_sample(0.100, 1, false);
  BOOST_TEST(e.long_rtt() < 0.040);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(concurrency_limit_queue)

BOOST_AUTO_TEST_CASE(hostile_settings_are_refused_naming_the_field) {
  concurrency_limit l;
  const auto names = [](auto f, const std::string& field) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find(field) != std::string::npos;
    }
    return false;
  };
  BOOST_TEST(names([&] { l.min_limit(0); }, "min_limit"));
  BOOST_TEST(names([&] { l.max_limit(100001); }, "max_limit"));
  BOOST_TEST(names([&] { l.initial_limit(5000); }, "initial_limit"));
  BOOST_TEST(names([&] { l.tolerance(std::nan("")); }, "tolerance"));
  BOOST_TEST(names([&] { l.tolerance(1); }, "tolerance"));
  BOOST_TEST(names([&] { l.clock(nullptr); }, "clock"));
  BOOST_TEST(l.limit() == 20u);  // unchanged by what it refused
}

BOOST_AUTO_TEST_CASE(waiters_get_places_in_arrival_order_as_places_free) {
  auto l = limit_of(2);
  std::vector<int> granted;
  recorded_waiter a(granted, 1), b(granted, 2), c(granted, 3);
  BOOST_TEST(l->try_acquire());
  BOOST_TEST(l->try_acquire());
  BOOST_TEST(!l->try_acquire());
  BOOST_TEST(!l->acquire_or_wait(a));
  BOOST_TEST(!l->acquire_or_wait(b));
  BOOST_TEST(!l->acquire_or_wait(c));
  BOOST_TEST(l->waiting() == 3u);
  BOOST_TEST(!l->try_acquire());  // nobody jumps the queue
  l->release(std::nullopt, false);
  BOOST_TEST(granted == std::vector<int>{1});
  BOOST_TEST(!l->withdraw(a));  // granted: it holds the place
  BOOST_TEST(l->withdraw(b));   // still waiting: it leaves
  l->release(std::nullopt, false);
  BOOST_TEST(granted == (std::vector<int>{1, 3}));
  BOOST_TEST(l->waiting() == 0u);
  BOOST_TEST(l->in_flight() == 2u);
  l->release(std::nullopt, false);
  l->release(std::nullopt, false);
  BOOST_TEST(l->in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(slow_answers_lower_the_limit_and_dropped_ones_halve_it) {
  concurrency_limit l;
  l.clock(&virtual_seconds);
  const auto answer_after = [&](double seconds, bool dropped) {
    BOOST_TEST_REQUIRE(l.try_acquire());
    const double sent = l.now();
    test::mock_clock::advance(stamina::duration(seconds));
    l.release(sent, dropped);
  };
  for (int i = 0; i < 5; ++i) answer_after(0.010, false);
  BOOST_TEST(l.limit() == 20u);
  answer_after(0.5, true);
  BOOST_TEST(l.limit() == 10u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(concurrency_limit_drivers)

// Three calls through a limit of one: each attempt starts when the one before answered (1 s
// each), in the order the calls were made, never two at once; the places all come back. With an
// attempt_timeout too, a queued attempt is a limited one once it has its place (the coroutine
// driver then makes its limiter after the wait for a place).
BOOST_AUTO_TEST_CASE(queued_attempts_go_in_arrival_order_on_the_composed_and_coroutine_drivers) {
  for (const bool coroutine : {false, true})
    for (const bool timed : {false, true}) {
      BOOST_TEST_CONTEXT((coroutine ? "use_awaitable" : "callback") << (timed ? ", attempt_timeout" : "")) {
        asio::io_context ctx;
        auto l = limit_of(1);
        auto policy = limited(l);
        if (timed) policy.attempt_timeout(5s);
        ledger book;
        int done = 0;
        const auto t0 = test::mock_clock::seconds();
        for (int id = 1; id <= 3; ++id) {
          auto op = [&ctx, &book, id]() -> asio::awaitable<void> {
            book.start(id);
            test::virtual_timer t(ctx, 1s);
            co_await t.async_wait(asio::use_awaitable);
            --book.in_flight;
          };
          if (coroutine) {
            asio::co_spawn(
                ctx,
                [&ctx, policy, op]() -> asio::awaitable<void> {
                  co_await test::async_retry_virtual(ctx, policy, op, asio::use_awaitable);
                },
                [&done](std::exception_ptr e) {
                  BOOST_TEST(!e);
                  ++done;
                });
          } else {
            test::async_retry_virtual(ctx, policy, op, [&done](std::exception_ptr e) {
              BOOST_TEST(!e);
              ++done;
            });
          }
        }
        test::run_virtual(ctx, [&] { return done == 3; });
        BOOST_TEST(done == 3);
        BOOST_TEST(book.started == (std::vector<int>{1, 2, 3}));
        BOOST_TEST(book.most == 1);
        BOOST_TEST_REQUIRE(book.started_at.size() == 3u);
        BOOST_TEST(book.started_at[2] - t0 == 2.0, boost::test_tools::tolerance(0.01));
        BOOST_TEST(l->in_flight() == 0u);
        BOOST_TEST(l->waiting() == 0u);
      }
    }
}

BOOST_AUTO_TEST_CASE(a_queued_call_gives_up_at_its_deadline_having_sent_nothing) {
  asio::io_context ctx;
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());  // held elsewhere for good
  int calls = 0;
  std::optional<error_code> result;
  const auto t0 = test::mock_clock::seconds();
  double ended = 0;
  test::async_retry_virtual(
      ctx, limited(l).timeout(5s),
      [&](auto token) {
        ++calls;
        return asio::post(ctx, asio::append(std::move(token), error_code{}));
      },
      [&](error_code ec) {
        result = ec;
        ended = test::mock_clock::seconds();
      });
  test::run_virtual(ctx, [&] { return result.has_value(); });
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST(*result == stamina::error::throttled);
  BOOST_TEST(calls == 0);
  BOOST_TEST(ended - t0 == 5.0, boost::test_tools::tolerance(0.01));  // it waited, until the deadline
  BOOST_TEST(l->waiting() == 0u);
  BOOST_TEST(l->in_flight() == 1u);
}

// The caller cancels while its call is queued, and a place is freed before the cancelled wait
// completes: the place granted to it is given back, not leaked; the call ends cancelled.
BOOST_AUTO_TEST_CASE(a_grant_that_races_a_cancellation_is_given_back) {
  for (const bool place_freed_too : {false, true}) {
    BOOST_TEST_CONTEXT("place freed in the same turn: " << place_freed_too) {
      asio::io_context ctx;
      auto l = limit_of(1);
      BOOST_TEST_REQUIRE(l->try_acquire());
      asio::cancellation_signal signal;
      int calls = 0;
      std::optional<error_code> result;
      test::async_retry_virtual(
          ctx, limited(l),
          [&](auto token) {
            ++calls;
            return asio::post(ctx, asio::append(std::move(token), error_code{}));
          },
          asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) { result = ec; }));
      BOOST_TEST(l->waiting() == 1u);
      signal.emit(asio::cancellation_type::terminal);
      if (place_freed_too) l->release(std::nullopt, false);  // granted to the call being cancelled
      test::run_virtual(ctx, [&] { return result.has_value(); });
      BOOST_TEST_REQUIRE(result.has_value());
      BOOST_TEST(*result == asio::error::operation_aborted);
      BOOST_TEST(calls == 0);
      BOOST_TEST(l->waiting() == 0u);
      BOOST_TEST(l->in_flight() == (place_freed_too ? 0u : 1u));
    }
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_with_a_call_queued_leaves_the_queue) {
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());
  {
    asio::io_context ctx;
    test::async_retry_virtual(
        ctx, limited(l), [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code{})); },
        [](error_code) { BOOST_FAIL("a handler of a destroyed io_context ran"); });
    // A second call takes the place freed below, then is destroyed mid-wait with it granted.
    test::async_retry_virtual(
        ctx, limited(l), [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code{})); },
        [](error_code) { BOOST_FAIL("a handler of a destroyed io_context ran"); });
    BOOST_TEST(l->waiting() == 2u);
    l->release(std::nullopt, false);  // granted to the first queued call, never run
  }
  BOOST_TEST(l->waiting() == 0u);
  BOOST_TEST(l->in_flight() == 0u);
}

// Attempts waiting in the queue are not attempts sent: a throttle that is watching the
// dependency must not start pacing because calls queue in the client.
BOOST_AUTO_TEST_CASE(queued_attempts_are_not_counted_by_the_throttle) {
  asio::io_context ctx;
  auto throttle = std::make_shared<stamina::adaptive_throttle>();
  throttle->clock(&virtual_seconds);
  throttle->on_overloaded();  // watching: it counts what is sent against what is answered
  BOOST_TEST_REQUIRE(throttle->watching());
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());
  int done = 0, calls = 0;
  for (int i = 0; i < 40; ++i)
    test::async_retry_virtual(
        ctx, limited(l).timeout(1s).throttle(throttle),
        [&](auto token) {
          ++calls;
          return asio::post(ctx, asio::append(std::move(token), error_code{}));
        },
        [&](error_code ec) {
          BOOST_TEST(ec == stamina::error::throttled);  // gave up in the queue, nothing sent
          ++done;
        });
  test::run_virtual(ctx, [&] { return done == 40; });
  BOOST_TEST(done == 40);
  BOOST_TEST(calls == 0);
  BOOST_TEST(!throttle->pacing());
  BOOST_TEST(throttle->held_back() == 0u);
}

// Failures that come back at once (a refused connection) are not round trips: thirty of them
// before normal answers must not make the limit take normal answers for queueing.
BOOST_AUTO_TEST_CASE(fast_failures_are_not_round_trips) {
  auto l = limit_of(1000);
  const auto policy = stamina::retry_policy(stamina::on_exception<std::runtime_error>())
                          .attempts(31)
                          .wait_initial(0s)
                          .wait_jitter(0s)
                          .limit(l);
  int n = 0;
  stamina::retry(policy, [&] {
    if (++n <= 30) throw std::runtime_error("refused");  // at once
    test::mock_clock::advance(1s);                       // answered in 1 s
  });
  for (int i = 0; i < 5; ++i) stamina::retry(policy, [] { test::mock_clock::advance(1s); });
  BOOST_TEST(l->limit() == 20u);  // as it started: normal answers are the usual latency
  BOOST_TEST(l->in_flight() == 0u);
}

// A place freed just as the call queues (in the initiating function), and the breaker opening at
// the same moment: the give-up that follows is still delivered from a fresh stack, never inside
// async_retry().
BOOST_AUTO_TEST_CASE(a_place_granted_inside_the_initiating_function_completes_from_a_fresh_stack) {
  asio::io_context ctx;
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());
  auto breaker = std::make_shared<stamina::circuit_breaker>("inline");
  place_freed_as_the_call_queues freed(l, breaker);
  auto rec = std::make_shared<test::completion_record>();
  std::optional<error_code> result;
  test::initiate([&] {
    return stamina::detail::async_retry_with_clock<hook_clock>(
        ctx, limited(l).breaker(breaker),
        [&](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code{})); },
        test::once(rec, [&](error_code ec) { result = ec; }));
  });
  BOOST_TEST_REQUIRE(freed.fired);
  BOOST_TEST(!result.has_value());  // not yet: posted
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!rec->called_inline);
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST(*result == stamina::error::circuit_open);
  BOOST_TEST(l->in_flight() == 0u);
}

// Hedged calls count against the same limit as retried ones: a hedged call queued behind a
// retried call's attempt starts when that attempt answers; its hedges are not sent while no place
// is free (limit_full, due again after each delay); both op forms, both kinds of token.
BOOST_AUTO_TEST_CASE(hedged_calls_wait_for_a_place_and_send_no_hedge_without_one) {
  for (const bool coroutine : {false, true}) {
    BOOST_TEST_CONTEXT((coroutine ? "use_awaitable, awaitable op" : "callback, token op")) {
      asio::io_context ctx;
      auto l = limit_of(1);
      int kinds_full = 0;
      const auto hedged = test::base_policy().attempts(3).budget(nullptr).timeout(100s).limit(l).on_hedge(
          [&](const stamina::hedge_event& e) { kinds_full += e.kind == stamina::hedge_event_kind::limit_full; });
      const auto t0 = test::mock_clock::seconds();
      bool retried_done = false;
      test::async_retry_virtual(
          ctx, limited(l),
          [&ctx]() -> asio::awaitable<void> {
            test::virtual_timer t(ctx, 1s);
            co_await t.async_wait(asio::use_awaitable);
          },
          [&](std::exception_ptr e) {
            BOOST_TEST(!e);
            retried_done = true;
          });
      // Attempts of 100 ms: with places, a hedge would start after 10 ms.
      const std::vector<test::planned_attempt> plan{{100ms, {}}, {100ms, {}}, {100ms, {}}};
      std::optional<int> value;
      std::shared_ptr<test::attempt_log> log;
      if (coroutine) {
        const test::planned_awaitable_op op{&ctx, plan};
        log = op.log;
        asio::co_spawn(
            ctx,
            [&ctx, hedged, op]() -> asio::awaitable<int> {
              co_return co_await test::async_hedge_virtual(ctx, hedged, op, asio::use_awaitable);
            },
            [&](std::exception_ptr e, int v) {
              BOOST_TEST(!e);
              value = v;
            });
      } else {
        const test::planned_token_op op{&ctx, plan};
        log = op.log;
        test::async_hedge_virtual(ctx, hedged, op, [&](error_code ec, int v) {
          BOOST_TEST(!ec);
          value = v;
        });
      }
      ctx.poll();                      // no virtual time passes
      BOOST_TEST(l->waiting() == 1u);  // behind the retried call's attempt
      test::run_virtual(ctx, [&] { return value.has_value() && retried_done; });
      BOOST_TEST_REQUIRE(value.has_value());
      BOOST_TEST(*value == 1);
      BOOST_TEST(log->started == 1);  // no hedge: the only place was its own
      BOOST_TEST_REQUIRE(log->start_times.size() == 1u);
      BOOST_TEST(log->start_times[0] - t0 == 1.0, boost::test_tools::tolerance(0.01));
      BOOST_TEST(kinds_full == 1);  // hedge 2, skipped each time it was due: reported once
      BOOST_TEST(l->in_flight() == 0u);
      BOOST_TEST(l->waiting() == 0u);
    }
  }
}

// A first attempt that waited for a place: its hedge is a full delay after it was sent, not
// after the call began (the queue has just drained: a hedge then is the worst extra load).
BOOST_AUTO_TEST_CASE(the_hedge_delay_of_a_call_that_waited_counts_from_its_first_attempt) {
  asio::io_context ctx;
  auto l = limit_of(2);
  std::uint32_t a = 0, b = 0;
  BOOST_TEST_REQUIRE(l->try_acquire(&a));
  BOOST_TEST_REQUIRE(l->try_acquire(&b));
  const auto policy = test::base_policy().delay(100ms).budget(nullptr).limit(l);
  const test::planned_token_op op{&ctx, {{300ms, {}}, {300ms, {}}}};
  const auto t0 = test::mock_clock::seconds();
  std::optional<error_code> result;
  test::async_hedge_virtual(ctx, policy, op, [&](error_code ec, int) { result = ec; });
  test::virtual_timer later(ctx, 500ms);
  later.async_wait([&](error_code) {
    l->release(a, std::nullopt, stamina::detail::limit_sample::none);
    l->release(b, std::nullopt, stamina::detail::limit_sample::none);
  });
  test::run_virtual(ctx, [&] { return result.has_value(); });
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST(!*result);
  BOOST_TEST_REQUIRE(op.log->start_times.size() == 2u);
  BOOST_TEST(op.log->start_times[0] - t0 == 0.5, boost::test_tools::tolerance(0.01));
  BOOST_TEST(op.log->start_times[1] - t0 == 0.6, boost::test_tools::tolerance(0.01));
  BOOST_TEST(l->in_flight() == 0u);
}

// A hedged call waiting for a place: its deadline ends the wait (throttled, nothing sent), and so
// does the caller's cancellation (operation_aborted), also when a place is granted to it in the
// same turn (given back); fail_fast does not wait. Always completed from a fresh stack.
BOOST_AUTO_TEST_CASE(a_queued_hedged_call_ends_at_its_deadline_on_cancellation_or_at_once_with_fail_fast) {
  enum class ending { deadline, cancelled, cancelled_and_granted, fail_fast };
  for (const ending how : {ending::deadline, ending::cancelled, ending::cancelled_and_granted, ending::fail_fast}) {
    BOOST_TEST_CONTEXT("ending " << static_cast<int>(how)) {
      asio::io_context ctx;
      auto l = limit_of(1);
      BOOST_TEST_REQUIRE(l->try_acquire());  // held elsewhere
      auto policy = test::base_policy().timeout(5s).limit(l);
      if (how == ending::fail_fast) policy.fail_fast();
      const test::planned_token_op op{&ctx, {{10ms, {}}}};
      asio::cancellation_signal signal;
      std::optional<error_code> result;
      bool inline_completion = false;
      const auto t0 = test::mock_clock::seconds();
      double ended = 0;
      bool initiating = true;
      test::async_hedge_virtual(ctx, policy, op, asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, int) {
                                  inline_completion = initiating;
                                  result = ec;
                                  ended = test::mock_clock::seconds();
                                }));
      initiating = false;
      if (how == ending::cancelled || how == ending::cancelled_and_granted) {
        signal.emit(asio::cancellation_type::terminal);
        if (how == ending::cancelled_and_granted) l->release(std::nullopt, false);
      }
      test::run_virtual(ctx, [&] { return result.has_value(); });
      BOOST_TEST_REQUIRE(result.has_value());
      BOOST_TEST(!inline_completion);
      BOOST_TEST(op.log->started == 0);
      BOOST_TEST(l->waiting() == 0u);
      switch (how) {
        case ending::deadline:
          BOOST_TEST(*result == stamina::error::throttled);
          BOOST_TEST(ended - t0 == 5.0, boost::test_tools::tolerance(0.01));
          BOOST_TEST(l->in_flight() == 1u);
          break;
        case ending::fail_fast:
          BOOST_TEST(*result == stamina::error::throttled);
          BOOST_TEST(ended - t0 == 0.0, boost::test_tools::tolerance(0.001));
          BOOST_TEST(l->in_flight() == 1u);
          break;
        case ending::cancelled:
        case ending::cancelled_and_granted:
          BOOST_TEST(*result == asio::error::operation_aborted);
          BOOST_TEST(l->in_flight() == (how == ending::cancelled_and_granted ? 0u : 1u));
          break;
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_with_a_hedged_call_queued_leaves_the_queue) {
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());
  {
    asio::io_context ctx;
    const test::planned_token_op op{&ctx, {{10ms, {}}}};
    const auto policy = test::base_policy().limit(l);
    test::async_hedge_virtual(ctx, policy, op,
                              [](error_code, int) { BOOST_FAIL("a handler of a destroyed io_context ran"); });
    test::async_hedge_virtual(ctx, policy, op,
                              [](error_code, int) { BOOST_FAIL("a handler of a destroyed io_context ran"); });
    BOOST_TEST(l->waiting() == 2u);
    l->release(std::nullopt, false);  // granted to the first queued call, never run
  }
  BOOST_TEST(l->waiting() == 0u);
  BOOST_TEST(l->in_flight() == 0u);
}

// A place freed just as a hedged call starts to wait (when the queue's timer is set): the call
// takes it at once and goes on from a fresh stack, never inside async_hedge(); the breaker,
// isolated at the same moment, is asked again and refuses, and the place goes back.
BOOST_AUTO_TEST_CASE(a_place_freed_as_a_hedged_call_queues_is_taken_from_a_fresh_stack) {
  for (const bool isolate : {false, true}) {
    BOOST_TEST_CONTEXT("breaker isolated too: " << isolate) {
      asio::io_context ctx;
      auto l = limit_of(1);
      BOOST_TEST_REQUIRE(l->try_acquire());
      auto breaker = std::make_shared<stamina::circuit_breaker>("inline-hedge");
      place_freed_as_the_call_queues freed(l, isolate ? breaker : nullptr);
      auto rec = std::make_shared<test::completion_record>();
      std::optional<error_code> result;
      int sent = 0;
      const auto policy = test::base_policy().timeout(5s).budget(nullptr).breaker(breaker).limit(l);
      test::initiate([&] {
        return stamina::detail::async_hedge_with_clock<hook_clock>(
            ctx, stamina::hedging_policy(policy),
            [&](auto token) {
              ++sent;
              return asio::post(ctx, asio::append(std::move(token), error_code{}));
            },
            test::once(rec, [&](error_code ec) { result = ec; }));
      });
      BOOST_TEST_REQUIRE(freed.fired);
      BOOST_TEST(!result.has_value());  // not yet: posted
      ctx.run();
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST(!rec->called_inline);
      BOOST_TEST_REQUIRE(result.has_value());
      if (isolate) {
        BOOST_TEST(*result == stamina::error::circuit_open);
        BOOST_TEST(sent == 0);
      } else {
        BOOST_TEST(!*result);
        BOOST_TEST(sent == 1);
      }
      BOOST_TEST(l->in_flight() == 0u);
      BOOST_TEST(l->waiting() == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_with_hedged_attempts_in_flight_gives_their_places_back) {
  auto l = limit_of(3);
  {
    asio::io_context ctx;
    const test::planned_token_op op{&ctx, {{10s, {}}, {10s, {}}}};
    test::async_hedge_virtual(ctx, test::base_policy().budget(nullptr).limit(l), op,
                              [](error_code, int) { BOOST_FAIL("a handler of a destroyed io_context ran"); });
    test::run_virtual(ctx, [&] { return op.log->started == 2; });
    BOOST_TEST(l->in_flight() == 2u);  // the first attempt and its hedge
  }
  BOOST_TEST(l->in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(retry_context_async_next_waits_for_a_place) {
  asio::io_context ctx;
  auto l = limit_of(1);
  BOOST_TEST_REQUIRE(l->try_acquire());
  int attempts = 0;
  bool done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        stamina::basic_retry_context<test::mock_clock> context(limited(l));
        while (co_await context.async_next() != nullptr) ++attempts;
      },
      [&](std::exception_ptr e) {
        BOOST_TEST(!e);
        done = true;
      });
  test::run_virtual(
      ctx, [] { return false; }, 1ms, 2s);
  BOOST_TEST(attempts == 0);  // queued
  l->release(std::nullopt, false);
  test::run_virtual(ctx, [&] { return done; });
  BOOST_TEST(attempts == 1);
  BOOST_TEST(l->in_flight() == 0u);
}

// Blocking calls on four threads through a limit of two: never more than two attempts at once;
// a stop request ends a queued wait.
BOOST_AUTO_TEST_CASE(blocking_calls_block_for_a_place_and_a_stop_ends_the_wait) {
  auto l = std::make_shared<concurrency_limit>("db");
  l->max_limit(2).min_limit(2);  // two places whatever the (real) round trips say
  const auto policy = stamina::retry_policy(stamina::on_exception<std::runtime_error>()).limit(l);
  std::atomic<int> in_flight{0}, most{0}, succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        stamina::retry(policy, [&] {
          const int now = ++in_flight;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::sleep_for(100us);
          --in_flight;
        });
        ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(succeeded.load() == 80);
  BOOST_TEST(most.load() <= 2);
  BOOST_TEST(l->in_flight() == 0u);

  BOOST_TEST_REQUIRE(l->try_acquire());
  BOOST_TEST_REQUIRE(l->try_acquire());
  std::stop_source stop;
  std::atomic<bool> ran{false}, stopped{false};
  std::thread waiter([&] {
    try {
      stamina::retry(policy, stop.get_token(), [&] { ran = true; });
    } catch (const boost::system::system_error& e) {
      stopped = e.code() == asio::error::operation_aborted;  // stopped before anything was sent
    }
  });
  while (l->waiting() == 0) std::this_thread::sleep_for(1ms);
  stop.request_stop();
  waiter.join();
  BOOST_TEST(!ran.load());
  BOOST_TEST(stopped.load());
  BOOST_TEST(l->waiting() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
