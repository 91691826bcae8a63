// What a retry wrapper costs against the hand-written code it replaces (Google Benchmark).
// Each stamina case has its baseline in the same binary and run; benchmarks/summary.py prints
// the ratios. Heap allocations per call are counted with a replaced operator new and reported
// as the counter `allocs`.

#include <stamina/stamina.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dlfcn.h>
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

// --- allocation counting ------------------------------------------------------------------------
namespace {
// Per thread, and not atomic: a counter that costs a locked instruction per allocation would
// weigh on the cases that allocate (a callback's post from outside run()) more than on their
// baselines. Each thread's loop reads its own count.
thread_local long allocations = 0;
}  // namespace
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// Asio's recycling allocator (coroutine frames, handler memory) takes its memory from
// aligned_alloc, not operator new: counted too, so that a coroutine frame too large to be
// recycled (Asio keeps blocks up to about 1 KiB) shows as an allocation per call.
// The allocation itself is the C library's (found once with dlsym), so that counting costs
// the cases that allocate nothing but the count.
extern "C" void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  using real_type = void* (*)(std::size_t, std::size_t);
  static const auto real = reinterpret_cast<real_type>(dlsym(RTLD_NEXT, "aligned_alloc"));
  ++allocations;
  return real(align, n);
}

namespace {

struct transient : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reports allocations per iteration for the measured loop.
class alloc_counter {
 public:
  explicit alloc_counter(benchmark::State& s) : state_(s), start_(allocations) {}
  ~alloc_counter() {
    state_.counters["allocs"] =
        benchmark::Counter(static_cast<double>(allocations - start_) /
                           static_cast<double>(std::max<benchmark::IterationCount>(1, state_.iterations())));
  }

