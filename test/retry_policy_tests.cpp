// retry_policy: defaults, setters and getters, invalid and edge values.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>
#include <common/virtual_retry.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

BOOST_AUTO_TEST_SUITE(policy)

BOOST_AUTO_TEST_CASE(defaults_match_the_design) {
  const retry_policy p = test::retry_transient();
  BOOST_TEST(p.attempts() == 10u);
  BOOST_TEST(p.timeout()->count() == 45.0);
  BOOST_TEST(p.wait_initial().count() == 0.1);
  BOOST_TEST(p.wait_max().count() == 5.0);
  BOOST_TEST(p.wait_jitter().count() == 1.0);
  BOOST_TEST(p.wait_exp_base() == 2.0);
  BOOST_TEST((p.jitter() == stamina::jitter::additive));
  BOOST_TEST(!p.attempt_timeout().has_value());
  BOOST_TEST(p.name().rfind("policies.hpp:", 0) == 0);  // where test::retry_transient() makes it
  BOOST_TEST(p.budget() == nullptr);
}

BOOST_AUTO_TEST_CASE(setters_chain_and_getters_read_back) {
  auto budget = std::make_shared<stamina::retry_budget>();
  const auto p = test::retry_transient()
                     .attempts(5)
                     .timeout(10s)
                     .wait_initial(20ms)
                     .wait_max(2s)
                     .wait_jitter(0s)
                     .wait_exp_base(3)
                     .jitter(stamina::jitter::full)
                     .attempt_timeout(500ms)
                     .name("db.connect")
                     .budget(budget);
  BOOST_TEST(p.attempts() == 5u);
  BOOST_TEST(p.timeout()->count() == 10.0);
  BOOST_TEST(p.wait_initial().count() == 0.02);
  BOOST_TEST(p.wait_max().count() == 2.0);
  BOOST_TEST(p.wait_jitter().count() == 0.0);
  BOOST_TEST(p.wait_exp_base() == 3.0);
  BOOST_TEST((p.jitter() == stamina::jitter::full));
  BOOST_TEST(p.attempt_timeout()->count() == 0.5);
  BOOST_TEST(p.name() == "db.connect");
  BOOST_TEST(p.budget() == budget);
  const auto unlimited = test::retry_transient().attempts(std::nullopt).timeout(std::nullopt);
  BOOST_TEST(!unlimited.attempts().has_value());
  BOOST_TEST(!unlimited.timeout().has_value());
}

BOOST_AUTO_TEST_CASE(invalid_values_throw_naming_field_and_value) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto p = test::retry_transient();
  struct row {
    const char* field;
    const char* value;
    std::function<void()> set;
  };
  const std::vector<row> table{
      {"attempts", "0", [&] { p.attempts(0); }},
      {"attempts", "0", [&] { p.attempts(std::optional<unsigned>(0)); }},
      {"attempts", "-1", [&] { p.attempts(-1); }},
      {"timeout", "0s", [&] { p.timeout(0s); }},
      {"timeout", "-1s", [&] { p.timeout(-1s); }},
      {"timeout", "nan", [&] { p.timeout(duration(nan)); }},
      {"timeout", "inf", [&] { p.timeout(duration(inf)); }},
      {"wait_initial", "-0.1s", [&] { p.wait_initial(-100ms); }},
      {"wait_initial", "nan", [&] { p.wait_initial(duration(nan)); }},
      {"wait_max", "-5s", [&] { p.wait_max(-5s); }},
      {"wait_max", "inf", [&] { p.wait_max(duration(inf)); }},
      {"wait_jitter", "-1s", [&] { p.wait_jitter(-1s); }},
      {"wait_jitter", "-inf", [&] { p.wait_jitter(duration(-inf)); }},
      {"wait_exp_base", "0.5", [&] { p.wait_exp_base(0.5); }},
      {"wait_exp_base", "nan", [&] { p.wait_exp_base(nan); }},
      {"wait_exp_base", "inf", [&] { p.wait_exp_base(inf); }},
      {"attempt_timeout", "0s", [&] { p.attempt_timeout(0s); }},
      {"attempt_timeout", "-2s", [&] { p.attempt_timeout(-2s); }},
  };
  for (const row& r : table) {
    const std::string message = invalid_argument_message(r.set);
    BOOST_TEST_INFO("field " << r.field << " value " << r.value << ": " << message);
    BOOST_TEST(contains(message, r.field));
    BOOST_TEST(contains(message, r.value));
  }
  // Nothing was changed by the rejected calls: the policy still has its defaults.
  BOOST_TEST(p.attempts() == 10u);
  BOOST_TEST(p.timeout()->count() == 45.0);
  BOOST_TEST(p.wait_exp_base() == 2.0);
}

