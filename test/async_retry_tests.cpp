// async_retry: completion tokens and both op forms.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/async_support.hpp>
#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/global.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

using namespace async_support;

BOOST_AUTO_TEST_SUITE(async_tokens)

BOOST_AUTO_TEST_CASE(three_argument_co_await_awaitable_op) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  flaky_awaitable op{.succeed_at = 3};
  int result = 0;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    result = co_await stamina::async_retry(ctx.get_executor(), stamina::on_exception<test::transient_error>(), op);
  });
  BOOST_TEST(result == 21);
  BOOST_TEST(*op.calls == 3);
}

BOOST_AUTO_TEST_CASE(three_argument_co_await_token_op) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 4);
  int result = 0;
  run_coroutine(ctx,
                [&]() -> asio::awaitable<void> { result = co_await stamina::async_retry(ctx, refused_policy(), op); });
  BOOST_TEST(result == 40);
  BOOST_TEST(*op.calls == 4);
}

// A token op's values reach the caller as the op made them, moved and never assigned into
// values the call made: an allocator-aware value keeps its allocator, after a retry too.
BOOST_AUTO_TEST_CASE(a_token_ops_values_keep_the_allocator_the_op_gave_them) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  std::pmr::monotonic_buffer_resource resource;
  int calls = 0;
  auto op = [&](auto token) {
    const error_code ec = ++calls < 2 ? error_code(asio::error::connection_refused) : error_code();
    std::pmr::string value(std::string(100, 'x'), &resource);  // past the short-string buffer
    return asio::post(ctx, asio::append(std::move(token), ec, std::move(value)));
  };
  bool kept = false;
  std::size_t length = 0;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    const std::pmr::string got = co_await stamina::async_retry(ctx, refused_policy(), op);
    kept = got.get_allocator().resource() == &resource;
    length = got.size();
  });
  BOOST_TEST(calls == 2);
  BOOST_TEST(length == 100U);
  BOOST_TEST(kept);
}

BOOST_AUTO_TEST_CASE(co_await_give_up_throws_last_exception_object_and_last_error) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto last = std::make_shared<std::exception_ptr>();
  auto op = [last]() -> asio::awaitable<int> {
    *last = std::make_exception_ptr(test::transient_error("again"));
    std::rethrow_exception(*last);
    co_return 0;
  };
  bool same_object = false;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    try {
      co_await stamina::async_retry(ctx, stamina::on_exception<test::transient_error>(), op);
    } catch (const test::transient_error&) {
      same_object = std::current_exception() == *last;
    }
  });
  BOOST_TEST(same_object);
  ctx.restart();
  auto refusing = refusing_until(ctx, 100);
  error_code caught;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    try {
      co_await stamina::async_retry(ctx, refused_policy(), refusing);
    } catch (const boost::system::system_error& e) {
      caught = e.code();
    }
  });
  BOOST_TEST((caught == refused));
  BOOST_TEST(*refusing.calls == 3);
}

BOOST_AUTO_TEST_CASE(callback_token_op_completes_once_not_inline_with_last_arguments) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  int value = 0;
  auto op = refusing_until(ctx, 100);
  test::initiate([&] {
    stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [&](error_code ec, int v) {
                           got = ec;
                           value = v;
                         }));
  });
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!rec->called_inline);
  BOOST_TEST(!rec->destroyed_uncalled);
  BOOST_TEST((got == refused));
  BOOST_TEST(value == 30);  // exactly the last attempt's arguments
}

BOOST_AUTO_TEST_CASE(callback_awaitable_op) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto rec = std::make_shared<test::completion_record>();
  flaky_awaitable op{.succeed_at = 2};
  int value = 0;
  test::initiate([&] {
    stamina::async_retry(ctx.get_executor(), stamina::on_exception<test::transient_error>(), op,
                         test::once(rec, [&](const std::exception_ptr& e, int v) {
                           BOOST_TEST(!e);
                           value = v;
                         }));
  });
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(!rec->called_inline);
  BOOST_TEST(value == 14);
}