 private:
  benchmark::State& state_;
  long start_;
};

const stamina::retry_policy& default_policy() {
  static const stamina::retry_policy p = stamina::on_exception<transient>();
  return p;
}
const stamina::retry_policy& error_policy() {
  static const stamina::retry_policy p = stamina::retry_policy(stamina::on_error(asio::error::try_again));
  return p;
}

struct quiet {
  quiet() {
    stamina::instrumentation::set_on_retry_hooks({});
    stamina::instrumentation::set_on_give_up_hooks({});
  }
} quiet_hooks;

// --- sync ----------------------------------------------------------------------------------------
__attribute__((noinline)) int work() {
  benchmark::ClobberMemory();
  return 42;
}

void sync_direct_call(benchmark::State& state) {
  alloc_counter a(state);
  for (auto _ : state) benchmark::DoNotOptimize(work());
}

// The loop people write: try, catch, sleep, try again.
__attribute__((noinline)) int hand_written_sync() {
  for (int attempt = 1;; ++attempt) {
    try {
      return work();
    } catch (const transient&) {
      if (attempt == 10) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    }
  }
}

void sync_hand_written_loop(benchmark::State& state) {
  alloc_counter a(state);
  for (auto _ : state) benchmark::DoNotOptimize(hand_written_sync());
}

void sync_stamina_retry(benchmark::State& state) {
  alloc_counter a(state);
  const auto& p = default_policy();  // with the default 45 s timeout: one clock read per call
  for (auto _ : state) benchmark::DoNotOptimize(stamina::retry(p, work));
}

// The floor of a call with a deadline: one read of the coarse clock the drivers measure a call's
// elapsed time with (CLOCK_MONOTONIC_COARSE on Linux).
void clock_coarse_read(benchmark::State& state) {
  alloc_counter a(state);  // every case reports the same counters (the CSV needs them)
  for (auto _ : state) benchmark::DoNotOptimize(stamina::detail::coarse_steady_clock::now());
}

// The floor of a concurrency limit's round trip: the limit reads its (precise, monotonic) clock
// when an attempt takes a place and when it gives it back; this is one such read.
void clock_precise_read(benchmark::State& state) {
  alloc_counter a(state);
  static stamina::concurrency_limit limit;
  for (auto _ : state) benchmark::DoNotOptimize(limit.now());
}

void sync_stamina_retry_no_timeout(benchmark::State& state) {
  alloc_counter a(state);
  static const stamina::retry_policy p = stamina::retry_policy(default_policy()).timeout(std::nullopt);
  for (auto _ : state) benchmark::DoNotOptimize(stamina::retry(p, work));
}

// A middle layer's healthy call (issue 26): the incoming grpc-timeout parsed into a deadline on a
// per-request copy of the policy, and the time left formatted for the outgoing request from the
// attempt's context. Against sync_stamina_retry: what the layered wiring adds per call.
void sync_stamina_retry_layered(benchmark::State& state) {
  alloc_counter a(state);
  const auto& shared = default_policy();
  for (auto _ : state) {
    stamina::retry_policy p = shared;
    if (const auto left = stamina::parse_grpc_timeout("250m")) p.deadline(std::chrono::steady_clock::now() + *left);
    benchmark::DoNotOptimize(stamina::retry(p, [](const stamina::attempt_context& ctx) {
      const std::string header = stamina::format_grpc_timeout(*ctx.remaining());
      benchmark::DoNotOptimize(header.data());
      return work();
    }));
  }
}

// The same policy with a closed circuit breaker that has seen no failure: its cost on a success.
void sync_stamina_retry_breaker(benchmark::State& state) {
  alloc_counter a(state);
  static const stamina::retry_policy p = stamina::retry_policy(default_policy())
                                             .timeout(std::nullopt)
                                             .breaker(std::make_shared<stamina::circuit_breaker>());
  for (auto _ : state) benchmark::DoNotOptimize(stamina::retry(p, work));
}

// The same policy with a concurrency limit that has room: its cost on a success (two clock reads
// and the limit's lock twice: a place taken, then given back with the round trip).
void sync_stamina_retry_limit(benchmark::State& state) {
  alloc_counter a(state);
  static const stamina::retry_policy p = stamina::retry_policy(default_policy())
                                             .timeout(std::nullopt)
                                             .limit(std::make_shared<stamina::concurrency_limit>());
  for (auto _ : state) benchmark::DoNotOptimize(stamina::retry(p, work));
}

// The quick-start shape: a policy made per call from a retry_on (all defaults). Against the same
// call with a policy made once; on two threads too (a process-wide lock would show there).
void sync_stamina_retry_policy_per_call(benchmark::State& state) {
  alloc_counter a(state);
  for (auto _ : state) benchmark::DoNotOptimize(stamina::retry(stamina::on_exception<transient>(), work));
}

// --- async: runs the measured loop inside one coroutine --------------------------------------------
template <class Body>
void in_coroutine(benchmark::State& state, Body body) {
  asio::io_context ctx(1);
  std::exception_ptr failed;
  asio::co_spawn(ctx, body(state, ctx), [&](std::exception_ptr e) { failed = e; });
  ctx.run();
  if (failed) state.SkipWithError("coroutine failed");
}

asio::awaitable<int> trivial_awaitable() { co_return work(); }

asio::awaitable<void> awaitable_direct(benchmark::State& state, asio::io_context&) {
  alloc_counter a(state);
  for (auto _ : state) benchmark::DoNotOptimize(co_await trivial_awaitable());
}

// Hand-written: try/catch around the attempt, a steady_timer made only if a wait is needed.
asio::awaitable<void> awaitable_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  for (auto _ : state) {
    std::optional<asio::steady_timer> timer;
    int value = 0;
    for (int attempt = 1;; ++attempt) {
      std::exception_ptr error;
      try {
        value = co_await trivial_awaitable();
      } catch (const transient&) {
        error = std::current_exception();
      }
      if (!error) break;
      if (attempt == 10) std::rethrow_exception(error);
      if (!timer) timer.emplace(ctx);
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::use_awaitable);
    }
    benchmark::DoNotOptimize(value);
  }
}

// The same loop as a coroutine of its own, awaited per call: what any retry function that
// returns an asio::awaitable pays before it does anything (a frame, a resumption each way).
asio::awaitable<int> hand_written_retrying_call(asio::io_context& ctx) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    std::exception_ptr error;
    try {
      co_return co_await trivial_awaitable();
    } catch (const transient&) {
      error = std::current_exception();
    }
    if (attempt == 10) std::rethrow_exception(error);
    if (!timer) timer.emplace(ctx);
    timer->expires_after(100ms);
    co_await timer->async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> awaitable_wrapped_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  for (auto _ : state) benchmark::DoNotOptimize(co_await hand_written_retrying_call(ctx));
}

