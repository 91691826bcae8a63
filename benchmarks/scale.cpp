// 100,000 concurrent retrying calls in one io_context, each failing twice with millisecond
// waits (100 ms then 200 ms, no jitter: long enough that every call is pending at once): memory per pending call, timer
// lateness and total time, for a hand-written coroutine loop, the floors under it (that loop in a coroutine of its own,
// holding its policy, driving stamina::backoff, its waits in its frame) and stamina (use_awaitable and callback), on 1
// and 4 threads, with the heap kept between runs and given back before each. Memory is glibc's bytes in use (mallinfo2,
// heap and mmapped) once every call's first attempt has failed and its wait is armed (on one thread; on four, a
// few calls may still be on their way), minus before.
//
// Usage: scale [calls] [csv-file] [rounds]

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <sys/resource.h>
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
// Heap chunks in use plus mmapped ones: with M_TRIM_THRESHOLD set, glibc's mmap threshold stays at
// 128 KiB, so the timer queue's array (2 MiB for 100,000 timers) is mmapped or not depending on the
// free heap earlier runs left; counting both makes the reading the same either way.
long long live_bytes() {
  const auto info = mallinfo2();
  return static_cast<long long>(info.uordblks + info.hblkhd);
}
}  // namespace

namespace {

struct per_call {
  int attempts = 0;
  clock_type::time_point last_attempt;
};

struct run_stats {
  std::atomic<long> done{0};
  std::vector<double> lateness_us;  // of every retry, from every thread (under the mutex)
  std::vector<double> by_retry[2];  // the same, of first and of second retries
  std::mutex mutex;
  void record_lateness(double us, int retry) {
    std::lock_guard lock(mutex);
    lateness_us.push_back(us);
    by_retry[retry - 1].push_back(us);
  }
};

// The attempt: fails twice (try_again), then succeeds, its completion posted. Records how late
// each retry started.
auto make_op(asio::io_context& ctx, per_call& call, run_stats& stats) {
  return [&ctx, &call, &stats](auto token) {
    const auto now = clock_type::now();
    if (call.attempts > 0) {
      const double expected_us = call.attempts == 1 ? 100000 : 200000;
      stats.record_lateness(std::chrono::duration<double, std::micro>(now - call.last_attempt).count() - expected_us,
                            call.attempts);
    }
    call.last_attempt = now;
    const bool fail = ++call.attempts <= 2;
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

enum class variant {
  hand_written,
  hand_written_wrapped,
  hand_written_with_policy,
  hand_written_with_backoff,
  hand_written_waits_in_frame,
  stamina_awaitable,
  stamina_callback
};
const char* name(variant v) {
  switch (v) {
    case variant::hand_written:
      return "hand-written coroutine loop";
    case variant::hand_written_wrapped:
      return "hand-written loop, own coroutine";
    case variant::hand_written_with_policy:
      return "the same, holding the policy";
    case variant::hand_written_with_backoff:
      return "the same, driving stamina::backoff";
    case variant::hand_written_waits_in_frame:
      return "the same, waits in its frame";
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

// The floor of any awaitable retry function waiting through use_awaitable: the same loop in a
// coroutine of its own, awaited by the caller's coroutine exactly as stamina_call awaits
// async_retry (two frames per pending call, and the wait's own: see the floors below).
asio::awaitable<void> hand_written_wrapped_call(asio::io_context& ctx, per_call& call, run_stats& stats) {
  co_await hand_written_loop(ctx, make_op(ctx, call, stats));
  ++stats.done;
}

// The floor of a retry function under the contract (DESIGN.md: "`op` and `policy` are
// decay-copied"): the same loop in a coroutine of its own that holds its copy of the policy and
// reads its waits from it. The copy is made as stamina makes its own: the function called in
// the co_await takes the policy by reference, the coroutine keeps it by value.
template <class Op>
asio::awaitable<void> hand_written_loop_with_policy(asio::io_context& ctx, stamina::retry_policy policy, Op op) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) break;
    if (!timer) timer.emplace(ctx);
    timer->expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(policy.wait_initial()) * attempt);
    co_await timer->async_wait(asio::use_awaitable);
  }
}

// The floor of a retry function under the contract's state (DESIGN.md section 4: "`backoff` holds
// the state of one retrying call (attempt number, waited so far, start time, previous wait, RNG
// state) ... users can drive it in hand-written loops"): the loop holding its policy, driving the
// public `stamina::backoff` over it (56 B), and keeping the call's start for the deadline (8 B;
// read from the clock only when the backoff needs it: this benchmark's policy has no timeout).
// With this policy the backoff's waits are the other loops' (100 ms, then 200 ms: no jitter).
// The step is taken, and the timer armed, by a function: g++ 12 keeps every local of a block
// that holds a co_await in the frame, and a careful hand-written loop would not keep the step.
bool arm_next_wait(asio::steady_timer& timer, stamina::backoff& waits, error_code ec, clock_type::time_point started) {
  const auto elapsed = waits.needs_clock() ? stamina::duration(clock_type::now() - started) : stamina::duration(0);
  const stamina::backoff::step step = waits.on_failure(stamina::failure(ec), elapsed);
  if (!step.retry) return false;
  timer.expires_after(std::chrono::duration_cast<clock_type::duration>(step.wait));
  return true;
}

template <class Op>
asio::awaitable<void> hand_written_loop_with_backoff(asio::io_context& ctx, stamina::retry_policy policy, Op op) {
  stamina::backoff waits(policy);
  const clock_type::time_point started = waits.needs_clock() ? clock_type::now() : clock_type::time_point();
  std::optional<asio::steady_timer> timer;
  for (;;) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) break;
    if (!timer) timer.emplace(ctx);
    if (!arm_next_wait(*timer, waits, ec, started)) break;
    co_await timer->async_wait(asio::use_awaitable);
  }
}