BOOST_AUTO_TEST_CASE(edge_values_that_are_valid) {
  auto p = test::retry_transient().wait_initial(10s).wait_max(1s).wait_jitter(0s).wait_exp_base(1).attempts(1);
  BOOST_TEST(p.wait_initial().count() == 10.0);       // may exceed wait_max: capped when used
  p.attempts(std::numeric_limits<long long>::max());  // saturates
  BOOST_TEST(p.attempts() == std::numeric_limits<unsigned>::max());
  backoff b(p, 1);
  BOOST_TEST(b.draw_wait(1).count() == 1.0);
}

BOOST_AUTO_TEST_CASE(retry_after_rejects_negative_and_nan) {
  BOOST_CHECK_THROW(stamina::decision::retry_after(-1s), std::invalid_argument);
  BOOST_CHECK_THROW(stamina::decision::retry_after(duration(std::numeric_limits<double>::quiet_NaN())),
                    std::invalid_argument);
  BOOST_TEST(stamina::decision::retry_after(0s).wait().count() == 0.0);
}

namespace {
struct first_error : std::exception {};
struct second_error : std::exception {};

// Made at one line for every E: the same call site, a different predicate.
template <class E>
retry_policy made_here() {
  return retry_policy(stamina::on_exception<E>());
}
template <int N>
struct numbered_error : std::exception {};

template <int... N>
void check_predicates_at_one_site(std::integer_sequence<int, N...>) {
  const std::vector<const void*> blocks{&made_here<numbered_error<N>>().call_spec()...};
  for (int round = 0; round < 2; ++round) {
    const std::vector<const void*> again{&made_here<numbered_error<N>>().call_spec()...};
    BOOST_TEST((again == blocks));
  }
  const std::vector<bool> own{made_here<numbered_error<N>>()
                                  .on()(stamina::failure(std::make_exception_ptr(numbered_error<N>{})))
                                  .should_retry()...};
  const std::vector<bool> next{made_here<numbered_error<N>>()
                                   .on()(stamina::failure(std::make_exception_ptr(numbered_error<N + 1>{})))
                                   .should_retry()...};
  BOOST_TEST((own == std::vector<bool>(sizeof...(N), true)));
  BOOST_TEST((next == std::vector<bool>(sizeof...(N), false)));
}
}  // namespace

// A policy made per call from a predicate without state shares one block per (call site,
// predicate), found through a per-thread cache: the same block each time, another block for
// another predicate or another site, whichever cache slot they meet in.
BOOST_AUTO_TEST_CASE(a_policy_made_per_call_finds_the_block_of_its_site_and_predicate) {
  const stamina::failure first(std::make_exception_ptr(first_error{}));
  const stamina::failure second(std::make_exception_ptr(second_error{}));
  const retry_policy a1 = made_here<first_error>();
  const retry_policy b1 = made_here<second_error>();
  const retry_policy a2 = made_here<first_error>();
  BOOST_TEST(&a1.call_spec() == &a2.call_spec());
  BOOST_TEST(&a1.call_spec() != &b1.call_spec());
  BOOST_TEST(a2.on()(first).should_retry());
  BOOST_TEST(!a2.on()(second).should_retry());
  BOOST_TEST(b1.on()(second).should_retry());
  BOOST_TEST(!b1.on()(first).should_retry());
  BOOST_TEST(a1.name() == b1.name());  // one site, one default name

  // 40 sites in 16 slots: every slot is shared and evicted, and each site still finds its own.
  static const char* const file = "interned_sites.cpp";
  std::vector<const void*> blocks;
  for (unsigned line = 1; line <= 40; ++line)
    blocks.push_back(&retry_policy(stamina::on_exception<first_error>(), file, line).call_spec());
  for (int round = 0; round < 2; ++round) {
    for (unsigned line = 40; line >= 1; --line) {
      const retry_policy p(stamina::on_exception<first_error>(), file, line);
      BOOST_TEST(&p.call_spec() == blocks[line - 1]);
      BOOST_TEST(p.name() == "interned_sites.cpp:" + std::to_string(line));
    }
  }
  std::sort(blocks.begin(), blocks.end());
  BOOST_TEST((std::adjacent_find(blocks.begin(), blocks.end()) == blocks.end()));

  // 32 predicates made at one site, in 16 slots: each finds the block of its own predicate.
  check_predicates_at_one_site(std::make_integer_sequence<int, 32>{});

  // A predicate with state has a block of its own, every time.
  const auto with_state = [] { return stamina::retry_on([limit = 3](const stamina::failure&) { return limit > 0; }); };
  const retry_policy s1(with_state(), file, 1);
  const retry_policy s2(with_state(), file, 1);
  BOOST_TEST(&s1.call_spec() != &s2.call_spec());
  BOOST_TEST(&s1.call_spec() != blocks[0]);
}

