// adaptive_throttle on its own, through the retry protocol, and the spread after a
// server-given wait (retry_after).

#include <boost/test/unit_test.hpp>

#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <stamina/adaptive_throttle.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/global.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>

#include <boost/asio/error.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using stamina::adaptive_throttle;
using stamina::decision;
using stamina::duration;
using stamina::give_up_reason;
using stamina::detail::action_kind;
using stamina::detail::give_up_result;
using stamina::detail::retry_protocol;

namespace {

const stamina::failure& refused = test::refused_failure;
const stamina::failure& reset = test::reset_failure;
stamina::retry_policy policy() { return test::refused_every_second(); }

// A clock test code moves by hand.
double fake_seconds = 0;
double fake_now() { return fake_seconds; }

// Drives a throttle into pacing: a failure starts watching, a second later `min_sent`
// attempts are not accepted. Then its clock stands still: no token ever arrives, every
// attempt is held back.
double held_seconds = 0;
std::shared_ptr<adaptive_throttle> held_throttle() {
  auto t = std::make_shared<adaptive_throttle>();
  t->clock(+[] { return held_seconds; });
  held_seconds += 10;
  t->on_overloaded();
  held_seconds += 1;
  for (int i = 0; i < 100 && !t->pacing(); ++i) BOOST_REQUIRE(t->admit());
  BOOST_REQUIRE(t->pacing());
  return t;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(throttle)

BOOST_AUTO_TEST_CASE(invalid_parameters_name_the_field) {
  BOOST_TEST(message_of([] { adaptive_throttle t(0.5); }).find("k must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(NAN); }).find("k must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 5); }).find("window must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 0); }).find("min_sent must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 21); }).find("min_sent must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle t(2, 10, 20); }) == "no exception");
  BOOST_TEST(message_of([] { adaptive_throttle().min_rate(0); }).find("min_rate must be") != std::string::npos);
  BOOST_TEST(message_of([] { adaptive_throttle().interval(INFINITY); }).find("interval must be") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(healthy_throttle_counts_nothing) {
  adaptive_throttle t;
  for (int i = 0; i < 1000; ++i) {
    BOOST_TEST(t.admit());
    t.on_accepted();
  }
  BOOST_TEST(!t.watching());
  BOOST_TEST(t.sent() == 0u);  // the success path writes nothing
}

BOOST_AUTO_TEST_CASE(a_failure_starts_watching_and_a_good_window_ends_it) {
  adaptive_throttle t(2.0, 10, 5);
  t.on_overloaded();
  BOOST_TEST(t.watching());
  BOOST_TEST(t.sent() == 1u);
  for (int i = 0; i < 18; ++i) {  // 19 sent, 18 accepted: no trouble
    BOOST_REQUIRE(t.admit());
    t.on_accepted();
  }
  BOOST_TEST(t.watching());
  BOOST_REQUIRE(t.admit());  // the 20th: a whole window (2 * 10) seen without trouble
  BOOST_TEST(!t.watching());
}

BOOST_AUTO_TEST_CASE(pacing_starts_on_the_sre_condition_not_before) {
  adaptive_throttle t(2.0, 100, 20);
  t.clock(&fake_now);
  fake_seconds = 0;
  t.on_overloaded();  // 1 sent, 0 accepted
  for (int i = 0; i < 18; ++i) BOOST_REQUIRE(t.admit());
  fake_seconds = 1;
  BOOST_TEST(!t.pacing());  // 19 sent: below min_sent
  BOOST_REQUIRE(t.admit());
  BOOST_TEST(t.pacing());  // 20 sent > 2 * 0 accepted, watched for an interval at least
  // Not before an interval of watching, whatever the counts.
  adaptive_throttle quick(2.0, 100, 20);
  quick.clock(&fake_now);
  quick.on_overloaded();
  for (int i = 0; i < 50; ++i) BOOST_REQUIRE(quick.admit());
  BOOST_TEST(!quick.pacing());
  fake_seconds = 1.5;
  BOOST_REQUIRE(quick.admit());
  BOOST_TEST(quick.pacing());
  // Two in three accepted with k = 2 never paces.
  adaptive_throttle ok(2.0, 100, 20);
  ok.on_overloaded();
  for (int i = 0; i < 100; ++i) {
    BOOST_REQUIRE(ok.admit());
    if (i % 3 != 0) ok.on_accepted();
  }
  BOOST_TEST(!ok.pacing());
}

BOOST_AUTO_TEST_CASE(paced_admission_follows_the_rate_and_adapts) {
  adaptive_throttle t(2.0, 100, 20);
  t.clock(&fake_now).min_rate(10).interval(1.0);
  fake_seconds = 100;
  t.on_overloaded();
  fake_seconds = 101;
  while (!t.pacing()) BOOST_REQUIRE(t.admit());
  BOOST_TEST(t.rate() == 10.0);  // nothing answered while watching: the lowest pace
  // Ask 100 times a second for 0.9 s: about 10 per second get through.
  int admitted = 0;
  for (int i = 0; i < 90; ++i) {
    fake_seconds += 0.01;
    if (t.admit()) {
      ++admitted;
      t.on_accepted();
    }
  }
  BOOST_TEST(admitted >= 8);
  BOOST_TEST(admitted <= 11);
  // The interval ends with every answer a success and attempts held back: the pace doubles,
  // up to the ceiling (the 20 attempts a second sent while watching).
  fake_seconds += 0.2;
  t.admit();
  const double first = t.rate();
  BOOST_TEST(first == 20.0, boost::test_tools::tolerance(1e-6));
  // Failures in the next interval: halved, and the failing pace becomes the ceiling.
  for (int i = 0; i < 100; ++i) {
    fake_seconds += 0.01;
    if (t.admit()) t.on_overloaded();
  }
  BOOST_TEST(t.rate() == first / 2, boost::test_tools::tolerance(1e-9));
  // Good again: straight back to the ceiling (a quarter of it is less than double), then
  // +25 % per interval.
  for (double expected : {first, 1.25 * first}) {
    for (int i = 0; i < 100; ++i) {
      fake_seconds += 0.01;
      if (t.admit()) t.on_accepted();
    }
    BOOST_TEST(t.rate() == expected, boost::test_tools::tolerance(1e-9));
  }
  // Demand falls below the pace, all answers fine: healthy again within two intervals.
  for (int i = 0; i < 25 && t.pacing(); ++i) {
    fake_seconds += 0.1;
    if (t.admit()) t.on_accepted();
  }
  BOOST_TEST(!t.pacing());
}

BOOST_AUTO_TEST_CASE(a_building_queue_lowers_the_pace_to_the_answered_rate) {
  adaptive_throttle t(2.0, 100, 20);
  t.clock(&fake_now).min_rate(100).interval(1.0);  // starts pacing at 100 per second
  fake_seconds = 0;
  t.on_overloaded();
  fake_seconds = 1;
  while (!t.pacing()) BOOST_REQUIRE(t.admit());
  BOOST_TEST(t.rate() == 100.0);
  t.min_rate(1);
  // About 100 admitted in the interval, only half of them answered, none failed.
  int admitted = 0;
  for (int i = 0; i < 200; ++i) {
    fake_seconds += 0.005;
    if (t.admit() && ++admitted % 2 == 0) t.on_accepted();
  }
  fake_seconds += 0.01;
  t.admit();
  // 0.9 * about 50 answered per second.
  BOOST_TEST(t.rate() > 40.0);
  BOOST_TEST(t.rate() < 46.0);
}

BOOST_AUTO_TEST_CASE(shed_attempt_waits_its_backoff_and_charges_no_budget) {
  test::hook_recorder hooks;
  auto budget = std::make_shared<stamina::retry_budget>(10, 1);
  const auto p = policy().attempts(3).throttle(held_throttle()).budget(budget);
  retry_protocol call(p);
  auto a = call.start(0s);  // held back: a local failure, then the backoff wait
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 1.0);
  BOOST_TEST(hooks.retries().empty());  // nothing reached the dependency: not reported as a retry
  BOOST_TEST(budget->tokens() == 10.0);
  a = call.wait_finished(1s, false);
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 1.0);  // holds do not make the backoff grow
  a = call.wait_finished(2s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::throttled));
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::throttled));
  BOOST_TEST(hooks.give_ups()[0].attempts == 0u);
  BOOST_TEST(hooks.give_ups()[0].held_back == 3u);
  BOOST_TEST(budget->tokens() == 10.0);
}

