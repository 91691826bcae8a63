// The retry protocol stepped by hand, with plain asserts: every rule of a retrying call, with
// no driver, no clock and no I/O.

#include <boost/test/unit_test.hpp>

#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/global.hpp>
#include <stamina/retry_budget.hpp>

#include <boost/asio/error.hpp>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using stamina::duration;
using stamina::give_up_reason;
using stamina::detail::action_kind;
using stamina::detail::give_up_result;
using stamina::detail::retry_protocol;

namespace {

const stamina::failure& refused = test::refused_failure;
const stamina::failure& reset = test::reset_failure;
stamina::retry_policy policy() { return test::refused_every_second(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(protocol)

BOOST_AUTO_TEST_CASE(success_first_time) {
  test::hook_recorder hooks;
  const auto p = policy();
  retry_protocol call(p);
  auto a = call.start(0s);
  BOOST_TEST((a.kind == action_kind::attempt));
  BOOST_TEST(!a.limit());
  BOOST_TEST((call.attempt_succeeded().kind == action_kind::deliver));
  BOOST_TEST(call.attempts() == 1u);
  BOOST_TEST(hooks.retries().empty());
  BOOST_TEST(hooks.give_ups().empty());
}

// The blocking driver sends a plain first attempt with only the call state made, and makes the
// machine after it (sends_first_attempt_at_once, needs_machine_after): the machine it continues
// with must be the one start() would have left.
BOOST_AUTO_TEST_CASE(a_machine_continued_after_a_first_attempt_sent_at_once_is_the_started_one) {
  test::hook_recorder hooks;
  const auto p = policy().attempts(2);
  const stamina::detail::call_state state(p.call_spec());
  BOOST_TEST(retry_protocol::sends_first_attempt_at_once(p, state));
  BOOST_TEST(!retry_protocol::needs_machine_after(true, state));  // a plain success: nobody to tell
  BOOST_TEST(retry_protocol::needs_machine_after(false, state));
  retry_protocol continued(p, state, retry_protocol::first_attempt_sent);
  retry_protocol started(p);
  started.start(0s);
  BOOST_TEST(continued.attempts() == started.attempts());
  for (retry_protocol* call : {&continued, &started}) {
    auto a = call->attempt_failed(refused, 0s, false);
    BOOST_TEST((a.kind == action_kind::wait));
    BOOST_TEST(a.wait().count() == 1.0);
    BOOST_TEST((call->wait_finished(1s, false).kind == action_kind::attempt));
    BOOST_TEST((call->attempt_failed(refused, 1s, false).kind == action_kind::give_up));
    BOOST_TEST(call->sent() == 2u);
  }
  BOOST_TEST(hooks.retries().size() == 2u);
  BOOST_TEST(hooks.give_ups().size() == 2u);
  // An attempt limit, a budget or a judge of results: the machine decides.
  const auto limited = policy().attempt_timeout(1s);
  BOOST_TEST(!retry_protocol::sends_first_attempt_at_once(limited, stamina::detail::call_state(limited.call_spec())));
  const auto budgeted = policy().budget(std::make_shared<stamina::retry_budget>());
  BOOST_TEST(retry_protocol::needs_machine_after(true, stamina::detail::call_state(budgeted.call_spec())));
}

// The asynchronous drivers leave a plain call's machine unmade until its first attempt fails
// (deferred_protocol): the machine made then goes on as one made at the start, with the
// switches the call started with, named after the call's place.
BOOST_AUTO_TEST_CASE(a_deferred_machine_is_made_at_the_first_failure_with_the_calls_start) {
  test::hook_recorder hooks;
  struct {
    double origin() const noexcept { return 0; }
  } clock;
  const auto p = policy();
  const stamina::detail::caller here;
  std::optional<stamina::detail::deferred_protocol> call;
  {
    const stamina::testing_scope two_attempts_no_waits(2);  // the call starts in testing mode...
    call.emplace(p, here, true);
  }  // ...which has ended when its first attempt fails
  BOOST_TEST(!*call);
  BOOST_TEST(call->switches().testing());
  BOOST_TEST((call->start(clock).kind == action_kind::attempt));
  BOOST_TEST(!*call);  // a success would need nothing more
  retry_protocol& machine = call->make_after_first_attempt();
  BOOST_TEST(static_cast<bool>(*call));
  BOOST_TEST(machine.sent() == 1u);
  BOOST_TEST((machine.attempt_failed(refused, 0s, false).kind == action_kind::attempt));  // no wait: testing
  BOOST_TEST((machine.attempt_failed(refused, 0s, false).kind == action_kind::give_up));  // 2 attempts: testing
  BOOST_TEST(machine.sent() == 2u);
  BOOST_TEST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST(hooks.give_ups().front().name.find("retry_protocol_tests.cpp:") != std::string::npos);

  // What is not plain has its machine made at once: an op that takes a context, an attempt
  // limit, an inherited deadline, a budget (a success tells it).
  BOOST_TEST(static_cast<bool>(stamina::detail::deferred_protocol(p, here, false)));
  const auto limited = policy().attempt_timeout(1s);
  stamina::detail::deferred_protocol with_limit(limited, here, true);
  BOOST_TEST(static_cast<bool>(with_limit));
  BOOST_TEST(with_limit.start(clock).limit().has_value());
  auto inherited = policy();
  inherited.deadline(std::chrono::steady_clock::now() + 1h);
  BOOST_TEST(static_cast<bool>(stamina::detail::deferred_protocol(inherited, here, true)));
  const auto budgeted = policy().budget(std::make_shared<stamina::retry_budget>());
  BOOST_TEST(static_cast<bool>(stamina::detail::deferred_protocol(budgeted, here, true)));
}

// A call whose one protection is its breaker is plain while the breaker is closed when the first
// attempt is due (asked in start(), not when the call is made): otherwise the machine is made
// then, and it asks the breaker itself (a refusal: the call ends, nothing sent).
BOOST_AUTO_TEST_CASE(a_deferred_machine_past_a_breaker_is_made_only_when_the_breaker_is_not_closed) {
  struct {
    double origin() const noexcept { return 0; }
  } clock;
  const stamina::detail::caller here;
  const auto breaker = std::make_shared<stamina::circuit_breaker>("deferred");
  const auto p = policy().breaker(breaker);
  stamina::detail::deferred_protocol closed(p, here, true);
  BOOST_TEST(!closed);
  breaker->isolate();  // after the call was made, before its attempt is due
  stamina::detail::deferred_protocol isolated(p, here, true);
  BOOST_TEST(!isolated);
  BOOST_TEST((isolated.start(clock).kind == action_kind::give_up));
  BOOST_TEST(static_cast<bool>(isolated));
  BOOST_TEST((closed.start(clock).kind == action_kind::give_up));  // asked when due: isolated now
  breaker->reset();
  stamina::detail::deferred_protocol reset(p, here, true);
  BOOST_TEST((reset.start(clock).kind == action_kind::attempt));
  BOOST_TEST(!reset);  // past the closed breaker, no machine
  reset.plain_attempt_succeeded();
  BOOST_TEST(breaker->stats().refused == 2u);  // once per call refused, asked once each
}

BOOST_AUTO_TEST_CASE(retry_wait_then_success) {
  test::hook_recorder hooks;
  const auto p = policy();
  retry_protocol call(p);
  call.start(0s);
  auto a = call.attempt_failed(refused, 0s, false);
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 1.0);
  BOOST_TEST(hooks.retries().size() == 1u);  // reported before the wait starts
  a = call.wait_finished(1s, false);
  BOOST_TEST((a.kind == action_kind::attempt));
  a = call.attempt_failed(refused, 1s, false);
  BOOST_TEST(a.wait().count() == 2.0);
  call.wait_finished(3s, false);
  BOOST_TEST((call.attempt_succeeded().kind == action_kind::deliver));
  BOOST_TEST(call.attempts() == 3u);
  BOOST_TEST(hooks.retries().size() == 2u);
  BOOST_TEST(hooks.retries()[1].waited_so_far == 1.0);
  BOOST_TEST(hooks.give_ups().empty());
}

BOOST_AUTO_TEST_CASE(not_retryable_gives_up_with_the_last_attempt) {
  test::hook_recorder hooks;
  const auto p = policy();
  retry_protocol call(p);
  call.start(0s);
  const auto a = call.attempt_failed(reset, 0s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::last_attempt));
  BOOST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::not_retryable));
  BOOST_TEST(hooks.give_ups()[0].attempts == 1u);
}

