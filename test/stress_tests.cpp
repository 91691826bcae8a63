// Stress and shutdown: many concurrent calls on 4 threads with random failures, random
// cancellations, strands, hooks and a shared budget; every call completes exactly once and the
// counts reconcile exactly; then each shared object (breaker, budget, switches, hook registry)
// hammered from several threads. Run under TSan in CI (label tsan). Real (millisecond) timers.

#include <boost/test/unit_test.hpp>

#include <common/async_helpers.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

namespace {

const error_code refused = asio::error::connection_refused;

struct counters {
  std::atomic<long> attempts{0}, completions{0}, successes{0}, aborted{0}, failed{0};
  std::atomic<long> hook_retries{0}, hook_give_ups{0}, give_up_cancelled{0}, give_up_budget{0};
};

// Installs counting hooks for the lifetime of the object.
struct counting_hooks {
  explicit counting_hooks(counters& c) {
    stamina::instrumentation::set_on_retry_hooks({[&c](const stamina::retry_details&) { ++c.hook_retries; }});
    stamina::instrumentation::set_on_give_up_hooks({[&c](const stamina::give_up_details& d) {
      ++c.hook_give_ups;
      if (d.reason == stamina::give_up_reason::cancelled) ++c.give_up_cancelled;
      if (d.reason == stamina::give_up_reason::budget_exhausted) ++c.give_up_budget;
    }});
  }
  ~counting_hooks() {
    stamina::instrumentation::set_on_retry_hooks({});
    stamina::instrumentation::set_on_give_up_hooks({});
  }
};

// Per call: its strand, its cancellation signal, its random outcomes.
struct call_state {
  asio::strand<asio::thread_pool::executor_type> strand;
  asio::cancellation_signal signal;
  asio::steady_timer canceller;
  std::mt19937 rng;
  call_state(asio::thread_pool& pool, unsigned seed) : strand(asio::make_strand(pool)), canceller(strand), rng(seed) {}
};

}  // namespace

BOOST_AUTO_TEST_SUITE(stress)

BOOST_AUTO_TEST_CASE(ten_thousand_calls_on_four_threads_reconcile_exactly) {
  constexpr int calls = 10000;
  counters c;
  counting_hooks hooks(c);
  auto budget = std::make_shared<stamina::retry_budget>(20000, 1.0);
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .attempts(5)
                          .wait_initial(1ms)
                          .wait_max(4ms)
                          .wait_jitter(1ms)
                          .budget(budget);
  asio::thread_pool pool(4);
  std::vector<std::unique_ptr<call_state>> states;
  states.reserve(calls);
  std::vector<std::shared_ptr<test::completion_record>> records(calls);

  for (int i = 0; i < calls; ++i) {
    states.push_back(std::make_unique<call_state>(pool, static_cast<unsigned>(i)));
    call_state& s = *states.back();
    records[i] = std::make_shared<test::completion_record>();
    // Everything about a call happens on its strand, including starting it.
    asio::post(s.strand, [&, i] {
      auto op = [&c, &s](auto token) {
        ++c.attempts;
        const bool fail = std::uniform_int_distribution<int>(0, 99)(s.rng) < 60;
        return asio::post(s.strand, asio::append(std::move(token), fail ? refused : error_code()));
      };
      stamina::async_retry(
          s.strand, policy, op,
          asio::bind_cancellation_slot(s.signal.slot(),
                                       asio::bind_executor(s.strand, test::once(records[i], [&c](error_code ec) {
                                                             ++c.completions;
                                                             if (!ec)
                                                               ++c.successes;
                                                             else if (ec == asio::error::operation_aborted)
                                                               ++c.aborted;
                                                             else
                                                               ++c.failed;
                                                           }))));
      // One call in five is cancelled after a random 0-6 ms.
      if (std::uniform_int_distribution<int>(0, 4)(s.rng) == 0) {
        s.canceller.expires_after(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 6000)(s.rng)));
        s.canceller.async_wait([&s](error_code) { s.signal.emit(asio::cancellation_type::terminal); });
      }
    });
  }
  pool.join();

  for (const auto& r : records) BOOST_REQUIRE_EQUAL(r->calls, 1);  // exactly once, every call
  BOOST_TEST(c.completions.load() == calls);
  BOOST_TEST(c.successes + c.aborted + c.failed == calls);
  // Every scheduled retry led to exactly one more attempt, except when the call was
  // cancelled during that wait (the only way to complete with operation_aborted here).
  BOOST_TEST(c.attempts.load() == calls + c.hook_retries.load() - c.aborted.load());
  // Every call that did not succeed reported exactly one give-up, with its reason.
  BOOST_TEST(c.hook_give_ups.load() == c.aborted.load() + c.failed.load());
  BOOST_TEST(c.give_up_cancelled.load() >= c.aborted.load());
  BOOST_TEST(budget->tokens() >= 0.0);
  BOOST_TEST(budget->tokens() <= 20000.0);
  BOOST_TEST_MESSAGE("attempts " << c.attempts << ", retries " << c.hook_retries << ", successes " << c.successes
                                 << ", aborted " << c.aborted << ", failed " << c.failed << ", budget give-ups "
                                 << c.give_up_budget << ", tokens left " << budget->tokens());
}

