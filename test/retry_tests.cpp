// The synchronous twin: stamina::retry, driven with injected time except for the stop_token
// smoke test.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/mock_clock.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/adaptive_throttle.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/fallback.hpp>
#include <stamina/global.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>

#include <boost/asio/error.hpp>

#include <atomic>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#if defined(__GLIBCXX__) && defined(__linux__)
#include <pthread.h>
#include <unistd.h>
#endif

using namespace std::chrono_literals;
using boost::system::error_code;

namespace {

// Sleeps in virtual time and records every wait.
struct recording_sleeper {
  std::vector<double>* waits;
  bool operator()(stamina::duration d) const {
    waits->push_back(d.count());
    test::mock_clock::advance(d);
    return true;
  }
};

template <class F>
auto retry_virtual(const stamina::retry_policy& p, std::vector<double>& waits, F&& f) {
  return stamina::detail::retry_with<test::mock_clock>(p, recording_sleeper{&waits}, f);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sync_retry)

BOOST_AUTO_TEST_CASE(success_first_time_calls_once) {
  int calls = 0;
  const int v = stamina::retry(test::retry_transient(), [&] { return ++calls * 7; });
  BOOST_TEST(v == 7);
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(fails_twice_then_succeeds_with_growing_waits) {
  std::vector<double> waits;
  int calls = 0;
  const auto p = test::retry_transient().wait_jitter(0s);
  const std::string v = retry_virtual(p, waits, [&] {
    if (++calls < 3) throw test::transient_error("not yet");
    return std::string("ok");
  });
  BOOST_TEST(v == "ok");
  BOOST_TEST(calls == 3);
  BOOST_TEST(waits == (std::vector<double>{0.1, 0.2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(waits_are_within_the_additive_bounds) {
  std::vector<double> waits;
  BOOST_CHECK_THROW(retry_virtual(test::retry_transient().timeout(std::nullopt), waits,
                                  []() -> int { throw test::transient_error("always"); }),
                    test::transient_error);
  BOOST_TEST(waits.size() == 9u);  // 10 attempts, 9 waits
  for (std::size_t i = 0; i < waits.size(); ++i) {
    const double e = std::min(5.0, 0.1 * std::pow(2.0, static_cast<double>(i)));
    BOOST_TEST(waits[i] >= e);
    BOOST_TEST(waits[i] <= e + 1.0);
  }
}

BOOST_AUTO_TEST_CASE(give_up_rethrows_the_same_exception_object) {
  std::vector<double> waits;
  std::exception_ptr last_thrown;
  int calls = 0;
  try {
    retry_virtual(test::retry_transient().attempts(3), waits, [&]() -> int {
      ++calls;
      last_thrown = std::make_exception_ptr(test::transient_error("attempt " + std::to_string(calls)));
      std::rethrow_exception(last_thrown);
    });
    BOOST_FAIL("should have thrown");
  } catch (const test::transient_error& e) {
    BOOST_TEST(std::current_exception() == last_thrown);  // identity, not just equal text
    BOOST_TEST(std::string(e.what()) == "attempt 3");
  }
  BOOST_TEST(calls == 3);
}

// The plain call's first attempt returns its value directly and keeps its exception in a
// union until the machine is made: the later attempts must not run inside the handler of the
// first one's exception, and a move-only value must come out of either path.
BOOST_AUTO_TEST_CASE(later_attempts_do_not_run_inside_a_handler_of_the_first_exception) {
  std::vector<double> waits;
  std::vector<bool> handled;  // per attempt: an exception was being handled when it started
  const auto value = retry_virtual(test::retry_transient(), waits, [&] {
    handled.push_back(std::current_exception() != nullptr);
    if (handled.size() < 3) throw test::transient_error("not yet");
    return std::make_unique<int>(static_cast<int>(handled.size()));
  });
  BOOST_TEST(*value == 3);
  BOOST_TEST(handled == (std::vector<bool>{false, false, false}));
  BOOST_TEST(waits.size() == 2u);
  const auto first_time = stamina::retry(test::retry_transient(), [] { return std::make_unique<int>(7); });
  BOOST_TEST(*first_time == 7);
}

namespace {
// Counts its moves: a plain call's first success is returned as the prvalue f made.
struct move_counted {
  explicit move_counted(int* m) : moves(m) {}
  move_counted(move_counted&& other) noexcept : moves(other.moves) { ++*moves; }
  move_counted& operator=(move_counted&&) = delete;
  int* moves;
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_first_success_is_returned_without_a_move) {
  int moves = 0;
  const move_counted v = stamina::retry(test::retry_transient(), [&] { return move_counted(&moves); });
  BOOST_TEST(v.moves == &moves);
  BOOST_TEST(moves == 0);
}

#if defined(__GLIBCXX__) && defined(__linux__)
// pthread_cancel unwinds the thread with abi::__forced_unwind, which the attempt's catch must
// let through (a swallowed one aborts the process): the first attempt's path and a later one's.
BOOST_AUTO_TEST_CASE(a_thread_cancelled_in_an_attempt_unwinds_through_the_call) {
  for (const int blocking_attempt : {1, 2}) {
    struct shared {
      int blocking_attempt;
      std::atomic<bool> blocked{false};
      std::atomic<int> unwound{0};  // destructors of the attempt's and the call's objects ran
    } s{blocking_attempt};
    struct unwind_witness {
      std::atomic<int>* n;
      ~unwind_witness() { ++*n; }
    };
    pthread_t thread{};
    const auto body = [](void* arg) -> void* {
      auto& s = *static_cast<shared*>(arg);
      const unwind_witness outer{&s.unwound};
      std::vector<double> waits;
      int calls = 0;
      retry_virtual(test::retry_transient(), waits, [&]() -> int {
        const unwind_witness inner{&s.unwound};
        if (++calls < s.blocking_attempt) throw test::transient_error("once");
        s.blocked = true;
        for (;;) ::pause();  // a cancellation point
      });
      return nullptr;
    };
    BOOST_REQUIRE(::pthread_create(&thread, nullptr, body, &s) == 0);
    while (!s.blocked) std::this_thread::yield();
    BOOST_REQUIRE(::pthread_cancel(thread) == 0);
    void* result = nullptr;
    BOOST_REQUIRE(::pthread_join(thread, &result) == 0);
    BOOST_TEST(result == PTHREAD_CANCELED);
    BOOST_TEST(s.unwound.load() == (blocking_attempt == 1 ? 2 : 3));
  }
}
#endif

BOOST_AUTO_TEST_CASE(non_matching_exception_is_delivered_after_one_call) {
  std::vector<double> waits;
  int calls = 0;
  BOOST_CHECK_THROW(retry_virtual(test::retry_transient(), waits,
                                  [&]() -> int {
                                    ++calls;
                                    throw test::fatal_error("fatal");
                                  }),
                    test::fatal_error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(waits.empty());
}

BOOST_AUTO_TEST_CASE(void_function) {
  std::vector<double> waits;
  int calls = 0;
  retry_virtual(test::retry_transient(), waits, [&] {
    if (++calls == 1) throw test::transient_error("once");
  });
  BOOST_TEST(calls == 2);
  BOOST_TEST(waits.size() == 1u);
}

BOOST_AUTO_TEST_CASE(error_code_give_up_returns_last_error) {
  std::vector<double> waits;
  int calls = 0;
  const auto p = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused)).attempts(4);
  const error_code ec = retry_virtual(p, waits, [&] {
    ++calls;
    return calls < 4 ? error_code(boost::asio::error::connection_refused) : error_code(boost::asio::error::timed_out);
  });
  // The 4th attempt failed with a code `on` rejects: it is delivered as is.
  BOOST_TEST(calls == 4);
  BOOST_TEST((ec == boost::asio::error::timed_out));
  const error_code last = retry_virtual(p, waits, [] { return error_code(boost::asio::error::connection_refused); });
  BOOST_TEST((last == boost::asio::error::connection_refused));
}

BOOST_AUTO_TEST_CASE(error_code_success) {
  std::vector<double> waits;
  int calls = 0;
  const auto p = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused));
  const error_code ec = retry_virtual(
      p, waits, [&] { return ++calls < 2 ? error_code(boost::asio::error::connection_refused) : error_code(); });
  BOOST_TEST(!ec);
  BOOST_TEST(calls == 2);
}

#if !defined(STAMINA_STANDALONE_ASIO)  // boost::system::result: Boost only
BOOST_AUTO_TEST_CASE(result_values) {
  std::vector<double> waits;
  int calls = 0;
  const auto p =
      stamina::retry_policy(stamina::on_error(boost::system::errc::resource_unavailable_try_again)).attempts(3);
  auto r = retry_virtual(p, waits, [&]() -> boost::system::result<int> {
    if (++calls < 3) return make_error_code(boost::system::errc::resource_unavailable_try_again);
    return 42;
  });
  BOOST_TEST(r.has_value());
  BOOST_TEST(*r == 42);
  auto failed = retry_virtual(p, waits, [&]() -> boost::system::result<int> {
    return make_error_code(boost::system::errc::resource_unavailable_try_again);
  });
  BOOST_TEST(!failed.has_value());
  BOOST_TEST((failed.error() == boost::system::errc::resource_unavailable_try_again));
}
#endif

BOOST_AUTO_TEST_CASE(deadline_with_injected_time) {
  std::vector<double> waits;
  int calls = 0;
  const auto p = test::retry_transient().attempts(std::nullopt).timeout(5s).wait_jitter(0s).wait_initial(1s);
  const auto start = test::mock_clock::now();
  BOOST_CHECK_THROW(retry_virtual(p, waits,
                                  [&]() -> int {
                                    ++calls;
                                    test::mock_clock::advance(500ms);  // each attempt takes half a second
                                    throw test::transient_error("slow and failing");
                                  }),
                    test::transient_error);
  // t=0.5 fail, wait 1 -> t=2 fail, wait 2 -> t=4.5 fail: a 4 s wait would end at 8.5 > 5.
  BOOST_TEST(calls == 3);
  BOOST_TEST(waits == (std::vector<double>{1.0, 2.0}), boost::test_tools::per_element());
  BOOST_TEST(std::chrono::duration<double>(test::mock_clock::now() - start).count() <= 5.0);
}

BOOST_AUTO_TEST_CASE(testing_mode_forced_attempts_zero_waits_timeout_ignored) {
  stamina::testing_scope scope(4);
  std::vector<double> waits;
  int calls = 0;
  const auto p = test::retry_transient().attempts(2).timeout(1s);
  BOOST_CHECK_THROW(retry_virtual(p, waits,
                                  [&]() -> int {
                                    ++calls;
                                    test::mock_clock::advance(10s);  // way past the ignored timeout
                                    throw test::transient_error("x");
                                  }),
                    test::transient_error);
  BOOST_TEST(calls == 4);
  BOOST_TEST(waits.empty());  // a zero wait is no wait: the sleeper is never called
}

BOOST_AUTO_TEST_CASE(testing_mode_with_real_sleep_is_instant) {
  stamina::testing_scope scope(3);
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(stamina::retry(test::retry_transient().wait_initial(10s),
                                   [&]() -> int {
                                     ++calls;
                                     throw test::transient_error("x");
                                   }),
                    test::transient_error);
  BOOST_TEST(calls == 3);
  BOOST_TEST(std::chrono::steady_clock::now() - t0 < 5s);  // generous: the waits were 10 s+
}

BOOST_AUTO_TEST_CASE(stop_token_wakes_a_wait_and_delivers_last_failure) {
  std::stop_source stop;
  int calls = 0;
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto p = test::retry_transient().wait_initial(60s).wait_max(60s);
  BOOST_CHECK_THROW(stamina::retry(p, stop.get_token(),
                                   [&]() -> int {
                                     ++calls;
                                     throw test::transient_error("down");
                                   }),
                    test::transient_error);
  stopper.join();
  BOOST_TEST(calls == 1);
  BOOST_TEST(std::chrono::steady_clock::now() - t0 < 30s);  // far less than the 60 s wait
}

BOOST_AUTO_TEST_CASE(stop_requested_before_start_still_makes_one_attempt) {
  std::stop_source stop;
  stop.request_stop();
  int calls = 0;
  const error_code ec = stamina::retry(stamina::on_error(boost::asio::error::try_again), stop.get_token(), [&] {
    ++calls;
    return error_code(boost::asio::error::try_again);
  });
  BOOST_TEST(calls == 1);
  BOOST_TEST((ec == boost::asio::error::try_again));
}

// "Retry around the session": a session that ran for a minute before it dropped does not make
// the next reconnect wait longer than the first one did.
BOOST_AUTO_TEST_CASE(a_reconnect_loop_does_not_drift_with_reset_after) {
  std::vector<double> waits;
  int calls = 0;
  const auto p = test::retry_transient().wait_jitter(0s).timeout(std::nullopt).attempts(5).reset_after(30s);
  BOOST_CHECK_THROW(retry_virtual(p, waits,
                                  [&] {
                                    // connect fails twice, then a session of a minute drops; again
                                    if (++calls == 9) throw test::fatal_error("shutting down");
                                    if (calls % 3 == 0) test::mock_clock::advance(60s);
                                    throw test::transient_error("dropped");
                                  }),
                    test::fatal_error);
  // Each session's drop starts the schedule again (attempts too: 8 failures under attempts(5)).
  BOOST_TEST(waits == (std::vector<double>{0.1, 0.2, 0.1, 0.2, 0.4, 0.1, 0.2, 0.4}), boost::test_tools::per_element());
}

// The newcomer's outage: a paced call still throws the dependency's own exception (the same
// object), so `catch (const db_error&)` keeps working; the give-up says what was held back.
BOOST_AUTO_TEST_CASE(a_throttled_call_throws_the_dependency_s_own_exception) {
  // A throttle that saw overload and paces at its floor, on a clock that then stands still: it
  // admits the first attempt and holds back every later one.
  static double now = 0;
  auto throttle = std::make_shared<stamina::adaptive_throttle>();
  throttle->clock(+[] { return now; });
  now += 10;
  throttle->on_overloaded();
  now += 1;
  for (int i = 0; i < 100 && !throttle->pacing(); ++i) throttle->admit();
  throttle->admit();
  now += 1;
  test::hook_recorder hooks;
  std::vector<double> waits;
  int calls = 0;
  const auto p = test::retry_transient().attempts(3).wait_jitter(0s).throttle(throttle);
  BOOST_CHECK_EXCEPTION(retry_virtual(p, waits,
                                      [&]() -> int {
                                        ++calls;
                                        throw test::transient_error("db down");
                                      }),
                        test::transient_error,
                        [](const test::transient_error& e) { return std::string(e.what()) == "db down"; });
  BOOST_TEST(calls == 1);
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == stamina::give_up_reason::throttled));
  BOOST_TEST(hooks.give_ups()[0].attempts == 1u);  // sent
  BOOST_TEST(hooks.give_ups()[0].held_back >= 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(no_silent_no_ops)

BOOST_AUTO_TEST_CASE(a_throwing_classifier_is_reported_and_not_retried) {
  const captured_stderr err;
  int calls = 0;
  const auto policy = quick(stamina::retry_on([](const stamina::failure&) -> bool { throw std::logic_error("oops"); }));
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 9)), test::transient_error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(
      err.str().find("classifier failed (threw, or returned an invalid wait), so the failure is not retried: oops") !=
      std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_negative_wait_is_reported_and_not_retried) {
  // [invalid-wait]
  const captured_stderr err;
  int calls = 0;
  const auto policy = quick(stamina::retry_on([](const stamina::failure&) { return -1s; }));
  BOOST_CHECK_THROW(stamina::retry(policy, fail_n_times(calls, 9)), test::transient_error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(err.str().find("wait must be >= 0") != std::string::npos);
  // [invalid-wait]
}

BOOST_AUTO_TEST_CASE(attempt_timeout_is_rejected_by_the_blocking_drivers) {
  // [blocking-attempt-timeout]
  int calls = 0;
  const auto policy = test::retry_transient().attempt_timeout(1s);
  const auto names_the_field = [](const std::invalid_argument& e) {
    return std::string(e.what()).find("attempt_timeout") != std::string::npos;
  };
  BOOST_CHECK_EXCEPTION(stamina::retry(policy, fail_n_times(calls, 0)), std::invalid_argument, names_the_field);
  BOOST_CHECK_EXCEPTION(stamina::retry_context{policy}, std::invalid_argument, names_the_field);
  BOOST_TEST(calls == 0);  // rejected before the first attempt
  // [blocking-attempt-timeout]
}

// The rejection holds whichever way the call goes (the plain call's inline path, the closed
// breaker's, the call state's), through every overload, whatever the process switches say.
BOOST_AUTO_TEST_CASE(attempt_timeout_is_rejected_on_every_path_and_overload) {
  using stamina::retry_policy;
  const auto base = test::retry_transient().attempt_timeout(1s);
  const std::vector<retry_policy> policies{base,
                                           retry_policy(base).breaker(std::make_shared<stamina::circuit_breaker>()),
                                           retry_policy(base).budget(std::make_shared<stamina::retry_budget>()),
                                           retry_policy(base).limit(std::make_shared<stamina::concurrency_limit>()),
                                           retry_policy(base).deadline(std::chrono::steady_clock::now() + 1h),
                                           retry_policy(base).throttle(std::make_shared<stamina::adaptive_throttle>())};
  int calls = 0;
  const auto f = [&calls] { return ++calls; };
  const auto with_context = [&calls](const stamina::attempt_context&) { return ++calls; };
  const stamina::fallback substitute([] { return -1; });
  const auto check_all = [&] {
    for (const retry_policy& p : policies) {
      const std::stop_source stop;
      BOOST_CHECK_THROW(stamina::retry(p, f), std::invalid_argument);
      BOOST_CHECK_THROW(stamina::retry(p, with_context), std::invalid_argument);
      BOOST_CHECK_THROW(stamina::retry(p, stop.get_token(), f), std::invalid_argument);
      BOOST_CHECK_THROW(stamina::retry(p, f, substitute), std::invalid_argument);
      BOOST_CHECK_THROW(stamina::retry(p, stop.get_token(), f, substitute), std::invalid_argument);
      BOOST_CHECK_THROW(stamina::retry(retry_policy(p).on_result([](int v) { return v < 0; }), f),
                        std::invalid_argument);
    }
  };
  check_all();
  {
    const stamina::testing_scope testing(1);
    check_all();
  }
  stamina::set_active(false);
  check_all();
  stamina::set_active(true);
  BOOST_TEST(calls == 0);  // never an attempt
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(on_result)

BOOST_AUTO_TEST_CASE(a_returned_value_is_retried_until_the_predicate_accepts_it) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_result([](int status) { return status == 503; });
  const int status = stamina::retry(policy, [&] { return ++calls < 3 ? 503 : 200; });
  BOOST_TEST(status == 200);
  BOOST_TEST(calls == 3);
}

BOOST_AUTO_TEST_CASE(on_give_up_the_last_result_is_returned_as_the_success_it_was) {
  int calls = 0;
  std::optional<stamina::give_up_details> gave_up;
  const auto policy = quick(test::retry_transient())
                          .attempts(2)
                          .on_result([](const std::string& body) { return body == "busy"; })
                          .on_give_up([&](const stamina::give_up_details& d) { gave_up = d; });
  BOOST_TEST(stamina::retry(policy, [&] { return ++calls, std::string("busy"); }) == "busy");
  BOOST_TEST(calls == 2);
  BOOST_REQUIRE(gave_up.has_value());
  BOOST_TEST((gave_up->reason == give_up_reason::attempts_exhausted));
  // Hooks see the retried result described by its value, not as a bare code.
  const auto* retried = gave_up->caused_by.get<stamina::retried_result_error>();
  BOOST_REQUIRE(retried != nullptr);
  BOOST_TEST(std::string(retried->what()).find("busy") != std::string::npos, retried->what());
}

// Found by the standalone suite (the sync scenarios throw there): a success that on_result
// retried after a failed attempt is what a give-up delivers, not the earlier exception.
BOOST_AUTO_TEST_CASE(a_retried_success_after_an_exception_is_delivered_on_give_up) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).attempts(3).on_result([](int) { return true; });
  const int value = stamina::retry(policy, [&]() -> int {
    if (++calls == 1) throw test::transient_error("first");
    return 10 * calls;
  });
  BOOST_TEST(value == 30);
  BOOST_TEST(calls == 3);
}

#if !defined(STAMINA_STANDALONE_ASIO)  // boost::system::result: Boost only
BOOST_AUTO_TEST_CASE(a_result_value_of_a_result_type_is_judged_too) {
  int calls = 0;
  const auto policy = quick(test::retry_transient()).on_result([](int v) { return v < 2; });
  const boost::system::result<int> r = stamina::retry(policy, [&]() -> boost::system::result<int> { return calls++; });
  BOOST_TEST(r.value() == 2);
}
#endif

BOOST_AUTO_TEST_CASE(a_predicate_of_the_wrong_type_is_rejected_before_the_first_attempt) {
  int calls = 0;
  // A plain retry_policy (the predicate's types erased, e.g. kept in a member) is checked at run
  // time, before the first attempt; a result_typed one at compile time (test/compile_fail).
  const stamina::retry_policy policy = test::retry_transient().on_result([](const std::string&) { return true; });
  BOOST_CHECK_EXCEPTION(stamina::retry(policy, [&] { return ++calls; }), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          const std::string what = e.what();
                          return what.find("on_result") != std::string::npos && what.find("(int)") != std::string::npos;
                        });
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(a_server_given_wait_from_on_result_is_honoured) {
  const stamina::testing_scope virtual_time(stamina::virtual_time, 3);
  int calls = 0;
  const auto policy = test::retry_transient().wait_jitter(0s).on_result([](int status) -> stamina::decision {
    if (status == 429) return stamina::decision::retry_after(7s);
    return false;
  });
  BOOST_TEST(stamina::retry(policy, [&] { return ++calls == 1 ? 429 : 200; }) == 200);
  BOOST_REQUIRE(virtual_time.waits().size() == 1u);
  BOOST_TEST(virtual_time.waits()[0].count() == 7.0);
}

BOOST_AUTO_TEST_SUITE_END()