BOOST_AUTO_TEST_CASE(attempts_exhausted) {
  test::hook_recorder hooks;
  const auto p = policy().attempts(2);
  retry_protocol call(p);
  call.start(0s);
  call.attempt_failed(refused, 0s, false);
  call.wait_finished(1s, false);
  const auto a = call.attempt_failed(refused, 1s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(hooks.give_ups().at(0).attempts == 2u);
}

BOOST_AUTO_TEST_CASE(deadline_and_attempt_limits_come_from_elapsed_time) {
  test::hook_recorder hooks;
  const auto p = policy().timeout(2.5s).attempt_timeout(2s);
  retry_protocol call(p);
  BOOST_TEST(call.needs_clock());
  auto a = call.start(0s);
  BOOST_TEST(a.limit()->count() == 2.0);
  a = call.attempt_failed(refused, 0.2s, false);
  BOOST_TEST(a.wait().count() == 1.0);
  a = call.wait_finished(1.2s, false);
  BOOST_TEST(a.limit()->count() == 1.3);          // min(attempt_timeout, time left)
  a = call.attempt_failed(refused, 1.3s, false);  // 1.3 + 2 >= 2.5
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::deadline));
}

// A restart makes a new failure state; a call given a seed keeps drawing its jitter from it (the
// same seed, the same waits, restart or not), and a first failure that restarts the schedule
// before any failure state exists starts from the seed as given.
BOOST_AUTO_TEST_CASE(a_seeded_call_stays_repeatable_across_a_schedule_restart) {
  const auto p = policy().wait_jitter(1s).attempts(std::nullopt).reset_after(10s);
  const auto waits_of = [&](std::uint64_t seed) {
    retry_protocol call(p, nullptr, seed);
    call.start(0s);
    std::vector<double> waits;
    double now = 20;  // the first attempt ran 20 s: it restarts a schedule that has no failure yet
    for (int i = 0; i < 6; ++i) {
      const auto a = call.attempt_failed(refused, duration(now), false);
      BOOST_TEST_REQUIRE((a.kind == action_kind::wait));
      waits.push_back(a.wait().count());
      now += a.wait().count();
      call.wait_finished(duration(now), false);
      now += i == 2 ? 15 : 0.1;  // the third retry runs 15 s: the schedule restarts
    }
    return waits;
  };
  const std::vector<double> first = waits_of(7);
  BOOST_TEST(first == waits_of(7), boost::test_tools::per_element());
  BOOST_TEST((first != waits_of(8)));
  BOOST_TEST(first[3] < 2.0);  // the first wait again (1 s + jitter < 1 s), after the restart
}