BOOST_AUTO_TEST_CASE(set_active_false_flipped_mid_run) {
  constexpr int calls = 2000;
  counters c;
  asio::thread_pool pool(4);
  std::vector<std::shared_ptr<test::completion_record>> records(calls);
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .attempts(50)
                          .wait_initial(1ms)
                          .wait_max(2ms)
                          .wait_jitter(0s);
  for (int i = 0; i < calls; ++i) {
    auto strand = asio::make_strand(pool);
    records[i] = std::make_shared<test::completion_record>();
    auto op = [&c, strand](auto token) {
      ++c.attempts;
      return asio::post(strand, asio::append(std::move(token), refused));
    };
    stamina::async_retry(strand, policy, op,
                         asio::bind_executor(strand, test::once(records[i], [&c](error_code) { ++c.completions; })));
  }
  std::this_thread::sleep_for(10ms);
  stamina::set_active(false);  // calls already running keep their snapshot; new ones run once
  for (int i = 0; i < 100; ++i) {
    auto rec = std::make_shared<test::completion_record>();
    records.push_back(rec);
    auto op = [&c, &pool](auto token) {
      ++c.attempts;
      return asio::post(pool, asio::append(std::move(token), refused));
    };
    stamina::async_retry(pool, policy, op, test::once(rec, [&c](error_code) { ++c.completions; }));
  }
  pool.join();
  stamina::set_active(true);
  for (const auto& r : records) BOOST_REQUIRE_EQUAL(r->calls, 1);
  BOOST_TEST(c.completions.load() == calls + 100);
  BOOST_TEST(c.attempts.load() <= 50L * calls + 100);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(teardown)

BOOST_AUTO_TEST_CASE(stop_and_destroy_with_thousands_of_pending_retries) {
  // Forms: no attempt_timeout; an attempt_timeout; an op taking the context, with an inherited
  // deadline (the contexts live in the calls' states, destroyed with them).
  for (int form = 0; form < 3; ++form) {
    std::vector<std::shared_ptr<test::completion_record>> records;
    {
      asio::io_context ctx;
      for (int i = 0; i < 5000; ++i) {
        records.push_back(std::make_shared<test::completion_record>());
        records.back()->may_be_abandoned = true;
        const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                                .wait_initial(10s)
                                .attempt_timeout(form == 1 ? std::optional<stamina::duration>(30s) : std::nullopt);
        auto op = [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), refused)); };
        if (form == 2) {
          auto context_op = [op](const stamina::attempt_context& attempt, auto token) {
            BOOST_REQUIRE(attempt.remaining().has_value());
            return op(std::move(token));
          };
          const auto inherited = stamina::retry_policy(policy).deadline(std::chrono::steady_clock::now() + 60s);
          stamina::async_retry(ctx, inherited, context_op, test::once(records.back(), [](error_code) {}));
          continue;
        }
        stamina::async_retry(ctx, policy, op, test::once(records.back(), [](error_code) {}));
      }
      ctx.run_for(200ms);  // first attempts fail; every call now waits 10 s or more
      ctx.stop();
    }  // destroyed with 5000 pending waits: the handlers are destroyed, never called
    for (const auto& r : records) {
      BOOST_REQUIRE_EQUAL(r->calls, 0);
      BOOST_REQUIRE(r->destroyed_uncalled);
    }
  }
}