BOOST_AUTO_TEST_CASE(under_a_deadline_held_back_attempts_do_not_use_up_attempts) {
  test::hook_recorder hooks;
  const auto p = policy().attempts(2).timeout(10s).throttle(held_throttle());
  retry_protocol call(p);
  auto a = call.start(0s);
  double now = 0;
  while (a.kind == action_kind::wait) {
    now += a.wait().count();
    a = call.wait_finished(duration(now), false);
  }
  BOOST_TEST((a.result == give_up_result::throttled));
  BOOST_TEST(now == 9.0);  // nine holds of 1 s (holds do not grow the wait); a tenth would end at the deadline
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::throttled));
  BOOST_TEST(hooks.give_ups()[0].attempts == 0u);    // none was sent
  BOOST_TEST(hooks.give_ups()[0].held_back == 10u);  // more than `attempts`: the deadline bounds the pacing
}

BOOST_AUTO_TEST_CASE(cancelled_wait_after_a_shed_reports_the_shed) {
  test::hook_recorder hooks;
  const auto p = policy().throttle(held_throttle());
  retry_protocol call(p);
  BOOST_TEST((call.start(0s).kind == action_kind::wait));
  const auto a = call.wait_finished(0.5s, true);
  BOOST_TEST((a.result == give_up_result::aborted));
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::cancelled));
}