// A reconnect loop: an attempt that ran healthy for reset_after before failing starts the
// schedule afresh (first wait again; attempts and deadline count from that failure).
BOOST_AUTO_TEST_CASE(a_long_healthy_attempt_restarts_the_schedule) {
  test::hook_recorder hooks;
  const auto p = policy().attempts(3).timeout(30s).reset_after(10s);
  retry_protocol call(p);
  BOOST_TEST(call.needs_clock());
  call.start(0s);
  BOOST_TEST(call.attempt_failed(refused, 0.1s, false).wait().count() == 1.0);
  call.wait_finished(1.1s, false);
  BOOST_TEST(call.attempt_failed(refused, 1.2s, false).wait().count() == 2.0);
  call.wait_finished(3.2s, false);
  // A session of 20 s, then a drop: the first wait again, not 4 s, and no deadline (30 s) yet.
  auto a = call.attempt_failed(refused, 23.2s, false);
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(a.wait().count() == 1.0);
  call.wait_finished(24.2s, false);
  BOOST_TEST(call.attempt_failed(refused, 24.3s, false).wait().count() == 2.0);
  call.wait_finished(26.3s, false);
  // Three attempts since the restart.
  a = call.attempt_failed(refused, 26.4s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::attempts_exhausted));
  BOOST_TEST(hooks.give_ups().at(0).attempts == 3u);
  // Without reset_after the same drop would wait 4 s.
  const auto plain = policy().attempts(5).timeout(std::nullopt);
  retry_protocol drifting(plain);
  drifting.start(0s);
  drifting.attempt_failed(refused, 0.1s, false);
  drifting.wait_finished(1.1s, false);
  drifting.attempt_failed(refused, 1.2s, false);
  drifting.wait_finished(3.2s, false);
  BOOST_TEST(drifting.attempt_failed(refused, 23.2s, false).wait().count() == 4.0);
}