BOOST_AUTO_TEST_CASE(thread_pool_stopped_mid_retry) {
  std::vector<std::shared_ptr<test::completion_record>> records;
  {
    asio::thread_pool pool(4);
    for (int i = 0; i < 2000; ++i) {
      records.push_back(std::make_shared<test::completion_record>());
      records.back()->may_be_abandoned = true;
      auto strand = asio::make_strand(pool);
      auto op = [strand](auto token) { return asio::post(strand, asio::append(std::move(token), refused)); };
      const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                              .attempts(std::nullopt)
                              .wait_initial(1ms)
                              .wait_max(3ms);
      stamina::async_retry(strand, policy, op,
                           asio::bind_executor(strand, test::once(records.back(), [](error_code) {})));
    }
    std::this_thread::sleep_for(20ms);
    pool.stop();
    pool.join();
  }
  for (const auto& r : records) BOOST_REQUIRE(r->calls <= 1);
}

// Ops that take the attempt's context, on strands of a 4-thread pool (under TSan in CI): half
// of them make a stamina call within their attempt, from the pool's threads, so the outer call
// does not retry their refusal; the others are retried and succeed.
BOOST_AUTO_TEST_CASE(ops_taking_the_context_on_strands_of_four_threads) {
  std::atomic<int> wrong{0};
  std::vector<std::shared_ptr<test::completion_record>> records;
  {
    asio::thread_pool pool(4);
    const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                            .attempts(3)
                            .wait_initial(1ms)
                            .wait_max(2ms)
                            .wait_jitter(0s)
                            .throttle(nullptr)
                            .budget(nullptr)
                            .deadline(std::chrono::steady_clock::now() + 60s);
    for (int i = 0; i < 500; ++i) {
      auto rec = std::make_shared<test::completion_record>();
      records.push_back(rec);
      auto strand = asio::make_strand(pool);
      const bool nest = i % 2 == 0;
      auto op = [strand, nest, &wrong](const stamina::attempt_context& ctx, auto token) {
        if (!ctx.remaining() || ctx.remaining()->count() > 60) ++wrong;
        if (nest) {
          const auto inner = stamina::retry_policy(stamina::on_error(asio::error::connection_refused)).within(ctx);
          (void)inner;
        }
        const error_code ec = ctx.attempt() < 2 ? refused : error_code();
        return asio::post(strand, asio::append(std::move(token), ec));
      };
      stamina::async_retry(strand, policy, op,
                           asio::bind_executor(strand, test::once(rec, [nest, &wrong](error_code ec) {
                                                 if (nest ? ec != refused : !!ec) ++wrong;
                                               })));
    }
    pool.join();
  }
  for (const auto& r : records) BOOST_REQUIRE_EQUAL(r->calls, 1);
  BOOST_TEST(wrong.load() == 0);
}

