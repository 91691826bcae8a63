// 100,000 concurrent retrying calls in one io_context, each failing twice with millisecond
// waits (100 ms then 200 ms, no jitter: long enough that every call is pending at once): memory per pending call, timer
// lateness and total time, for a hand-written coroutine loop and for stamina (use_awaitable and callback), on 1 and 4
// threads. Memory is glibc's bytes in use (mallinfo2) while every call waits, minus before.
//
// Usage: scale [calls] [csv-file]

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// --- live-bytes accounting: glibc's count of bytes in use (covers Asio's aligned allocations) --
namespace {
long long live_bytes() { return static_cast<long long>(mallinfo2().uordblks); }
}  // namespace

namespace {

struct per_call {
  int attempts = 0;
  clock_type::time_point last_attempt;
};

struct run_stats {
  std::atomic<long> done{0}, waiting{0};
  std::vector<double> lateness_us;  // filled per thread then merged
  std::mutex mutex;
  void record_lateness(double us) {
    std::lock_guard lock(mutex);
    lateness_us.push_back(us);
  }
};

// The attempt: fails twice (try_again), then succeeds. Records how late each retry started.
auto make_op(asio::io_context& ctx, per_call& call, run_stats& stats) {
  return [&ctx, &call, &stats](auto token) {
    const auto now = clock_type::now();
    if (call.attempts > 0) {
      const double expected_us = call.attempts == 1 ? 100000 : 200000;
      stats.record_lateness(std::chrono::duration<double, std::micro>(now - call.last_attempt).count() - expected_us);
      --stats.waiting;
    }
    call.last_attempt = now;
    const bool fail = ++call.attempts <= 2;
    if (fail) ++stats.waiting;
    return asio::post(ctx, asio::append(std::move(token), fail ? error_code(asio::error::try_again) : error_code()));
  };
}

// No throttle: 100,000 calls failing at once is the storm a throttle exists to pace, and its
// verdicts (some calls held back, some giving up) would be measured instead of the machinery the
// hand-written loop is compared with.
stamina::retry_policy scale_policy() {
  return stamina::retry_policy(stamina::on_error(asio::error::try_again))
      .wait_initial(100ms)
      .wait_jitter(0s)
      .timeout(std::nullopt)
      .throttle(nullptr);
}

enum class variant { hand_written, hand_written_wrapped, stamina_awaitable, stamina_callback };
const char* name(variant v) {
  switch (v) {
    case variant::hand_written:
      return "hand-written coroutine loop";
    case variant::hand_written_wrapped:
      return "hand-written loop, own coroutine";
    case variant::stamina_awaitable:
      return "stamina, co_await (use_awaitable)";
    case variant::stamina_callback:
      return "stamina, callback";
  }
  return "?";
}

template <class Op>
asio::awaitable<void> hand_written_loop(asio::io_context& ctx, Op op) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) break;
    if (!timer) timer.emplace(ctx);
    timer->expires_after(std::chrono::milliseconds(100 * attempt));  // 100 ms, then 200 ms
    co_await timer->async_wait(asio::use_awaitable);
  }
}

// The floor of any awaitable retry function: the same loop in a coroutine of its own, awaited by
// the caller's coroutine exactly as stamina_call awaits async_retry (two frames per pending call).
asio::awaitable<void> hand_written_wrapped_call(asio::io_context& ctx, per_call& call, run_stats& stats) {
  co_await hand_written_loop(ctx, make_op(ctx, call, stats));
  ++stats.done;
}

asio::awaitable<void> hand_written_call(asio::io_context& ctx, per_call& call, run_stats& stats) {
  auto op = make_op(ctx, call, stats);
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) break;
    if (!timer) timer.emplace(ctx);
    timer->expires_after(std::chrono::milliseconds(100 * attempt));  // 100 ms, then 200 ms
    co_await timer->async_wait(asio::use_awaitable);
  }
  ++stats.done;
}

asio::awaitable<void> stamina_call(asio::io_context& ctx, per_call& call, run_stats& stats,
                                   const stamina::retry_policy& p) {
  co_await stamina::async_retry(ctx, p, make_op(ctx, call, stats));
  ++stats.done;
}

struct result {
  double bytes_per_pending_call = 0;
  double p50_us = 0, p99_us = 0;
  double seconds = 0;
};

result run(variant v, int calls, int threads) {
  asio::io_context ctx(threads);
  run_stats stats;
  stats.lateness_us.reserve(static_cast<std::size_t>(calls) * 2);
  std::vector<per_call> state(static_cast<std::size_t>(calls));
  const auto policy = scale_policy();
  const long long before = live_bytes();
  const auto start = clock_type::now();
  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  for (int i = 0; i < calls; ++i) {
    per_call& call = state[static_cast<std::size_t>(i)];
    switch (v) {
      case variant::hand_written:
        asio::co_spawn(ctx, hand_written_call(ctx, call, stats), rethrow);
        break;
      case variant::hand_written_wrapped:
        asio::co_spawn(ctx, hand_written_wrapped_call(ctx, call, stats), rethrow);
        break;
      case variant::stamina_awaitable:
        asio::co_spawn(ctx, stamina_call(ctx, call, stats, policy), rethrow);
        break;
      case variant::stamina_callback:
        stamina::async_retry(ctx, policy, make_op(ctx, call, stats), [&stats](error_code) { ++stats.done; });
        break;
    }
  }
  // Run until every call has failed once and waits on its timer (single thread for the
  // measurement), then read the live bytes.
  while (stats.waiting.load() < calls && ctx.run_one() > 0) {
  }
  const long long pending = live_bytes() - before;
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : pool) t.join();
  result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  r.bytes_per_pending_call = static_cast<double>(pending) / calls;
  auto& l = stats.lateness_us;
  std::sort(l.begin(), l.end());
  if (!l.empty()) {
    r.p50_us = l[l.size() / 2];
    r.p99_us = l[std::min(l.size() - 1, l.size() * 99 / 100)];
  }
  if (stats.done.load() != calls) {
    std::fprintf(stderr, "only %ld of %d calls completed\n", stats.done.load(), calls);
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 100000;
  const std::string csv = argc > 2 ? argv[2] : "scale.csv";
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  std::ofstream out(csv);
  out << "variant,threads,calls,bytes_per_pending_call,lateness_p50_us,lateness_p99_us,total_s\n";
  std::printf("%d concurrent calls, each failing twice (waits 100 ms, 200 ms)\n", calls);
  std::printf("%-36s %7s %14s %14s %14s %9s\n", "variant", "threads", "bytes/pending", "late p50 us", "late p99 us",
              "total s");
  double baseline_bytes[5] = {};
  for (int threads : {1, 4}) {
    for (variant v : {variant::hand_written, variant::hand_written_wrapped, variant::stamina_awaitable,
                      variant::stamina_callback}) {
      run(v, calls / 10, threads);  // warm-up: allocator pools, page faults
      const result r = run(v, calls, threads);
      if (v == variant::hand_written) baseline_bytes[threads] = r.bytes_per_pending_call;
      std::printf("%-36s %7d %14.0f %14.0f %14.0f %9.2f   memory %.2fx hand-written\n", name(v), threads,
                  r.bytes_per_pending_call, r.p50_us, r.p99_us, r.seconds,
                  r.bytes_per_pending_call / baseline_bytes[threads]);
      out << '"' << name(v) << "\"," << threads << ',' << calls << ',' << r.bytes_per_pending_call << ',' << r.p50_us
          << ',' << r.p99_us << ',' << r.seconds << '\n';
    }
  }
  return 0;
}