BOOST_AUTO_TEST_CASE(no_clock_without_time_limits) {
  const auto p = policy();
  BOOST_TEST(!retry_protocol(p).needs_clock());
  const auto limited = policy().attempt_timeout(1s);
  BOOST_TEST(retry_protocol(limited).needs_clock());
}

BOOST_AUTO_TEST_CASE(timed_out_attempt_is_retried_and_reported_as_attempt_timeout) {
  test::hook_recorder hooks;
  const auto p = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
                     .attempt_timeout(1s)
                     .attempts(2)
                     .wait_jitter(0s)
                     .wait_initial(1s)
                     .timeout(std::nullopt);
  retry_protocol call(p);
  call.start(0s);
  auto a = call.attempt_timed_out(1s, false);  // retryable though `on` knows nothing of it
  BOOST_TEST((a.kind == action_kind::wait));
  BOOST_TEST(hooks.retries().at(0).caused_by.find("attempt timed out") != std::string::npos);
  call.wait_finished(2s, false);
  a = call.attempt_timed_out(3s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::attempt_timeout));
}

BOOST_AUTO_TEST_CASE(cancelled_attempt_is_never_retried) {
  test::hook_recorder hooks;
  const auto p = policy();
  retry_protocol call(p);
  call.start(0s);
  const auto a = call.attempt_failed(refused, 0s, true);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::last_attempt));
  BOOST_TEST(hooks.retries().empty());
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::cancelled));
}

BOOST_AUTO_TEST_CASE(interrupted_wait_aborts) {
  test::hook_recorder hooks;
  const auto p = policy();
  retry_protocol call(p);
  call.start(0s);
  call.attempt_failed(refused, 0s, false);
  const auto a = call.wait_finished(0.5s, true);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::aborted));
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::cancelled));
  BOOST_TEST(hooks.give_ups().at(0).attempts == 1u);
}

BOOST_AUTO_TEST_CASE(budget_is_charged_and_refunded) {
  test::hook_recorder hooks;
  auto budget = std::make_shared<stamina::retry_budget>(4, 1);
  const auto p = policy().budget(budget);
  {
    retry_protocol call(p);
    call.start(0s);
    BOOST_TEST((call.attempt_failed(refused, 0s, false).kind == action_kind::wait));  // 3 left
    call.wait_finished(1s, false);
    const auto a = call.attempt_failed(refused, 1s, false);  // 2 left: not above half
    BOOST_TEST((a.kind == action_kind::give_up));
    BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::budget_exhausted));
  }
  BOOST_TEST(budget->tokens() == 2.0);
  retry_protocol ok(p);
  ok.start(0s);
  ok.attempt_succeeded();  // a success earns its ratio back
  BOOST_TEST(budget->tokens() == 3.0);
}