// Attempts whose handler comes back while the op is still being started: completed by another
// thread of the same pool at once (the op goes on reading its captures after starting), or
// destroyed uncalled on another thread. No strand, four threads, every driver: the callback, a
// co_await of a token op (the caller coroutine) and an awaitable op, and the hedge; half of the
// retry calls under an attempt_timeout. Each call completes exactly once,
// with the attempt's result (invalid_argument for a lost handler); ASan and TSan watch the rest.
BOOST_AUTO_TEST_CASE(handlers_coming_back_during_the_start_on_four_threads) {
  std::atomic<int> wrong{0};
  std::vector<std::shared_ptr<test::completion_record>> records;
  {
    asio::thread_pool pool(4);
    const auto policy = stamina::retry_policy(stamina::on_error(refused))
                            .attempts(3)
                            .wait_initial(100us)
                            .wait_jitter(0s)
                            .throttle(nullptr)
                            .budget(nullptr);
    const auto limited = stamina::retry_policy(policy).attempt_timeout(10s);  // bound to the limit's slot
    const auto hedging = stamina::hedging_policy(stamina::on_error(refused)).delay(50us).budget(nullptr);
    for (int i = 0; i < 800; ++i) {
      auto rec = std::make_shared<test::completion_record>();
      records.push_back(rec);
      const bool lose = (i / 4) % 3 == 0;    // the first attempt's handler is destroyed elsewhere
      const bool refuse = (i / 4) % 3 == 1;  // the first attempt is refused, the second succeeds
      auto op = [lose, refuse, ex = pool.get_executor(), attempts = std::make_shared<std::atomic<int>>(0),
                 tag = std::string(32, 'x')](auto token) {
        return asio::async_initiate<decltype(token), void(error_code)>(
            [&](auto handler) {
              const int n = ++*attempts;
              if (lose && n == 1) {
                std::thread([taken = std::move(handler)]() mutable { auto gone = std::move(taken); }).join();
              } else {
                asio::post(ex, asio::append(std::move(handler), refuse && n == 1 ? refused : error_code()));
              }
              std::size_t sum = 0;  // the op is still running when another thread completes it
              for (int k = 0; k < 200; ++k) sum += tag.size();
              if (sum != 200 * 32) throw std::logic_error("the op's captures changed under it");
            },
            token);
      };
      auto check = [lose, &wrong](error_code ec) {
        if (lose ? ec != asio::error::invalid_argument : !!ec) ++wrong;
      };
      switch (i % 4) {
        case 0:
          stamina::async_retry(pool, (i / 12) % 2 == 0 ? policy : limited, op, test::once(rec, check));
          break;
        case 1:  // plain use_awaitable: the caller coroutine's own attempt handler
          asio::co_spawn(
              pool,
              [&pool, policy = (i / 12) % 2 == 0 ? policy : limited, op]() -> asio::awaitable<error_code> {
                error_code ec;
                try {
                  co_await stamina::async_retry(pool, policy, op);
                } catch (const boost::system::system_error& e) {
                  ec = e.code();
                }
                co_return ec;
              },
              test::once(rec, [check, &wrong](const std::exception_ptr& e, error_code ec) {
                if (e) ++wrong;
                check(ec);
              }));
          break;
        case 2: {  // an awaitable op, started through co_spawn on the composed path
          auto awaitable_op = [lose, refuse,
                               attempts = std::make_shared<std::atomic<int>>(0)]() -> asio::awaitable<int> {
            const int n = ++*attempts;
            if ((lose || refuse) && n == 1) throw boost::system::system_error(refused);
            co_return n;
          };
          stamina::async_retry(pool, policy, awaitable_op,
                               test::once(rec, [&wrong](const std::exception_ptr& e, int n) {
                                 if (e || (n != 1 && n != 2)) ++wrong;
                               }));
          break;
        }
        default:  // a hedge sent after the lost attempt may succeed first
          stamina::async_hedge(pool, hedging, op, test::once(rec, [lose, &wrong](error_code ec) {
                                 if (ec && (!lose || ec != asio::error::invalid_argument)) ++wrong;
                               }));
          break;
      }
    }
    pool.join();
  }
  for (const auto& r : records) BOOST_REQUIRE_EQUAL(r->calls, 1);
  BOOST_TEST(wrong.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// One throttle shared by four threads through every state: healthy, watching, pacing (the
// mutex path) and back. Run under TSan in CI; the counts must reconcile.
BOOST_AUTO_TEST_CASE(a_shared_throttle_on_four_threads) {
  auto throttle = std::make_shared<stamina::adaptive_throttle>(2.0, 50, 10);
  throttle->interval(0.005).min_rate(2000);
  std::atomic<bool> dependency_down{true};
  std::atomic<long> sent{0}, held{0}, succeeded{0};
  const auto policy = stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
                          .wait_initial(std::chrono::microseconds(50))
                          .wait_max(std::chrono::microseconds(200))
                          .wait_jitter(std::chrono::microseconds(50))
                          .timeout(std::nullopt)
                          .attempts(5)
                          .throttle(throttle);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        const auto r = stamina::retry(policy, [&] {
          ++sent;
          return dependency_down ? boost::system::error_code(boost::asio::error::connection_refused)
                                 : boost::system::error_code();
        });
        if (!r) ++succeeded;
        if (r == stamina::error::throttled) ++held;
      }
    });
  // Down until the throttle paced (it holds attempts back only above its lowest rate, which
  // four threads on a loaded machine may take a while to reach), for at most 10 s: a fixed
  // 30 ms saw 35 attempts and no pacing in a CI run whose threads had just started.
  const auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (throttle->held_back() == 0 && std::chrono::steady_clock::now() < give_up_at)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // and a little longer, pacing
  dependency_down = false;
  for (auto& t : threads) t.join();
  BOOST_TEST_MESSAGE("sent " << sent << ", calls ended throttled " << held << ", succeeded " << succeeded
                             << ", held back " << throttle->held_back());
  BOOST_TEST(succeeded > 0);
  BOOST_TEST(throttle->held_back() > 0u);  // it paced while the dependency was down
  BOOST_TEST(sent.load() <= 4 * 2000 * 5);
}