// The same, its waits co_awaited as operations (`as_tuple(deferred)`; Asio 1.24, Boost 1.80, on),
// which run in the loop's frame, as stamina's do: through use_awaitable every pending wait holds a
// coroutine frame of its own (use_awaitable's initiation). The floor of stamina's bytes.
template <class Op>
asio::awaitable<void> hand_written_loop_waits_in_frame(asio::io_context& ctx, stamina::retry_policy policy, Op op) {
  stamina::backoff waits(policy);
  const clock_type::time_point started = waits.needs_clock() ? clock_type::now() : clock_type::time_point();
  std::optional<asio::steady_timer> timer;
  for (;;) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) break;
    if (!timer) timer.emplace(ctx);
    if (!arm_next_wait(*timer, waits, ec, started)) break;
    co_await timer->async_wait(asio::as_tuple(asio::deferred));
  }
}

// What the caller awaits: the loop holding its policy, driving a backoff or not, its waits in its
// frame or not.
template <variant V, class Op>
asio::awaitable<void> retry_with_policy_copy(asio::io_context& ctx, const stamina::retry_policy& policy, Op op) {
  if constexpr (V == variant::hand_written_waits_in_frame)
    return hand_written_loop_waits_in_frame(ctx, policy, std::move(op));
  else if constexpr (V == variant::hand_written_with_backoff)
    return hand_written_loop_with_backoff(ctx, policy, std::move(op));
  else
    return hand_written_loop_with_policy(ctx, policy, std::move(op));
}

template <variant V>
asio::awaitable<void> hand_written_with_policy_call(asio::io_context& ctx, per_call& call, run_stats& stats,
                                                    const stamina::retry_policy& p) {
  co_await retry_with_policy_copy<V>(ctx, p, make_op(ctx, call, stats));
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
  double p99_first_us = 0, p99_second_us = 0;  // of first retries, of second retries
  double seconds = 0;
  long minor_faults = 0;  // pages the run touched for the first time (or again, after glibc gave them back)
};

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