BOOST_AUTO_TEST_CASE(failures_are_answers_timeouts_and_overload_answers_are_not) {
  auto t = std::make_shared<adaptive_throttle>();
  const auto p = policy()
                     .attempt_timeout(1s)
                     .on(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
                       if (f.error() == boost::asio::error::connection_refused) return true;
                       if (f.error() == boost::asio::error::try_again) return stamina::decision::overloaded();
                       if (f.error() == boost::asio::error::no_buffer_space) return decision::retry_after(1s);
                       return false;
                     }))
                     .throttle(t);
  const stamina::failure overloaded{boost::system::error_code(boost::asio::error::try_again)};
  const stamina::failure busy{boost::system::error_code(boost::asio::error::no_buffer_space)};
  {
    retry_protocol call(p);
    call.start(0s);
    call.attempt_failed(refused, 0s, false);  // retryable, answered: watching starts, 1 answer
    BOOST_TEST(t->watching());
    BOOST_TEST(t->answered() == 1u);
    BOOST_TEST(t->accepted() == 0u);
    call.wait_finished(1s, false);
    call.attempt_timed_out(2s, false);  // timed out: overload, not an answer
    BOOST_TEST(t->answered() == 1u);
    call.wait_finished(4s, false);
    call.attempt_failed(overloaded, 4s, false);  // the dependency said so: not an answer
    call.wait_finished(8s, false);
    call.attempt_failed(busy, 8s, false);  // retry_after: not an answer
    BOOST_TEST(t->answered() == 1u);
    call.wait_finished(10s, false);
    call.attempt_failed(reset, 10s, false);  // not retryable: the dependency answered
    BOOST_TEST(t->answered() == 2u);
    BOOST_TEST(t->accepted() == 1u);
  }
  retry_protocol ok(p);
  ok.start(0s);
  ok.attempt_succeeded();
  BOOST_TEST(t->accepted() == 2u);
  BOOST_TEST(t->answered() == 3u);
  BOOST_TEST(t->sent() == 6u);
}