BOOST_AUTO_TEST_CASE(awaitable_void_op) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto calls = std::make_shared<int>(0);
  auto op = [calls]() -> asio::awaitable<void> {
    if (++*calls < 2) throw test::transient_error("x");
    co_return;
  };
  auto rec = std::make_shared<test::completion_record>();
  stamina::async_retry(ctx, stamina::on_exception<test::transient_error>(), op,
                       test::once(rec, [](const std::exception_ptr& e) { BOOST_TEST(!e); }));
  ctx.run();
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    co_await stamina::async_retry(ctx, stamina::on_exception<test::transient_error>(), op);
  });
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(*calls == 3);
}

BOOST_AUTO_TEST_CASE(deferred_token) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 2);
  auto deferred_op = stamina::async_retry(ctx, refused_policy(), op, asio::deferred);
  BOOST_TEST(*op.calls == 0);  // nothing starts until the deferred operation is initiated
  auto rec = std::make_shared<test::completion_record>();
  int value = 0;
  std::move(deferred_op)(test::once(rec, [&](error_code ec, int v) {
    BOOST_TEST(!ec);
    value = v;
  }));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(value == 20);
  // Awaiting a deferred token op works too (error_code signature); Asio 1.22's experimental
  // deferred cannot be awaited.
#if !defined(ASIO_VERSION) || ASIO_VERSION >= 102400
  ctx.restart();
  auto op2 = refusing_until(ctx, 2);
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    value = co_await stamina::async_retry(ctx, refused_policy(), op2, asio::deferred);
  });
  BOOST_TEST(value == 20);
#endif
}

// The policy is taken by reference (a by-value parameter would sit in the awaiting frame for the
// whole call), so the call must keep its own copy: an awaitable made from a temporary policy, or
// from one destroyed before the await, still runs the policy it was given (ASan checks the rest).
BOOST_AUTO_TEST_CASE(an_awaitable_keeps_its_own_policy_after_the_argument_is_gone) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 3);
  auto other = refusing_until(ctx, 2);
  auto third = refusing_until(ctx, 2);
  int first_value = 0, second_value = 0, third_value = 0;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    auto from_temporary = stamina::async_retry(ctx, refused_policy().attempts(3), op);
    auto from_retry_on = stamina::async_retry(ctx, stamina::on_error(asio::error::connection_refused), other);
    std::optional<asio::awaitable<int>> from_lvalue;
    {
      auto policy = std::make_unique<stamina::retry_policy>(refused_policy());
      from_lvalue.emplace(stamina::async_retry(ctx, *policy, third));
      *policy = stamina::retry_policy(stamina::on_error(asio::error::timed_out));  // changed, then destroyed
    }
    first_value = co_await std::move(from_temporary);
    second_value = co_await std::move(from_retry_on);
    third_value = co_await std::move(*from_lvalue);
  });
  BOOST_TEST(first_value == 30);
  BOOST_TEST(*op.calls == 3);
  BOOST_TEST(second_value == 20);
  BOOST_TEST(third_value == 20);  // retried connection_refused: the policy as it was at the call
}