asio::awaitable<void> awaitable_stamina(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  const auto op = [] { return trivial_awaitable(); };
  for (auto _ : state) benchmark::DoNotOptimize(co_await stamina::async_retry(ctx, default_policy(), op));
}

// Token op: a post completing with void(error_code) (~ a trivial Asio operation).
auto token_op(asio::io_context& ctx) {
  return [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code())); };
}

asio::awaitable<void> token_direct(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    benchmark::DoNotOptimize(ec);
  }
}

asio::awaitable<void> token_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) {
    std::optional<asio::steady_timer> timer;
    for (int attempt = 1;; ++attempt) {
      auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
      if (!ec || ec != asio::error::try_again) break;
      if (attempt == 10) throw boost::system::system_error(ec);
      if (!timer) timer.emplace(ctx);
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::use_awaitable);
    }
  }
}

// The token loop as a coroutine of its own, awaited per call (the floor of any awaitable retry
// function with a token op, as hand_written_retrying_call is for an awaitable op). With
// `zero_waits` it retries at once (the retry path's floor).
template <class Op>
asio::awaitable<void> hand_written_token_call(asio::io_context& ctx, Op& op, bool zero_waits = false) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) co_return;
    if (ec != asio::error::try_again || attempt == 10) throw boost::system::system_error(ec);
    if (zero_waits) continue;
    if (!timer) timer.emplace(ctx);
    timer->expires_after(100ms);
    co_await timer->async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> token_wrapped_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) co_await hand_written_token_call(ctx, op);
}

asio::awaitable<void> token_stamina(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) co_await stamina::async_retry(ctx, error_policy(), op);
}

asio::awaitable<void> token_stamina_policy_per_call(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) co_await stamina::async_retry(ctx, stamina::on_error(asio::error::try_again), op);
}

void async_awaitable_direct(benchmark::State& s) { in_coroutine(s, awaitable_direct); }
void async_token_stamina_policy_per_call(benchmark::State& s) { in_coroutine(s, token_stamina_policy_per_call); }
void async_awaitable_hand_written_loop(benchmark::State& s) { in_coroutine(s, awaitable_hand_written); }
void async_awaitable_wrapped_hand_written_loop(benchmark::State& s) { in_coroutine(s, awaitable_wrapped_hand_written); }
void async_awaitable_stamina(benchmark::State& s) { in_coroutine(s, awaitable_stamina); }
void async_token_direct(benchmark::State& s) { in_coroutine(s, token_direct); }
void async_token_hand_written_loop(benchmark::State& s) { in_coroutine(s, token_hand_written); }
void async_token_stamina(benchmark::State& s) { in_coroutine(s, token_stamina); }
void async_token_wrapped_hand_written_loop(benchmark::State& s) { in_coroutine(s, token_wrapped_hand_written); }

// Callbacks initiated outside run(), one call per run(): `start(ctx, op, handler)` starts one.
template <class Start>
void callbacks(benchmark::State& state, Start start) {
  asio::io_context ctx(1);
  auto op = token_op(ctx);
  alloc_counter a(state);
  for (auto _ : state) {
    start(ctx, op, [](error_code ec) { benchmark::DoNotOptimize(ec); });
    ctx.run();
    ctx.restart();
  }
}

// Callback token (the composed operation) against the same op with a plain callback.
void callback_direct(benchmark::State& state) {
  callbacks(state, [](auto& /*ctx*/, auto& op, auto h) { op(std::move(h)); });
}

// The floor of any composed retry operation: the hand-written loop as an async_compose of its own
// (the attempt's completion comes back through the composed operation, a timer made on the first
// failure).
template <class Op>
struct hand_written_composed {
  asio::io_context& ctx;
  Op& op;
  int attempt = 0;
  bool waited = false;  // the completion is the timer's
  std::unique_ptr<asio::steady_timer> timer;
  template <class Self>
  void operator()(Self& self, error_code ec = {}) {
    if (waited) {
      waited = false;
      if (ec) return self.complete(ec);
    } else if (attempt > 0) {
      if (!ec || ec != asio::error::try_again || attempt == 10) return self.complete(ec);
      if (!timer) timer = std::make_unique<asio::steady_timer>(ctx);
      timer->expires_after(100ms);
      waited = true;
      return timer->async_wait(std::move(self));
    }
    ++attempt;
    op(std::move(self));
  }
};