// A breaker that is the policy's one protection lets first attempts through as plain calls
// while closed (call_state::closed_breaker_admits). Four blocking threads against a fifth that
// isolates and resets it: every refused call is counted by the breaker exactly once. Then async
// calls on strands of a 4-thread pool (half through a work-tracking executor), half of whose
// attempts never answer, torn down mid-call: each handler runs at most once and the breaker is
// left closed, holding nothing.
BOOST_AUTO_TEST_CASE(a_breaker_s_plain_path_on_threads_and_teardown) {
  auto b = std::make_shared<stamina::circuit_breaker>("plain");
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                          .attempts(1)
                          .timeout(std::nullopt)
                          .breaker(b);
  std::atomic<bool> done{false};
  std::atomic<long> open_results{0}, successes{0};
  std::thread flipper([&] {
    while (!done) {
      b->isolate();
      std::this_thread::yield();
      b->reset();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        const error_code r = stamina::retry(policy, [] { return error_code(); });
        if (!r) ++successes;
        if (r == stamina::error::circuit_open) ++open_results;
      }
    });
  for (auto& th : threads) th.join();
  done = true;
  flipper.join();
  BOOST_TEST(successes + open_results == 20000);
  BOOST_TEST(b->stats().refused == static_cast<std::uint64_t>(open_results.load()));
  b->reset();

  std::vector<std::shared_ptr<test::completion_record>> records;
  {
    asio::thread_pool pool(4);
    std::vector<std::shared_ptr<asio::steady_timer>> never;  // attempts that never answer
    std::mutex never_mutex;
    for (int i = 0; i < 2000; ++i) {
      records.push_back(std::make_shared<test::completion_record>());
      records.back()->may_be_abandoned = true;
      auto strand = asio::make_strand(pool);
      auto op = [strand, i, &never, &never_mutex](auto token) {
        if (i % 2 == 0) return asio::post(strand, asio::append(std::move(token), error_code()));
        auto timer = std::make_shared<asio::steady_timer>(strand, std::chrono::hours(1));
        {
          const std::lock_guard lock(never_mutex);
          never.push_back(timer);
        }
        return timer->async_wait(std::move(token));
      };
      auto handler = asio::bind_executor(strand, test::once(records.back(), [](error_code) {}));
      if (i % 4 < 2)
        stamina::async_retry(strand, policy, op, std::move(handler));
      else
        stamina::async_retry(asio::prefer(strand, asio::execution::outstanding_work.tracked), policy, op,
                             std::move(handler));
    }
    std::this_thread::sleep_for(20ms);
    pool.stop();
    pool.join();
    const std::lock_guard lock(never_mutex);
    never.clear();
  }
  for (const auto& r : records) BOOST_REQUIRE(r->calls <= 1);
  BOOST_TEST((b->current() == stamina::circuit_breaker::state::closed));
  BOOST_TEST(b->allow());
}