BOOST_AUTO_TEST_CASE(use_future_token_both_forms) {
  stamina::testing_scope fast(5);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 3);
  std::future<int> f1 = stamina::async_retry(ctx, refused_policy(), op, asio::use_future);
  flaky_awaitable aw{.succeed_at = 3};
  std::future<int> f2 = stamina::async_retry(ctx, stamina::on_exception<test::transient_error>(), aw, asio::use_future);
  auto failing = refusing_until(ctx, 100);
  std::future<int> f3 = stamina::async_retry(ctx, refused_policy(), failing, asio::use_future);
  ctx.run();
  BOOST_TEST(f1.get() == 30);
  BOOST_TEST(f2.get() == 21);
  BOOST_CHECK_THROW(f3.get(), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(as_tuple_and_redirect_error_tokens) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto op = refusing_until(ctx, 100);
  flaky_awaitable aw{.succeed_at = 100};
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    auto [ec, v] = co_await stamina::async_retry(ctx, refused_policy(), op, asio::as_tuple(asio::use_awaitable));
    BOOST_TEST((ec == refused));
    BOOST_TEST(v == 30);
    auto [e, v2] = co_await stamina::async_retry(ctx, stamina::on_exception<test::transient_error>(), aw,
                                                 asio::as_tuple(asio::use_awaitable));
    BOOST_TEST(static_cast<bool>(e));
    BOOST_TEST(v2 == 0);
    error_code redirected;
    const int v3 =
        co_await stamina::async_retry(ctx, refused_policy(), op, asio::redirect_error(asio::use_awaitable, redirected));
    BOOST_TEST((redirected == refused));
    BOOST_TEST(v3 == 60);
  });
  BOOST_TEST(*aw.calls == 3);
}

BOOST_AUTO_TEST_CASE(bind_executor_strand_runs_handler_on_the_strand) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  auto rec = std::make_shared<test::completion_record>();
  bool on_strand = false;
  auto op = refusing_until(ctx, 2);
  stamina::async_retry(ctx, refused_policy(), op, asio::bind_executor(strand, test::once(rec, [&](error_code, int) {
                                                                        on_strand = strand.running_in_this_thread();
                                                                      })));
  ctx.run();
  BOOST_TEST(rec->calls == 1);
  BOOST_TEST(on_strand);
}

BOOST_AUTO_TEST_CASE(awaitable_op_runs_on_the_given_executor) {
  stamina::testing_scope fast(3);
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  bool attempts_on_strand = true;
  auto calls = std::make_shared<int>(0);
  auto op = [&, calls]() -> asio::awaitable<int> {
    attempts_on_strand = attempts_on_strand && strand.running_in_this_thread();
    if (++*calls < 2) throw test::transient_error("x");
    co_return 1;
  };
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    // The caller runs on the io_context executor, the attempts on the strand.
    co_await stamina::async_retry(strand, stamina::on_exception<test::transient_error>(), op);
  });
  BOOST_TEST(*calls == 2);
  BOOST_TEST(attempts_on_strand);
}

BOOST_AUTO_TEST_CASE(non_matching_failure_delivered_after_one_call) {
  asio::io_context ctx;
  auto op = test::scripted_op{&ctx, [](int) { return error_code(asio::error::access_denied); }};
  auto rec = std::make_shared<test::completion_record>();
  error_code got;
  stamina::async_retry(ctx, refused_policy(), op, test::once(rec, [&](error_code ec, int) { got = ec; }));
  ctx.run();
  BOOST_TEST(*op.calls == 1);
  BOOST_TEST((got == asio::error::access_denied));
}