BOOST_AUTO_TEST_CASE(switches_are_read_once_when_the_call_starts) {
  test::hook_recorder hooks;
  const auto p = policy();
  stamina::set_active(false);
  retry_protocol inactive(p);
  stamina::set_active(true);  // too late for `inactive`
  inactive.start(0s);
  BOOST_TEST((inactive.attempt_failed(refused, 0s, false).kind == action_kind::give_up));
  BOOST_TEST(hooks.give_ups().empty());  // no hooks when inactive

  stamina::testing_scope scope(3);
  retry_protocol testing(p);
  testing.start(0s);
  // Zero waits are no waits: the next attempt follows at once, the hook still sees the retry.
  BOOST_TEST((testing.attempt_failed(refused, 0s, false).kind == action_kind::attempt));
  BOOST_TEST((testing.attempt_failed(refused, 0s, false).kind == action_kind::attempt));
  BOOST_TEST((testing.attempt_failed(refused, 0s, false).kind == action_kind::give_up));
  BOOST_TEST(hooks.retries().size() == 2u);
  BOOST_TEST(hooks.retries()[0].wait_for == 0.0);
}

BOOST_AUTO_TEST_CASE(an_unnamed_policy_is_named_after_the_call) {
  test::hook_recorder hooks;
  const auto p = policy().attempts(2);  // made on one line, used on two others
  const stamina::detail::caller first_call("client.cpp", 10);
  const stamina::detail::caller second_call("client.cpp", 20);
  for (const auto* where : {&first_call, &second_call}) {
    retry_protocol call(p, where);
    call.start(0s);
    call.attempt_failed(refused, 0s, false);
    call.wait_finished(1s, false);
    call.attempt_failed(refused, 1s, false);
  }
  const auto give_ups = hooks.give_ups();
  BOOST_REQUIRE(give_ups.size() == 2u);
  BOOST_TEST(give_ups[0].name == "client.cpp:10");
  BOOST_TEST(give_ups[1].name == "client.cpp:20");
  // An explicit name always wins.
  const auto named = policy().attempts(1).name("db");
  retry_protocol call(named, &first_call);
  call.start(0s);
  call.attempt_failed(refused, 0s, false);
  BOOST_TEST(hooks.give_ups().at(2).name == "db");
}

BOOST_AUTO_TEST_CASE(throwing_classifier_means_no_retry) {
  test::hook_recorder hooks;
  const auto p = stamina::retry_policy(
      stamina::retry_on([](const stamina::failure&) -> bool { throw std::runtime_error("classifier bug"); }));
  retry_protocol call(p);
  call.start(0s);
  BOOST_TEST((call.attempt_failed(refused, 0s, false).kind == action_kind::give_up));
  BOOST_TEST((hooks.give_ups().at(0).reason == give_up_reason::not_retryable));
}

BOOST_AUTO_TEST_CASE(hook_scopes_live_until_the_next_attempt) {
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  stamina::instrumentation::set_on_retry_hooks(
      {[&alive](const stamina::retry_details&) { return std::exchange(alive, nullptr); }});
  const auto p = policy();
  retry_protocol call(p);
  call.start(0s);
  call.attempt_failed(refused, 0s, false);
  BOOST_TEST(!watch.expired());  // during the wait
  call.wait_finished(1s, false);
  BOOST_TEST(watch.expired());  // the next attempt has started
  stamina::instrumentation::set_on_retry_hooks({});
}

BOOST_AUTO_TEST_SUITE_END()

// --- layers: an inherited deadline, the attempt's context, a nested call, pushback ----------

BOOST_AUTO_TEST_SUITE(layers)

// The call starts at 100 s on its clock; the deadline inherited at 103 s is 3 s away.
BOOST_AUTO_TEST_CASE(an_inherited_deadline_clamps_the_timeout_and_cuts_every_attempt) {
  const auto p = policy().timeout(10s).deadline(std::chrono::steady_clock::time_point(103s));
  retry_protocol call(p);
  BOOST_TEST(call.needs_clock());
  auto a = call.start(0s, 100.0);
  BOOST_TEST_REQUIRE((a.kind == action_kind::attempt));
  BOOST_TEST_REQUIRE(a.limit().has_value());  // no attempt_timeout, yet the attempt is cut at the deadline
  BOOST_TEST(a.limit()->count() == 3.0);
  a = call.attempt_failed(refused, 0.5s, false);  // waits 1 s: next attempt at 1.5 s, 1.5 s left
  BOOST_TEST_REQUIRE((a.kind == action_kind::wait));
  a = call.wait_finished(1.5s, false);
  BOOST_TEST_REQUIRE((a.kind == action_kind::attempt));
  BOOST_TEST(a.limit()->count() == 1.5);
  // The next wait (2 s) would end past the deadline: the call gives up, with the last failure.
  a = call.attempt_failed(refused, 2s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::last_attempt));
  BOOST_TEST((call.gave_up() == give_up_reason::deadline));
}