template <class Op, class Handler>
void hand_written_retry(asio::io_context& ctx, Op& op, Handler&& handler) {
  asio::async_compose<Handler, void(error_code)>(hand_written_composed<Op>{ctx, op}, handler, ctx);
}

void callback_composed_hand_written(benchmark::State& state) {
  callbacks(state, [](auto& ctx, auto& op, auto h) { hand_written_retry(ctx, op, std::move(h)); });
}

void callback_stamina(benchmark::State& state) {
  callbacks(state, [](auto& ctx, auto& op, auto h) { stamina::async_retry(ctx, error_policy(), op, std::move(h)); });
}

// --- the retry path, zero waits (testing mode): one failure then success per call --------------------
// Fails with try_again and succeeds, in turn.
auto flapping_op(asio::io_context& ctx, bool& fail) {
  return [&ctx, &fail](auto token) {
    fail = !fail;
    return asio::post(ctx, asio::append(std::move(token), fail ? error_code(asio::error::try_again) : error_code()));
  };
}

asio::awaitable<void> retry_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (auto _ : state) {
    for (int attempt = 1;; ++attempt) {
      auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
      if (!ec) break;
      if (ec != asio::error::try_again || attempt == 10) throw boost::system::system_error(ec);
      // zero wait: try again at once
    }
  }
}

asio::awaitable<void> retry_stamina(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (auto _ : state) co_await stamina::async_retry(ctx, error_policy(), op);
}

asio::awaitable<void> retry_wrapped_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (auto _ : state) co_await hand_written_token_call(ctx, op, true);
}

void async_retry_path_hand_written_loop(benchmark::State& s) { in_coroutine(s, retry_hand_written); }
void async_retry_path_wrapped_hand_written_loop(benchmark::State& s) { in_coroutine(s, retry_wrapped_hand_written); }
void async_retry_path_stamina(benchmark::State& s) {
  stamina::testing_scope zero_waits(2);
  in_coroutine(s, retry_stamina);
}

// --- backoff decision cost per strategy --------------------------------------------------------------
void backoff_decision(benchmark::State& state) {
  const auto j = static_cast<stamina::jitter>(state.range(0));
  const auto p = stamina::retry_policy(default_policy()).jitter(j).attempts(std::nullopt).timeout(std::nullopt);
  stamina::backoff b(p, 1);
  const stamina::decision retry = stamina::decision::retry();
  unsigned n = 0;
  for (auto _ : state) {
    if (++n == 32) {  // keep the retry number realistic
      b = stamina::backoff(p, n);
      n = 0;
    }
    benchmark::DoNotOptimize(b.on_failure(retry, stamina::duration(0)));
  }
  state.SetLabel(std::string(stamina::to_string(j)));
}

}  // namespace

BENCHMARK(clock_coarse_read);
BENCHMARK(clock_precise_read);
BENCHMARK(sync_direct_call);
BENCHMARK(sync_hand_written_loop);
BENCHMARK(sync_stamina_retry);
BENCHMARK(sync_stamina_retry_no_timeout);
BENCHMARK(sync_stamina_retry_layered);
BENCHMARK(sync_stamina_retry_breaker);
BENCHMARK(sync_stamina_retry_limit);
BENCHMARK(sync_stamina_retry_policy_per_call);
BENCHMARK(async_awaitable_direct);
BENCHMARK(async_awaitable_hand_written_loop);
BENCHMARK(async_awaitable_wrapped_hand_written_loop);
BENCHMARK(async_awaitable_stamina);
BENCHMARK(async_token_direct);
BENCHMARK(async_token_hand_written_loop);
BENCHMARK(async_token_wrapped_hand_written_loop);
BENCHMARK(async_token_stamina);
BENCHMARK(async_token_stamina_policy_per_call);
// --- hedging's success path: the attempt completes long before the delay, so no hedge starts ---
const stamina::hedging_policy& hedge_policy() {
  static const stamina::hedging_policy p =
      stamina::hedging_policy(stamina::on_error(asio::error::try_again)).delay(1s).max_attempts(getenv("H1") ? 1 : 2);
  return p;
}
void callback_hedge(benchmark::State& state) {
  callbacks(state, [](auto& ctx, auto& op, auto h) { stamina::async_hedge(ctx, hedge_policy(), op, std::move(h)); });
}
asio::awaitable<void> token_hedge(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) co_await stamina::async_hedge(ctx, hedge_policy(), op);
}
void async_token_hedge(benchmark::State& s) { in_coroutine(s, token_hedge); }