// A policy whose one protection is its breaker sends its first attempt past a closed breaker as a
// plain call on both drivers (the breaker asked when the attempt is due, the machine made only if
// it fails): failed, succeeded, succeeded, failed keeps the ratio at 0.5 only if the successes
// were counted; a third failure then opens it (3 of 5).
BOOST_AUTO_TEST_CASE(a_first_attempt_past_a_closed_breaker_is_counted_on_every_driver) {
  using state = stamina::circuit_breaker::state;
  static double breaker_now = 0;
  const char* drivers[] = {"callback", "co_await, token op", "co_await, awaitable op", "deferred"};
  for (const char* driver : drivers) {
    BOOST_TEST_CONTEXT(driver) {
      const std::string name = driver;
      auto b = std::make_shared<stamina::circuit_breaker>("drivers");
      b->clock(+[] { return breaker_now; }).minimum_calls(2).failure_ratio(0.6);
      const auto errors = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                              .attempts(1)
                              .timeout(std::nullopt)
                              .breaker(b);
      const auto exceptions = stamina::retry_policy(stamina::on_exception<test::transient_error>())
                                  .attempts(1)
                                  .timeout(std::nullopt)
                                  .breaker(b);
      asio::io_context ctx;
      const auto call = [&](bool succeed) {
        bool ok = false;
        auto token_op = [&ctx, succeed](auto token) {
          return asio::post(ctx, asio::append(std::move(token),
                                              succeed ? error_code() : error_code(asio::error::connection_refused)));
        };
        auto awaitable_op = [succeed]() -> asio::awaitable<int> {
          if (!succeed) throw test::transient_error("refused");
          co_return 1;
        };
        ctx.restart();
        if (name == "callback") {
          stamina::async_retry(ctx, errors, token_op, [&](error_code ec) { ok = !ec; });
          ctx.run();
        } else if (name == "deferred") {
          auto later = stamina::async_retry(ctx, errors, token_op, asio::deferred);
          ctx.run();  // nothing started yet
          std::move(later)([&](error_code ec) { ok = !ec; });
          ctx.restart();
          ctx.run();
        } else if (name == "co_await, token op") {
          run_coroutine(ctx, [&]() -> asio::awaitable<void> {
            try {
              co_await stamina::async_retry(ctx, errors, token_op);
              ok = true;
            } catch (const boost::system::system_error&) {
              ok = false;
            }
          });
        } else {
          run_coroutine(ctx, [&]() -> asio::awaitable<void> {
            try {
              co_await stamina::async_retry(ctx, exceptions, awaitable_op);
              ok = true;
            } catch (const test::transient_error&) {
              ok = false;
            }
          });
        }
        return ok;
      };
      BOOST_TEST(!call(false));
      BOOST_TEST(call(true));
      BOOST_TEST(call(true));
      BOOST_TEST(!call(false));
      BOOST_TEST((b->current() == state::closed));
      BOOST_TEST(!call(false));
      BOOST_TEST((b->current() == state::open));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_invalid_awaitables)

// An op that hands back an awaitable holding no coroutine started nothing: a failed attempt
// (invalid_argument), on every path of every driver, never a crash of the caller.
BOOST_AUTO_TEST_CASE(an_invalid_awaitable_is_a_failed_attempt_on_every_path) {
  asio::io_context ctx;
  const auto other = asio::make_strand(ctx);  // not the caller's executor: each attempt is spawned onto it
  int calls = 0;
  const auto awaitable_op = [&]() -> asio::awaitable<int> {
    ++calls;
    return {};
  };
  const auto token_op = [&](auto token) {
    ++calls;
    using result = decltype(asio::post(ctx, asio::append(std::move(token), error_code(), 1)));
    if constexpr (!std::is_void_v<result>) return result{};  // starts nothing
  };
  for (const bool limited : {false, true}) {
    BOOST_TEST_CONTEXT((limited ? "with" : "without") << " attempt_timeout") {
      auto policy = refused_policy().attempts(2);
      if (limited) policy.attempt_timeout(10s);
      const auto expect_invalid = [&](auto&& body, int expected_calls) {
        calls = 0;
        error_code got;
        run_coroutine(ctx, [&]() -> asio::awaitable<void> {
          try {
            co_await body();
          } catch (const boost::system::system_error& e) {
            got = e.code();
          }
        });
        BOOST_TEST(got == asio::error::invalid_argument);
        BOOST_TEST(calls == expected_calls);
      };
      expect_invalid([&]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, token_op); }, 1);
      expect_invalid([&]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, awaitable_op); }, 1);
      expect_invalid([&]() -> asio::awaitable<void> { co_await stamina::async_retry(other, policy, awaitable_op); }, 1);
      // The composed operation (any other token).
      calls = 0;
      error_code got;
      auto rec = std::make_shared<test::completion_record>();
      stamina::async_retry(ctx, policy, awaitable_op,
                           test::once(rec, [&](std::exception_ptr e, int) { got = test::code_of(e); }));
      ctx.restart();
      ctx.run();
      BOOST_TEST(rec->calls == 1);
      BOOST_TEST(got == asio::error::invalid_argument);
      BOOST_TEST(calls == 1);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