result run(variant v, int calls, int threads) {
  asio::io_context ctx(threads);
  run_stats stats;
  stats.lateness_us.reserve(static_cast<std::size_t>(calls) * 2);
  for (auto& retries : stats.by_retry) retries.reserve(static_cast<std::size_t>(calls));
  std::vector<per_call> state(static_cast<std::size_t>(calls));
  const auto policy = scale_policy();
  const long long before = live_bytes();
  const long faults_before = minor_faults();
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
      case variant::hand_written_with_policy:
        asio::co_spawn(ctx, hand_written_with_policy_call<variant::hand_written_with_policy>(ctx, call, stats, policy),
                       rethrow);
        break;
      case variant::hand_written_with_backoff:
        asio::co_spawn(ctx, hand_written_with_policy_call<variant::hand_written_with_backoff>(ctx, call, stats, policy),
                       rethrow);
        break;
      case variant::hand_written_waits_in_frame:
        asio::co_spawn(ctx,
                       hand_written_with_policy_call<variant::hand_written_waits_in_frame>(ctx, call, stats, policy),
                       rethrow);
        break;
      case variant::stamina_awaitable:
        asio::co_spawn(ctx, stamina_call(ctx, call, stats, policy), rethrow);
        break;
      case variant::stamina_callback:
        stamina::async_retry(ctx, policy, make_op(ctx, call, stats), [&stats](error_code) { ++stats.done; });
        break;
    }
  }
  // Memory is read by a handler posted behind every call's first attempt, which posts itself once
  // more to land behind their completions too: every variant arms its wait inside the
  // completion's handler (the coroutine resumes, or the composed operation steps, in it), so on
  // one thread every call then waits on its timer (on four, the other threads may be amid one).
  // The whole run is under run(), as a server's: run_one() would give up Asio's per-thread
  // recycling of handler memory between handlers.
  long long pending = 0;
  asio::post(ctx,
             [&ctx, &pending, before] { asio::post(ctx, [&pending, before] { pending = live_bytes() - before; }); });
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : pool) t.join();
  result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  r.minor_faults = minor_faults() - faults_before;
  r.bytes_per_pending_call = static_cast<double>(pending) / calls;
  const auto p99 = [](std::vector<double>& l) {
    std::sort(l.begin(), l.end());
    return l.empty() ? 0.0 : l[std::min(l.size() - 1, l.size() * 99 / 100)];
  };
  r.p99_us = p99(stats.lateness_us);
  if (!stats.lateness_us.empty()) r.p50_us = stats.lateness_us[stats.lateness_us.size() / 2];
  r.p99_first_us = p99(stats.by_retry[0]);
  r.p99_second_us = p99(stats.by_retry[1]);
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
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  // By default glibc gives the top of its heap back to the kernel when enough of it is free, so
  // whether a run finds its pages mapped depended on which block the previous run happened to
  // free last (in stop 38's runs: the hand-written loops 875 faults a run, stamina 25,688). Here
  // every variant runs in the same condition: the heap is kept ("warm": a server's steady
  // state), or given back before every run ("cold": every run faults its memory in).
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  std::ofstream out(csv);
  out << "variant,threads,heap,calls,bytes_per_pending_call,lateness_p50_us,lateness_p99_us,total_s,minor_faults,"
         "lateness_p99_first_retry_us,lateness_p99_second_retry_us\n";
  std::printf("%d concurrent calls, each failing twice (waits 100 ms, 200 ms); medians of %d alternating rounds\n",
              calls, rounds);
  std::printf("%-36s %7s %5s %14s %12s %12s %8s %12s\n", "variant", "threads", "heap", "bytes/pending", "late p50 us",
              "late p99 us", "total s", "minor faults");
  const variant variants[] = {variant::hand_written,
                              variant::hand_written_wrapped,
                              variant::hand_written_with_policy,
                              variant::hand_written_with_backoff,
                              variant::hand_written_waits_in_frame,
                              variant::stamina_awaitable,
                              variant::stamina_callback};
  constexpr std::size_t count = std::size(variants);
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  struct condition {
    int threads;
    bool cold;
  };
  for (const condition c : {condition{1, false}, condition{4, false}, condition{1, true}}) {
    for (variant v : variants) run(v, calls / 10, c.threads);  // warm-up: allocator pools, page faults
    // Lateness moves with the machine's noise from run to run: the variants take turns, and each
    // one's median is kept (memory's too, which moves by a few bytes with the heap's layout).
    std::vector<result> runs[count];
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t i = 0; i < count; ++i) {
        if (c.cold) malloc_trim(0);
        runs[i].push_back(run(variants[i], calls, c.threads));
      }
    }
    double baseline_bytes = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::vector<double> p50, p99, seconds, faults, bytes_per_call;
      for (const result& r : runs[i]) {
        bytes_per_call.push_back(r.bytes_per_pending_call);
        p50.push_back(r.p50_us);
        p99.push_back(r.p99_us);
        seconds.push_back(r.seconds);
        faults.push_back(static_cast<double>(r.minor_faults));
      }
      // The split of the p99 between first and second retries is the median run's (by p99), so
      // that it adds up to the p99 printed; independent medians could come from different runs.
      std::vector<const result*> by_p99;
      for (const result& r : runs[i]) by_p99.push_back(&r);
      std::sort(by_p99.begin(), by_p99.end(), [](const result* a, const result* b) { return a->p99_us < b->p99_us; });
      const result& median_run = *by_p99[by_p99.size() / 2];
      const double bytes = median(bytes_per_call);
      if (variants[i] == variant::hand_written) baseline_bytes = bytes;
      const char* heap = c.cold ? "cold" : "warm";
      std::printf("%-36s %7d %5s %14.0f %12.0f %12.0f %8.2f %12.0f   memory %.2fx hand-written\n", name(variants[i]),
                  c.threads, heap, bytes, median(p50), median(p99), median(seconds), median(faults),
                  bytes / baseline_bytes);
      out << '"' << name(variants[i]) << "\"," << c.threads << ',' << heap << ',' << calls << ',' << bytes << ','
          << median(p50) << ',' << median(p99) << ',' << median(seconds) << ',' << median(faults) << ','
          << median_run.p99_first_us << ',' << median_run.p99_second_us << '\n';
    }
  }
  return 0;
}