// The same two with a reactor already running, as in any program with a socket or a timer: a
// hedge needs a timer, and the first timer makes every turn of io_context::run() poll epoll.
template <class Body>
void with_reactor(benchmark::State& state, Body body) {
  asio::io_context ctx(1);
  asio::steady_timer idle(ctx, std::chrono::hours(1));
  idle.async_wait([](error_code) {});
  std::exception_ptr failed;
  asio::co_spawn(ctx, body(state, ctx), [&](std::exception_ptr e) {
    failed = e;
    idle.cancel();
  });
  ctx.run();
  if (failed) state.SkipWithError("coroutine failed");
}
void reactor_token_stamina(benchmark::State& s) { with_reactor(s, token_stamina); }
template <class Start>
void callback_with_reactor(benchmark::State& state, Start start) {
  asio::io_context ctx(1);
  asio::steady_timer idle(ctx, std::chrono::hours(1));
  idle.async_wait([](error_code) {});
  auto op = token_op(ctx);
  alloc_counter a(state);
  for (auto _ : state) {
    bool done = false;
    start(ctx, op, [&done](error_code ec) {
      benchmark::DoNotOptimize(ec);
      done = true;
    });
    while (!done) ctx.run_one();
  }
  idle.cancel();
  ctx.run();
}
void reactor_callback_stamina(benchmark::State& s) {
  callback_with_reactor(s, [](auto& ctx, auto& op, auto h) { stamina::async_retry(ctx, error_policy(), op, h); });
}
void reactor_callback_hedge(benchmark::State& s) {
  callback_with_reactor(s, [](auto& ctx, auto& op, auto h) { stamina::async_hedge(ctx, hedge_policy(), op, h); });
}
void reactor_token_hedge(benchmark::State& s) { with_reactor(s, token_hedge); }

// The floor of any hedge's success path, hand-written: the attempt with the hedge's delay armed on
// a timer of its own beside it and disarmed when the attempt completes first (the cancelled wait
// still completes). On one thread, so no strand; no budget, latency window or counters.
asio::awaitable<void> token_hedge_hand_written(benchmark::State& state, asio::io_context& ctx) {
  alloc_counter a(state);
  auto op = token_op(ctx);
  for (auto _ : state) {
    asio::steady_timer delay(ctx, 1s);
    delay.async_wait([](error_code) {});  // would start the second attempt
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    delay.cancel();
    benchmark::DoNotOptimize(ec);
  }
}
void reactor_token_hedge_hand_written(benchmark::State& s) { with_reactor(s, token_hedge_hand_written); }

BENCHMARK(callback_direct);
BENCHMARK(callback_composed_hand_written);
BENCHMARK(callback_stamina);
BENCHMARK(callback_hedge);
BENCHMARK(async_token_hedge);
BENCHMARK(reactor_token_stamina);
BENCHMARK(reactor_token_hedge);
BENCHMARK(reactor_token_hedge_hand_written);
BENCHMARK(reactor_callback_stamina);
BENCHMARK(reactor_callback_hedge);
BENCHMARK(async_retry_path_hand_written_loop);
BENCHMARK(async_retry_path_wrapped_hand_written_loop);
BENCHMARK(async_retry_path_stamina);
BENCHMARK(backoff_decision)->DenseRange(0, 3);
// Last: once a process has started a thread, glibc and libstdc++ use atomic instructions where a
// single-threaded process does not (shared_ptr counts, malloc): the cases above would be slower
// if they ran after these, and the baselines of an older binary would not be comparable.
BENCHMARK(sync_stamina_retry)->Threads(2)->UseRealTime();
BENCHMARK(sync_stamina_retry_policy_per_call)->Threads(2)->UseRealTime();

BENCHMARK_MAIN();
