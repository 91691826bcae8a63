// circuit_breaker on its own, on a clock moved by hand: when it opens, probes, closes; its
// events; hostile settings; four threads at once (TSan in CI). Every driver's handling of an open
// breaker is in the scenario table (scenario_tests.cpp).

#include <boost/test/unit_test.hpp>

#include <stamina/circuit_breaker.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using stamina::circuit_breaker;
using state = stamina::circuit_breaker::state;

namespace {

double now_seconds = 1000;
double fake_now() { return now_seconds; }

std::unique_ptr<circuit_breaker> breaker(unsigned minimum_calls = 4, double ratio = 0.5) {
  auto b = std::make_unique<circuit_breaker>("db");
  b->clock(&fake_now).minimum_calls(minimum_calls).failure_ratio(ratio).window(10s).open_for(5s);
  return b;
}

// Reports `n` answers, each allowed first.
void answer(circuit_breaker& b, int n, bool success) {
  for (int i = 0; i < n; ++i) {
    BOOST_TEST_REQUIRE(b.allow());
    success ? b.on_success() : b.on_failure();
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(circuit_breaker_states)

BOOST_AUTO_TEST_CASE(it_opens_at_the_failure_ratio_once_enough_answers_were_counted) {
  auto b = breaker(4, 0.5);
  answer(*b, 100, true);  // healthy: successes are not even counted
  answer(*b, 3, false);   // 3 answers counted: fewer than minimum_calls
  BOOST_TEST((b->current() == state::closed));
  answer(*b, 1, true);  // 4 counted, 3 failed: 75 % >= 50 %
  BOOST_TEST((b->current() == state::open));
  BOOST_TEST(!b->allow());
  BOOST_TEST(b->refusing());
  BOOST_TEST(b->stats().opened == 1U);
  BOOST_TEST(b->stats().refused == 1U);
}

BOOST_AUTO_TEST_CASE(a_low_failure_ratio_keeps_it_closed_and_a_quiet_window_stops_the_counting) {
  auto b = breaker(4, 0.6);
  for (int i = 0; i < 50; ++i) {
    answer(*b, 1, false);
    answer(*b, 2, true);  // one failure in three (at most half of what was counted)
  }
  BOOST_TEST((b->current() == state::closed));
  now_seconds += 25;  // two windows without an answer: the old failures are forgotten
  answer(*b, 1, true);
  answer(*b, 2, false);  // 2 of 3 counted: still fewer than minimum_calls
  BOOST_TEST((b->current() == state::closed));
}

BOOST_AUTO_TEST_CASE(after_open_for_one_probe_goes_and_its_success_closes_it) {
  auto b = breaker(2);
  answer(*b, 2, false);
  BOOST_TEST((b->current() == state::open));
  now_seconds += 4.9;
  BOOST_TEST(!b->allow());
  now_seconds += 0.2;
  BOOST_TEST(!b->refusing());
  BOOST_TEST(b->allow());  // the probe
  BOOST_TEST((b->current() == state::half_open));
  BOOST_TEST(!b->allow());  // one probe at a time (probes = 1)
  b->on_success();
  BOOST_TEST((b->current() == state::closed));
  BOOST_TEST(b->allow());
}

BOOST_AUTO_TEST_CASE(a_failed_probe_opens_it_again_for_open_for) {
  auto b = breaker(2);
  b->probes(2);
  answer(*b, 2, false);
  now_seconds += 5;
  BOOST_TEST(b->allow());
  BOOST_TEST(b->allow());
  BOOST_TEST(!b->allow());  // both probes are out
  b->on_success();
  BOOST_TEST((b->current() == state::half_open));  // every probe must succeed
  b->on_failure();
  BOOST_TEST((b->current() == state::open));
  BOOST_TEST(b->stats().opened == 2U);
  now_seconds += 4;
  BOOST_TEST(!b->allow());
}

BOOST_AUTO_TEST_CASE(an_abandoned_probe_frees_its_place_and_lost_probes_expire) {
  auto b = breaker(2);
  answer(*b, 2, false);
  now_seconds += 5;
  BOOST_TEST(b->allow());
  BOOST_TEST(!b->allow());
  b->on_abandoned();  // cancelled before its answer
  BOOST_TEST(b->allow());
  // That probe never reports back: after another open_for, probing starts afresh.
  BOOST_TEST(!b->allow());
  now_seconds += 5.5;
  BOOST_TEST(b->allow());
  b->on_success();
  BOOST_TEST((b->current() == state::closed));
}

// Found by review: an answer to an attempt let through before the breaker opened is not a probe's.
BOOST_AUTO_TEST_CASE(an_answer_from_before_a_change_of_state_is_ignored) {
  auto b = breaker(2);
  std::uint32_t early = 0;
  BOOST_TEST(b->allow(&early));  // sent while closed, answered much later
  answer(*b, 2, false);
  now_seconds += 5.5;
  std::uint32_t probe = 0;
  BOOST_TEST(b->allow(&probe));
  BOOST_TEST(b->refusing());  // the one probe is out: an attempt now would be refused
  b->on_success(early);       // stale: does not close it ...
  b->on_abandoned(early);     // ... nor free the probe's place
  BOOST_TEST((b->current() == state::half_open));
  BOOST_TEST(!b->allow());
  b->on_success(probe);
  BOOST_TEST((b->current() == state::closed));
}

// Found by review: a clock that returns NaN or goes back once must not stop the breaker's time.
BOOST_AUTO_TEST_CASE(a_bad_clock_reading_does_not_keep_it_open) {
  static double t = 50;
  static bool bad = false;
  circuit_breaker b("clock");
  b.clock(+[] { return bad ? std::nan("") : t; }).minimum_calls(2).open_for(5s);
  BOOST_TEST(b.allow());
  b.on_failure();
  bad = true;  // the reading when it opens
  b.on_failure();
  bad = false;
  BOOST_TEST((b.current() == state::open));
  t -= 100;  // the clock goes back: the latest good reading stands
  BOOST_TEST(!b.allow());
  t += 106;
  BOOST_TEST(b.allow());  // probing: time went on
}

BOOST_AUTO_TEST_CASE(isolate_and_reset_are_reported_as_transitions) {
  auto b = breaker(2);
  std::vector<std::pair<state, state>> seen;
  std::vector<std::uint32_t> sequences;
  b->on_transition([&](const circuit_breaker::transition& t) {
    BOOST_TEST(t.breaker == "db");
    seen.emplace_back(t.from, t.to);
    sequences.push_back(t.sequence);
  });
  b->isolate();
  now_seconds += 1000;
  BOOST_TEST(!b->allow());  // isolated: no probe ever
  b->reset();
  BOOST_TEST(b->allow());
  answer(*b, 2, false);
  now_seconds += 5;
  BOOST_TEST(b->allow());
  b->on_success();
  BOOST_TEST(sequences.size() == seen.size());
  BOOST_TEST(std::is_sorted(sequences.begin(), sequences.end()));  // one thread: in order, increasing
  const std::vector<std::pair<state, state>> expected = {{state::closed, state::isolated},
                                                         {state::isolated, state::closed},
                                                         {state::closed, state::open},
                                                         {state::open, state::half_open},
                                                         {state::half_open, state::closed}};
  BOOST_TEST((seen == expected));
  // A hook that throws is contained, and a hook may call the breaker.
  b->on_transition([&](const circuit_breaker::transition&) {
    (void)b->current();
    throw std::runtime_error("hook bug");
  });
  b->isolate();
  BOOST_TEST((b->current() == state::isolated));
}

BOOST_AUTO_TEST_CASE(invalid_settings_throw_naming_the_field) {
  circuit_breaker b;
  const auto names = [&](auto&& set, const std::string& field) {
    try {
      set();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find(field) != std::string::npos;
    }
    return false;
  };
  BOOST_TEST(names([&] { b.failure_ratio(0); }, "failure_ratio"));
  BOOST_TEST(names([&] { b.failure_ratio(std::nan("")); }, "failure_ratio"));
  BOOST_TEST(names([&] { b.failure_ratio(1.5); }, "failure_ratio"));
  BOOST_TEST(names([&] { b.minimum_calls(0); }, "minimum_calls"));
  BOOST_TEST(names([&] { b.window(stamina::duration(-1)); }, "window"));
  BOOST_TEST(names([&] { b.window(stamina::duration(1e300)); }, "window"));
  BOOST_TEST(names([&] { b.open_for(stamina::duration(std::numeric_limits<double>::infinity())); }, "open_for"));
  BOOST_TEST(names([&] { b.probes(0); }, "probes"));
  BOOST_TEST(names([&] { b.probes(1000000); }, "probes"));
}

// Found by review: a result the policy retries (a 503 as a value) counts as a failure.
BOOST_AUTO_TEST_CASE(a_retried_result_counts_as_a_failure) {
  auto b = std::shared_ptr<circuit_breaker>(breaker(2));
  const auto policy = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
                          .on_result([](int status) {
                            return status == 503 ? stamina::decision::overloaded() : stamina::decision::no_retry();
                          })
                          .wait_initial(0s)
                          .wait_jitter(0s)
                          .wait_max(0s)
                          .breaker(b);
  int calls = 0;
  const int got = stamina::retry(policy, [&] {
    ++calls;
    return 503;
  });
  BOOST_TEST(got == 503);  // delivered as the success it is
  BOOST_TEST(calls == 2);  // the second 503 opened the breaker: no third attempt
  BOOST_TEST((b->current() == state::open));
}

// A policy whose one protection is its breaker sends its first attempt past a closed breaker as a
// plain call (call_state::closed_breaker_admits): its success is still counted, its failure
// told with the ticket it was let through with. Failed, succeeded, succeeded, failed: with the
// successes counted the ratio stays at 0.5 (closed); without them the two failures would open it.
BOOST_AUTO_TEST_CASE(a_first_attempt_past_a_closed_breaker_is_counted_either_way) {
  auto b = std::shared_ptr<circuit_breaker>(breaker(2, 0.6));
  const auto policy = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
                          .attempts(1)
                          .timeout(std::nullopt)
                          .breaker(b);
  const auto call = [&](bool succeed) {
    return stamina::retry(policy, [&] {
      return succeed ? stamina::error_code() : stamina::error_code(boost::asio::error::connection_refused);
    });
  };
  BOOST_TEST(call(false) == boost::asio::error::connection_refused);
  BOOST_TEST(!call(true));
  BOOST_TEST(!call(true));
  BOOST_TEST(call(false) == boost::asio::error::connection_refused);
  BOOST_TEST((b->current() == state::closed));
  BOOST_TEST(call(false) == boost::asio::error::connection_refused);  // 3 of 5: 0.6
  BOOST_TEST((b->current() == state::open));
}

namespace {
// Has no move constructor: every return of it is a copy, and the first copy throws.
struct copy_throws_once {
  explicit copy_throws_once(int* c) : copies(c) {}
  copy_throws_once(const copy_throws_once& other) : copies(other.copies) {
    if ((*copies)++ == 0) throw std::runtime_error("copy failed");
  }
  copy_throws_once& operator=(const copy_throws_once&) = delete;
  int* copies;
};
}  // namespace

// An attempt past a closed breaker is told once, as the long way tells it: a copy of its value
// that throws inside the attempt is the attempt's failure, never a success then a failure (which,
// after an earlier failure, would open this breaker and end the call with the copy's exception).
BOOST_AUTO_TEST_CASE(an_attempt_past_a_closed_breaker_is_told_once) {
  auto b = std::shared_ptr<circuit_breaker>(breaker(3, 0.6));
  answer(*b, 1, false);
  const auto policy = stamina::retry_policy(stamina::on_exception<std::runtime_error>())
                          .wait_initial(0s)
                          .wait_jitter(0s)
                          .timeout(std::nullopt)
                          .breaker(b);
  int calls = 0;
  int copies = 0;
  const copy_throws_once v = stamina::retry(policy, [&] {
    ++calls;
    return copy_throws_once(&copies);
  });
  BOOST_TEST(v.copies == &copies);
  BOOST_TEST(calls == 2);
}

// The plain path keeps only a closed breaker's word: a half-open breaker's probe is left to the
// long way, which takes it (and its success closes the breaker).
BOOST_AUTO_TEST_CASE(a_half_open_breaker_s_probe_is_left_to_the_long_way) {
  auto b = std::shared_ptr<circuit_breaker>(breaker(2));
  answer(*b, 2, false);
  now_seconds += 5.1;
  const auto policy =
      stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused)).timeout(std::nullopt).breaker(b);
  std::uint32_t ticket = 0;
  BOOST_TEST(!stamina::detail::call_state::closed_breaker_admits(policy.call_spec(),
                                                                 stamina::detail::load_global_config(), ticket));
  BOOST_TEST((b->current() == state::open));  // not asked: no probe taken
  int calls = 0;
  BOOST_TEST(!stamina::retry(policy, [&] {
    ++calls;
    return stamina::error_code();
  }));
  BOOST_TEST(calls == 1);
  BOOST_TEST((b->current() == state::closed));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(circuit_breakers_by_key)

BOOST_AUTO_TEST_CASE(one_breaker_per_key_made_once_with_the_settings) {
  // [keyed-breakers]
  // One breaker per shard, made on first use with these settings; a policy per shard uses it.
  stamina::circuit_breakers shards("orders", [](stamina::circuit_breaker& b) {
    b.failure_ratio(0.5).minimum_calls(2).open_for(5s).probes(1);
    b.clock(&fake_now);  // the test's clock
  });
  const auto policy_for = [&](const std::string& shard) {
    return stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
        .name("orders." + shard)
        .breaker(shards[shard]);
  };
  // [keyed-breakers]
  BOOST_TEST(policy_for("shard-a").breaker() == shards["shard-a"]);
  const auto a = shards["shard-a"];
  const auto b = shards["shard-b"];
  BOOST_TEST(a == shards["shard-a"]);
  BOOST_TEST(a != b);
  BOOST_TEST(shards.size() == 2U);
  BOOST_TEST(a->name() == "orders/shard-a");
  answer(*a, 2, false);  // shard a is down ...
  BOOST_TEST((a->current() == state::open));
  BOOST_TEST((b->current() == state::closed));  // ... shard b is not
  BOOST_TEST(b->allow());
}

BOOST_AUTO_TEST_SUITE_END()