// Each shared object hammered from several threads (what TSan in CI looks at): the library's
// own state, the switches, the hook registry.
BOOST_AUTO_TEST_SUITE(shared_objects_on_threads)

// Four threads ask and answer at once while the breaker opens, probes and closes (the clock
// moves with them): no data race (TSan in CI), and every probe is accounted for.
BOOST_AUTO_TEST_CASE(a_circuit_breaker_on_four_threads) {
  static std::atomic<long> ticks{0};
  stamina::circuit_breaker b("shared");
  b.clock(+[] { return static_cast<double>(ticks.load(std::memory_order_relaxed)) * 1e-3; })
      .minimum_calls(10)
      .window(1s)
      .open_for(50ms)
      .probes(3);
  std::atomic<int> transitions{0};
  b.on_transition([&](const stamina::circuit_breaker::transition&) { ++transitions; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        ticks.fetch_add(1, std::memory_order_relaxed);
        if (!b.allow()) continue;
        const int kind = (i + t) % 7;
        if (kind == 0)
          b.on_abandoned();
        else if (kind < 4 && (i / 2000) % 2 == 0)
          b.on_failure();  // failing phases open it
        else
          b.on_success();
      }
    });
  for (auto& th : threads) th.join();
  BOOST_TEST(b.stats().opened > 0U);
  BOOST_TEST(transitions.load() > 0);
}