BOOST_AUTO_TEST_CASE(an_attempt_timeout_is_clamped_to_the_inherited_deadline) {
  const auto p = policy().attempt_timeout(2s).deadline(std::chrono::steady_clock::time_point(101s));
  retry_protocol call(p);
  const auto a = call.start(0s, 100.0);
  BOOST_TEST_REQUIRE(a.limit().has_value());
  BOOST_TEST(a.limit()->count() == 1.0);
}

BOOST_AUTO_TEST_CASE(a_deadline_already_passed_sends_nothing) {
  test::hook_recorder hooks;
  const auto p = policy().deadline(std::chrono::steady_clock::time_point(100s));
  retry_protocol call(p);
  const auto a = call.start(0s, 100.0);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::deadline_exceeded));
  BOOST_TEST((stamina::detail::give_up_code(a.result) == stamina::error::deadline_exceeded));
  BOOST_TEST(call.sent() == 0u);
  BOOST_TEST((call.gave_up() == give_up_reason::deadline));
  BOOST_TEST_REQUIRE(hooks.give_ups().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_deadline_only_moves_earlier_and_testing_mode_ignores_it) {
  auto p = policy().deadline(std::chrono::steady_clock::time_point(103s));
  p.deadline(std::chrono::steady_clock::time_point(200s));  // later: ignored
  BOOST_TEST(*p.deadline_since_epoch() == 103.0);
  BOOST_CHECK_THROW(p.deadline(std::chrono::time_point<std::chrono::steady_clock, std::chrono::duration<double>>(
                        std::chrono::duration<double>(std::nan("")))),
                    std::invalid_argument);
  const stamina::testing_scope zero_waits;
  retry_protocol call(p);
  BOOST_TEST(!call.needs_clock());
  BOOST_TEST((call.start(0s, 500.0).kind == action_kind::attempt));  // past it, but testing mode reads no clock
}

BOOST_AUTO_TEST_CASE(the_context_tells_the_attempt_number_time_left_id_and_name) {
  const auto p = policy().timeout(10s).name("db").deadline(std::chrono::steady_clock::time_point(108s));
  retry_protocol call(p);
  stamina::detail::attempt_scope scope;
  call.start(0s, 100.0);
  const stamina::attempt_context& first = call.context(scope, 0s, 100.0);
  BOOST_TEST(first.attempt() == 1u);
  BOOST_TEST(first.remaining()->count() == 8.0);  // the inherited deadline is earlier than the timeout
  BOOST_TEST(first.deadline()->time_since_epoch() == std::chrono::steady_clock::duration(108s));
  BOOST_TEST(first.policy_name() == "db");
  const std::uint64_t id = first.call_id();
  BOOST_TEST(id != 0u);
  call.attempt_failed(refused, 1s, false);
  call.wait_finished(2s, false);
  const stamina::attempt_context& second = call.context(scope, 2s, 100.0);
  BOOST_TEST(second.attempt() == 2u);
  BOOST_TEST(second.remaining()->count() == 6.0);
  BOOST_TEST(second.call_id() == id);
  // Without a deadline, none to tell.
  const auto open = policy();
  retry_protocol unbounded(open);
  unbounded.start(0s, 0.0);
  BOOST_TEST(!unbounded.context(scope, 0s, 0.0).remaining().has_value());
}