// What the drivers test before a plain call's first attempt is one byte worked out when the
// settings change (detail::policy_shape): every setter that moves a setting it reads must work
// it out again, and a copy carries it. Steps on one policy, each with the byte it must leave.
BOOST_AUTO_TEST_CASE(the_shape_follows_every_setter) {
  namespace bit = stamina::detail::policy_shape;
  constexpr std::uint8_t none = 0;
  const auto budget = std::make_shared<stamina::retry_budget>();
  const auto throttle = std::make_shared<stamina::adaptive_throttle>();
  const auto breaker = std::make_shared<stamina::circuit_breaker>();
  const auto limit = std::make_shared<stamina::concurrency_limit>();
  struct row {
    const char* step;
    std::function<void(retry_policy&)> apply;
    std::uint8_t shape;
  };
  const std::vector<row> rows = {
      {"defaults (45 s timeout)", [](retry_policy&) {}, bit::timed},
      {"timeout(nullopt)", [](retry_policy& p) { p.timeout(std::nullopt); }, none},
      {"reset_after(10s)", [](retry_policy& p) { p.reset_after(10s); }, bit::clocked},
      {"reset_after(nullopt)", [](retry_policy& p) { p.reset_after(std::nullopt); }, none},
      {"attempt_timeout(1s)", [](retry_policy& p) { p.attempt_timeout(1s); }, bit::not_plain | bit::clocked},
      {"attempt_timeout(nullopt)", [](retry_policy& p) { p.attempt_timeout(std::nullopt); }, none},
      {"deadline(in an hour)", [](retry_policy& p) { p.deadline(std::chrono::steady_clock::now() + 1h); },
       bit::not_plain | bit::timed},
      {"deadline(nullopt)", [](retry_policy& p) { p.deadline(std::nullopt); }, none},
      {"budget", [&](retry_policy& p) { p.budget(budget); }, bit::not_plain},
      {"name (a new block)", [](retry_policy& p) { p.name("shape"); }, bit::not_plain},
      {"budget(nullptr)", [](retry_policy& p) { p.budget(nullptr); }, none},
      {"throttle", [&](retry_policy& p) { p.throttle(throttle); }, bit::not_plain},
      {"throttle(nullptr): none at all", [](retry_policy& p) { p.throttle(nullptr); }, none},
      {"breaker", [&](retry_policy& p) { p.breaker(breaker); }, bit::not_plain},
      {"breaker(nullptr)", [](retry_policy& p) { p.breaker(nullptr); }, none},
      {"limit", [&](retry_policy& p) { p.limit(limit); }, bit::not_plain},
      {"limit(nullptr)", [](retry_policy& p) { p.limit(nullptr); }, none},
      {"on_result", [](retry_policy& p) { p.on_result([](int status) { return status == 503; }); }, bit::not_plain},
      {"on_result(nullptr)", [](retry_policy& p) { p.on_result(nullptr); }, none},
      {"timeout(5s)", [](retry_policy& p) { p.timeout(5s); }, bit::timed},
      {"every bit", [](retry_policy& p) { p.attempt_timeout(1s); }, bit::not_plain | bit::timed | bit::clocked},
  };
  retry_policy p = test::retry_transient();
  for (const row& r : rows) {
    BOOST_TEST_CONTEXT(r.step) {
      r.apply(p);
      BOOST_TEST(unsigned(p.shape()) == unsigned(r.shape));
      const retry_policy copy = p;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
      BOOST_TEST(unsigned(copy.shape()) == unsigned(r.shape));
    }
  }

  // A moved-from policy has no block; its setters of plain values still work.
  retry_policy moved = test::retry_transient();
  const retry_policy taker = std::move(moved);
  moved.timeout(1s).deadline(std::nullopt);  // NOLINT(bugprone-use-after-move): the moved-from state is the test
  BOOST_TEST(moved.timeout()->count() == 1.0);
  BOOST_TEST(unsigned(moved.shape()) == unsigned(bit::not_plain | bit::timed));
  BOOST_TEST(unsigned(taker.shape()) == unsigned(bit::timed));

  // within(ctx): the outer attempt's deadline is inherited.
  const int got = test::retry_virtual(test::retry_transient().timeout(30s), [](const stamina::attempt_context& ctx) {
    const auto inner = retry_policy(test::retry_transient()).timeout(std::nullopt).within(ctx);
    BOOST_TEST(unsigned(inner.shape()) == unsigned(bit::not_plain | bit::timed));
    return 7;
  });
  BOOST_TEST(got == 7);
}

BOOST_AUTO_TEST_SUITE_END()