BOOST_AUTO_TEST_CASE(the_switches_flipped_while_read) {
  // One thread flips the switches while others read them: every reader sees one of the two
  // states whole, never a mix (testing with the default count, say). TSan checks the rest.
  const stamina::retry_policy policy = test::retry_transient();
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::thread writer([&stop] {
    while (!stop) {
      stamina::set_testing(true, 5);
      stamina::set_testing(false);
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&inconsistent, &policy] {
      for (int i = 0; i < 20000; ++i) {
        const stamina::backoff b(policy, 1);
        const bool ok = b.testing() ? b.max_attempts() == 5u : b.max_attempts() == 10u;
        if (!ok) ++inconsistent;
      }
    });
  for (auto& th : readers) th.join();
  stop = true;
  writer.join();
  stamina::set_testing(false);
  BOOST_TEST(inconsistent == 0);
  BOOST_TEST(!stamina::is_testing());
}

BOOST_AUTO_TEST_CASE(setting_hooks_while_retries_run_on_other_threads) {
  std::atomic<bool> stop{false};
  std::atomic<long> hook_calls{0};
  std::thread setter([&] {
    while (!stop) {
      stamina::instrumentation::set_on_retry_hooks({[&](const stamina::retry_details&) { ++hook_calls; }});
      stamina::instrumentation::set_on_retry_hooks({});
    }
  });
  std::vector<std::thread> workers;
  std::atomic<long> attempts{0};
  stamina::testing_scope scope(5);
  for (int t = 0; t < 3; ++t)
    workers.emplace_back([&attempts] {
      for (int i = 0; i < 500; ++i) {
        try {
          stamina::retry(test::retry_transient(), [&]() -> int {
            ++attempts;
            throw test::transient_error("x");
          });
        } catch (const test::transient_error&) {
        }
      }
    });
  for (auto& w : workers) w.join();
  stop = true;
  setter.join();
  stamina::instrumentation::set_on_retry_hooks({});
  // Every call made its 5 attempts whatever the registry held meanwhile (and TSan sees no race).
  BOOST_TEST(attempts.load() == 3L * 500 * 5);
  BOOST_TEST(hook_calls.load() <= 3L * 500 * 4);
}

// Calls on four threads, each on its own strand, through one concurrency limit of three places:
// never more than three attempts in flight, every handler called once, every place given back
// (one call in five is cancelled at a random moment: queued, or during its attempt). Every third
// call is hedged (up to three attempts at once, a hedge after 100 us): hedged and retried calls
// share the limit.
BOOST_AUTO_TEST_CASE(a_concurrency_limit_on_four_threads) {
  constexpr int calls = 2000;
  auto limit = std::make_shared<stamina::concurrency_limit>("stress");
  limit->max_limit(3);
  const auto policy = stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; }))
                          .wait_initial(1ms)
                          .wait_jitter(1ms)
                          .limit(limit);
  const auto hedged = stamina::hedging_policy(stamina::retry_on([](const stamina::failure&) { return true; }))
                          .attempts(3)
                          .delay(100us)
                          .budget(nullptr)
                          .limit(limit);
  std::atomic<int> in_flight{0}, most{0}, completions{0}, attempts{0};
  asio::thread_pool pool(4);
  std::vector<std::unique_ptr<call_state>> states;
  std::vector<std::unique_ptr<asio::steady_timer>> work;
  states.reserve(calls);
  work.reserve(calls);
  std::vector<std::shared_ptr<test::completion_record>> records(calls);
  for (int i = 0; i < calls; ++i) {
    states.push_back(std::make_unique<call_state>(pool, static_cast<unsigned>(i)));
    work.push_back(std::make_unique<asio::steady_timer>(states.back()->strand));
    call_state& s = *states.back();
    asio::steady_timer& busy = *work.back();
    records[i] = std::make_shared<test::completion_record>();
    asio::post(s.strand, [&, i] {
      auto op = [&, i]() -> asio::awaitable<void> {
        ++attempts;
        const int now = ++in_flight;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        struct leave {
          std::atomic<int>& n;
          ~leave() { --n; }
        } guard{in_flight};
        const bool fail = std::uniform_int_distribution<int>(0, 99)(s.rng) < 30;
        const auto latency = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 300)(s.rng));
        if (i % 3 == 2) {  // hedged: attempts of one call run at once, each with a timer of its own
          asio::steady_timer own(s.strand, latency);
          co_await own.async_wait(asio::use_awaitable);
        } else {
          busy.expires_after(latency);
          co_await busy.async_wait(asio::use_awaitable);  // throws when the call is cancelled
        }
        if (fail) throw stamina::system_error(refused);
      };
      auto done = asio::bind_cancellation_slot(
          s.signal.slot(),
          asio::bind_executor(s.strand, test::once(records[i], [&](std::exception_ptr) { ++completions; })));
      if (i % 3 == 2)
        stamina::async_hedge(s.strand, hedged, op, std::move(done));
      else
        stamina::async_retry(s.strand, policy, op, std::move(done));
      if (std::uniform_int_distribution<int>(0, 4)(s.rng) == 0) {
        s.canceller.expires_after(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(s.rng)));
        s.canceller.async_wait([&s](error_code) { s.signal.emit(asio::cancellation_type::terminal); });
      }
    });
  }
  pool.join();
  for (const auto& r : records) BOOST_REQUIRE_EQUAL(r->calls, 1);
  BOOST_TEST(completions.load() == calls);
  BOOST_TEST(most.load() <= 3);
  BOOST_TEST(limit->in_flight() == 0u);
  BOOST_TEST(limit->waiting() == 0u);
  BOOST_TEST_MESSAGE("attempts " << attempts.load() << ", most in flight " << most.load());
}

BOOST_AUTO_TEST_CASE(a_retry_budget_on_four_threads) {
  // Far from both bounds, no clamping happens, so every update must be accounted for exactly.
  stamina::retry_budget b(1e6, 0.5);
  const auto hammer = [&b](auto action) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&b, action] {
        for (int i = 0; i < 100000; ++i) action(b);
      });
    for (auto& th : threads) th.join();
  };
  hammer([](stamina::retry_budget& x) { x.on_failure(); });
  BOOST_TEST(b.tokens() == 600000.0);
  hammer([](stamina::retry_budget& x) { x.on_success(); });
  BOOST_TEST(b.tokens() == 800000.0);
  BOOST_TEST(b.retry_allowed());
}

BOOST_AUTO_TEST_SUITE_END()