BOOST_AUTO_TEST_CASE(single_failing_call_in_a_fresh_process_gets_all_its_attempts) {
  // The defaults shed nothing until 20 attempts are remembered: one call that fails ten
  // times is never throttled.
  auto t = std::make_shared<adaptive_throttle>();
  const auto p = policy().wait_initial(0s).throttle(t);
  int calls = 0;
  const auto r = stamina::retry(p, [&] {
    ++calls;
    return boost::system::error_code(boost::asio::error::connection_refused);
  });
  BOOST_TEST(calls == 10);
  BOOST_TEST(r == boost::asio::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(blocking_call_shed_throughout_fails_with_throttled) {
  const auto p = policy().wait_initial(0s).attempts(3).throttle(held_throttle());
  int calls = 0;
  const auto r = stamina::retry(p, [&] {
    ++calls;
    return boost::system::error_code();
  });
  BOOST_TEST(calls == 0);
  BOOST_TEST(r == stamina::error::throttled);
  try {
    stamina::retry(p, [&] { ++calls; });
    BOOST_TEST(false, "no exception");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == stamina::error::throttled);
  }
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(inactive_retrying_ignores_the_throttle) {
  stamina::set_active(false);
  const auto p = policy().throttle(held_throttle());
  int calls = 0;
  stamina::retry(p, [&] { ++calls; });
  stamina::set_active(true);
  BOOST_TEST(calls == 1);
}

// A dependency with capacity to spare that fails attempts at random is what retries are for:
// the throttle must let the calls retry as they would without it. 50 calls a second for 20 s of
// fake time, attempts answered 2 ms after they are sent, stamina's defaults scaled down in time.
BOOST_AUTO_TEST_CASE(random_failures_with_spare_capacity_are_retried_not_paced) {
  for (const double failing : {0.5, 0.7}) {
    BOOST_TEST_CONTEXT(failing * 100 << " % of attempts failing") {
      auto t = std::make_shared<adaptive_throttle>();
      t->clock(&fake_now);
      fake_seconds = 1000;
      const auto p = policy().wait_initial(10ms).wait_max(200ms).wait_jitter(50ms).timeout(2s).attempts(10).throttle(t);
      struct event {
        double at;
        std::size_t call;
        bool operator>(const event& o) const { return at > o.at; }
      };
      std::priority_queue<event, std::vector<event>, std::greater<>> events;
      std::vector<std::unique_ptr<retry_protocol>> calls;
      std::vector<stamina::detail::action> next;
      std::vector<double> started;
      std::mt19937_64 rng(42);
      std::uniform_real_distribution<double> u(0, 1);
      int succeeded = 0;
      const double origin = fake_seconds;
      for (int i = 0; i < 1000; ++i) events.push({origin + i * 0.02, static_cast<std::size_t>(i)});
      while (!events.empty()) {
        const event e = events.top();
        events.pop();
        fake_seconds = e.at;
        if (e.call >= calls.size()) {  // a new call arrives
          calls.push_back(std::make_unique<retry_protocol>(p, nullptr, e.call + 1));
          started.push_back(e.at);
          next.push_back(calls.back()->start(0s));
        } else {
          retry_protocol& call = *calls[e.call];
          const duration elapsed(e.at - started[e.call]);
          stamina::detail::action& a = next[e.call];
          if (a.kind == action_kind::attempt)
            a = u(rng) < failing ? call.attempt_failed(refused, elapsed, false) : call.attempt_succeeded();
          else
            a = call.wait_finished(elapsed, false);
          if (a.kind == action_kind::deliver) ++succeeded;
        }
        const stamina::detail::action& a = next[e.call];
        if (a.kind == action_kind::attempt) events.push({e.at + 0.002, e.call});
        if (a.kind == action_kind::wait) events.push({e.at + a.wait().count(), e.call});
      }
      BOOST_TEST(succeeded >= (failing < 0.6 ? 990 : 950));
      BOOST_TEST(t->held_back() == 0u);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// Default throttling is off in this test program (test/main.cpp); these tests turn it on.
struct default_throttling_on {
  default_throttling_on() { stamina::set_default_throttling(true); }
  ~default_throttling_on() { stamina::set_default_throttling(false); }
};

BOOST_FIXTURE_TEST_SUITE(default_throttling, default_throttling_on)

stamina::retry_policy fast_policy(const std::string& name) {
  return policy().name(name).wait_initial(1ms).wait_max(1ms);
}

// The throttle a call of `p` answers to, as the call state resolves it when the call starts
// (`make`: as after a failure, registering the name's default throttle).
adaptive_throttle* throttle_of_a_call(const stamina::retry_policy& p, bool make) {
  stamina::detail::call_state call(p.call_spec());
  return call.throttle_in_effect(make);
}

BOOST_AUTO_TEST_CASE(a_policy_uses_the_default_throttle_of_its_name) {
  // A failure is reported to the name's throttle, made on first use.
  BOOST_TEST(throttle_of_a_call(policy(), true) == stamina::default_throttle(policy().name()).get());
  BOOST_TEST(throttle_of_a_call(policy().name("db"), true) == stamina::default_throttle("db").get());
  BOOST_TEST(throttle_of_a_call(policy().name("db").throttle(nullptr), true) == nullptr);
  auto own = std::make_shared<adaptive_throttle>();
  BOOST_TEST(throttle_of_a_call(policy().name("db").throttle(own), true) == own.get());
  BOOST_TEST(throttle_of_a_call(policy().name("db").throttle(own), false) == own.get());
  BOOST_TEST(stamina::default_throttle("db") != stamina::default_throttle("cache"));
  // Admission asks the name's throttle only when it is not healthy.
  const auto db = stamina::default_throttle("db");
  BOOST_TEST(throttle_of_a_call(policy().name("db"), false) == nullptr);
  db->on_failed();
  BOOST_TEST(db->watching());
  BOOST_TEST(throttle_of_a_call(policy().name("db"), false) == db.get());
  stamina::set_default_throttling(false);
  BOOST_TEST(throttle_of_a_call(policy().name("db"), true) == nullptr);
  stamina::set_default_throttling(true);
  const stamina::testing_scope testing;
  BOOST_TEST(throttle_of_a_call(policy().name("db"), true) == nullptr);
}

BOOST_AUTO_TEST_CASE(single_failing_call_in_a_healthy_process_gets_all_its_attempts) {
  int calls = 0;
  const auto r = stamina::retry(fast_policy("default.single"), [&] {
    ++calls;
    return boost::system::error_code(boost::asio::error::connection_refused);
  });
  BOOST_TEST(calls == 10);
  BOOST_TEST(r == boost::asio::error::connection_refused);
  BOOST_TEST(!stamina::default_throttle("default.single")->pacing());
}

BOOST_AUTO_TEST_CASE(a_failing_dependency_is_paced_for_every_call_of_its_name_only) {
  const std::string name = "default.storm";
  int calls = 0;
  const auto refused_op = [&] {
    ++calls;
    return boost::system::error_code(boost::asio::error::connection_refused);
  };
  const auto throttle = stamina::default_throttle(name);
  throttle->interval(0.01);  // start pacing after 10 ms of failures
  // Down: a whole window (100 attempts) without one accepted.
  for (int i = 0; i < 20 && !throttle->pacing(); ++i) {
    stamina::retry(fast_policy(name), refused_op);
    std::this_thread::sleep_for(2ms);
  }
  BOOST_TEST(throttle->pacing());
  // Paced at the lowest rate (1/s) on the real clock: most attempts of the next call are held
  // back, and the call ends with `throttled`.
  calls = 0;
  const auto r = stamina::retry(fast_policy(name).attempts(5), refused_op);
  BOOST_TEST(calls < 5);
  BOOST_TEST(r == stamina::error::throttled);
  // Another name, or a policy that opts out, is not affected.
  calls = 0;
  stamina::retry(fast_policy("default.other"), refused_op);
  BOOST_TEST(calls == 10);
  calls = 0;
  stamina::retry(fast_policy(name).throttle(nullptr), refused_op);
  BOOST_TEST(calls == 10);
}

// Default throttles are registered only for the calls that need one (a retryable failure), and
// the registry does not keep healthy throttles nobody holds: per-request names stay flat.
BOOST_AUTO_TEST_CASE(the_registry_holds_only_throttles_in_use) {
  const std::size_t before = stamina::detail::default_throttle_registry_size();
  for (int i = 0; i < 2000; ++i) {
    // Named per request and never failing, or opted out: nothing is registered.
    stamina::retry(fast_policy("per-request." + std::to_string(i)), [] { return boost::system::error_code(); });
    stamina::retry(fast_policy("opted-out." + std::to_string(i)).throttle(nullptr).attempts(2),
                   [] { return boost::system::error_code(boost::asio::error::connection_refused); });
  }
  BOOST_TEST(stamina::detail::default_throttle_registry_size() == before);
  // Failing once each: registered while in use, then forgotten.
  for (int i = 0; i < 20000; ++i) {
    int n = 0;
    stamina::retry(fast_policy("failing-once." + std::to_string(i)).wait_initial(0s).wait_max(0s), [&] {
      return ++n == 1 ? boost::system::error_code(boost::asio::error::connection_refused) : boost::system::error_code();
    });
  }
  // Pruning waits for the registry to double since the last prune (a threshold earlier tests
  // of this executable may have raised): flat means hundreds at most, never one per name.
  BOOST_TEST(stamina::detail::default_throttle_registry_size() <= before + 1024);
}

// The quick-start shape makes a policy per call: its successes take no lock and look nothing up.
BOOST_AUTO_TEST_CASE(a_policy_made_per_call_succeeds_without_a_registry_lookup) {
  const auto ok = [] { return boost::system::error_code(); };
  const auto call = [&] { stamina::retry(stamina::on_error(boost::asio::error::connection_refused), ok); };
  call();  // warm up: the first call of a call site may look once (another name may be unhealthy)
  const std::uint64_t before = stamina::detail::default_throttle_lookups();
  for (int i = 0; i < 1000; ++i) call();
  BOOST_TEST(stamina::detail::default_throttle_lookups() == before);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retry_after_spread)

BOOST_AUTO_TEST_CASE(never_earlier_spread_up_to_min_of_wait_and_jitter) {
  const auto p = policy().wait_jitter(1s);
  std::set<double> seen;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    stamina::backoff b(p, seed);
    const double short_wait = b.on_failure(decision::retry_after(0.25s), 0s).wait.count();
    BOOST_TEST(short_wait >= 0.25);
    BOOST_TEST(short_wait < 0.5);  // spread <= min(d, wait_jitter) = d
    const double long_wait = b.on_failure(decision::retry_after(10s), 0s).wait.count();
    BOOST_TEST(long_wait >= 10.0);
    BOOST_TEST(long_wait < 11.0);  // spread <= wait_jitter
    seen.insert(long_wait);
  }
  BOOST_TEST(seen.size() > 190u);  // clients told the same wait come back at different times
}

BOOST_AUTO_TEST_CASE(no_jitter_means_exactly_the_server_wait) {
  const auto p = policy().wait_jitter(0s);
  stamina::backoff b(p, 3);
  BOOST_TEST(b.on_failure(decision::retry_after(7s), 0s).wait.count() == 7.0);
}

BOOST_AUTO_TEST_CASE(spread_stays_inside_the_deadline) {
  const auto p = policy().wait_jitter(5s).timeout(10s);
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    stamina::backoff b(p, seed);
    const auto s = b.on_failure(decision::retry_after(4s), 5s);  // 1 s of room after the 4 s
    BOOST_TEST(s.retry);
    BOOST_TEST(s.wait.count() >= 4.0);
    BOOST_TEST(5.0 + s.wait.count() < 10.0);
  }
}

BOOST_AUTO_TEST_SUITE_END()