BOOST_AUTO_TEST_CASE(an_attempt_that_made_a_nested_call_is_not_retried) {
  test::hook_recorder hooks;
  const auto p = policy().timeout(10s);
  retry_protocol call(p);
  stamina::detail::attempt_scope scope;
  call.start(0s, 100.0);
  const stamina::attempt_context& ctx = call.context(scope, 0s, 100.0);
  BOOST_TEST(!call.made_nested_call());
  const auto inner = stamina::retry_policy(policy()).within(ctx);  // a nested call inherits the deadline
  BOOST_TEST(*inner.deadline_since_epoch() == 110.0);
  BOOST_TEST(call.made_nested_call());
  const auto a = call.attempt_failed(refused, 1s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::last_attempt));
  BOOST_TEST((call.gave_up() == give_up_reason::pushback));
  BOOST_TEST(call.sent() == 1u);
}

BOOST_AUTO_TEST_CASE(only_the_attempt_that_made_the_nested_call_is_not_retried) {
  const auto p = policy();
  retry_protocol outer(p);
  stamina::detail::attempt_scope scope;
  outer.start(0s, 0.0);
  (void)outer.context(scope, 0s, 0.0);
  // The first attempt made no nested call: its failure is retried.
  BOOST_TEST_REQUIRE((outer.attempt_failed(refused, 0s, false).kind == action_kind::wait));
  BOOST_TEST_REQUIRE((outer.wait_finished(1s, false).kind == action_kind::attempt));
  BOOST_TEST(!outer.made_nested_call());
  (void)stamina::retry_policy(policy()).within(outer.context(scope, 1s, 0.0));
  BOOST_TEST(outer.made_nested_call());
  BOOST_TEST((outer.attempt_failed(refused, 1s, false).kind == action_kind::give_up));
  BOOST_TEST((outer.gave_up() == give_up_reason::pushback));
}

// A result on_result retries is a failure too: an attempt that made a nested call is not
// retried for it, and a pushback verdict gives up with the result.
BOOST_AUTO_TEST_CASE(on_result_verdicts_obey_the_nested_rule_and_pushback) {
  const auto p = policy().on_result([](int status) -> stamina::decision {
    if (status == 503) return true;
    if (status == 429) return stamina::decision::pushback();
    return false;
  });
  {
    retry_protocol call(p);
    stamina::detail::attempt_scope scope;
    call.start(0s, 0.0);
    (void)stamina::retry_policy(policy()).within(call.context(scope, 0s, 0.0));
    const auto a = call.attempt_succeeded([] { return 0s; }, false, 503);
    BOOST_TEST((a.kind == action_kind::give_up));
    BOOST_TEST((a.result == give_up_result::last_attempt));  // the result itself is delivered
    BOOST_TEST((call.gave_up() == give_up_reason::pushback));
  }
  {
    retry_protocol call(p);
    call.start(0s);
    const auto a = call.attempt_succeeded([] { return 0s; }, false, 429);
    BOOST_TEST((a.kind == action_kind::give_up));
    BOOST_TEST((call.gave_up() == give_up_reason::pushback));
  }
  {
    retry_protocol call(p);
    call.start(0s);
    BOOST_TEST((call.attempt_succeeded([] { return 0s; }, false, 503).kind == action_kind::wait));  // no nested call
  }
}

BOOST_AUTO_TEST_CASE(an_inherited_deadline_passed_during_a_wait_starts_nothing_more) {
  const auto p = policy().deadline(std::chrono::steady_clock::time_point(102s));
  retry_protocol call(p);
  BOOST_TEST_REQUIRE((call.start(0s, 100.0).kind == action_kind::attempt));
  BOOST_TEST_REQUIRE((call.attempt_failed(refused, 0.5s, false).kind == action_kind::wait));  // 1 s: ends at 1.5 s
  const auto a = call.wait_finished(2.5s, false);  // the timer fired late, past the deadline
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::last_attempt));  // the failure the dependency gave
  BOOST_TEST(call.sent() == 1u);
  BOOST_TEST((call.gave_up() == give_up_reason::deadline));
}

// The inherited deadline cuts attempts; the policy's own timeout still does not (it bounds when
// attempts start, as without an inherited deadline).
BOOST_AUTO_TEST_CASE(only_the_inherited_deadline_cuts_attempts) {
  const auto p = policy().timeout(4.5s).deadline(std::chrono::steady_clock::time_point(160s));
  retry_protocol call(p);
  const auto a = call.start(0s, 100.0);
  BOOST_TEST_REQUIRE(a.limit().has_value());
  BOOST_TEST(a.limit()->count() == 60.0);
}

// An attempt cut because the caller's time ran out says nothing about the dependency: the call
// gives up (deadline, attempt_timeout) without a verdict for the protections.
BOOST_AUTO_TEST_CASE(an_attempt_cut_at_the_inherited_deadline_is_no_sign_of_overload) {
  auto breaker = std::make_shared<stamina::circuit_breaker>();
  const auto p = policy().breaker(breaker).deadline(std::chrono::steady_clock::time_point(101s));
  for (int i = 0; i < 50; ++i) {
    retry_protocol call(p);
    BOOST_TEST_REQUIRE((call.start(0s, 100.0).kind == action_kind::attempt));
    const auto a = call.attempt_timed_out(1s, false);
    BOOST_TEST((a.kind == action_kind::give_up));
    BOOST_TEST((a.result == give_up_result::attempt_timeout));
    BOOST_TEST((call.gave_up() == give_up_reason::deadline));
  }
  BOOST_TEST((breaker->current() == stamina::circuit_breaker::state::closed));  // 50 cut attempts opened nothing
}

// Virtual time skips the waits on the call's own clock, which stands still during an attempt:
// an attempt the real clock cut at the inherited deadline is still the caller's cut.
BOOST_AUTO_TEST_CASE(in_virtual_time_an_attempt_cut_at_the_inherited_deadline_gives_up) {
  stamina::testing_scope scope(stamina::virtual_time);
  const auto p = policy().deadline(std::chrono::steady_clock::time_point(103s));
  retry_protocol call(p);
  auto a = call.start(0s, 100.0);
  BOOST_TEST_REQUIRE((a.kind == action_kind::attempt));
  BOOST_TEST_REQUIRE(a.limit().has_value());
  BOOST_TEST(a.limit()->count() == 3.0);
  a = call.attempt_timed_out(3s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((call.gave_up() == give_up_reason::deadline));
}

// A deadline of -inf (a time_point<..., duration<double>>::min()) has passed; it is not "none".
BOOST_AUTO_TEST_CASE(a_minus_infinite_deadline_has_passed) {
  const auto p = policy().deadline(std::chrono::time_point<std::chrono::steady_clock, std::chrono::duration<double>>(
      std::chrono::duration<double>(-std::numeric_limits<double>::infinity())));
  retry_protocol call(p);
  const auto a = call.start(0s, 100.0);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((a.result == give_up_result::deadline_exceeded));
}

BOOST_AUTO_TEST_CASE(a_pushback_decision_is_not_retried_and_wins_in_either) {
  test::hook_recorder hooks;
  const auto p = stamina::retry_policy(stamina::retry_on([](const stamina::failure&) {
                   return stamina::decision::pushback();
                 })).timeout(std::nullopt);
  retry_protocol call(p);
  call.start(0s);
  const auto a = call.attempt_failed(refused, 0s, false);
  BOOST_TEST((a.kind == action_kind::give_up));
  BOOST_TEST((call.gave_up() == give_up_reason::pushback));
  BOOST_TEST_REQUIRE(hooks.give_ups().size() == 1u);
  BOOST_TEST((hooks.give_ups()[0].reason == give_up_reason::pushback));
  // `||` keeps it: the layer below said not to retry, whatever a later part would say.
  const stamina::retry_on either =
      stamina::retry_on([](const stamina::failure&) { return stamina::decision::pushback(); }) ||
      stamina::retry_on([](const stamina::failure&) { return true; });
  BOOST_TEST((either(refused).what() == stamina::decision::kind::pushback));
}

BOOST_AUTO_TEST_SUITE_END()
