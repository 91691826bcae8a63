// stamina demo: a brief hiccup, and whether the retries turn it into a lasting outage.
//
// One process, loopback only:
//   backend - a UDP service with finite capacity: it answers requests first in, first out,
//             100 per second, one at a time. For 2 seconds its capacity drops to 30 per
//             second (a garbage-collection pause, a noisy neighbour). Like most servers, it
//             cannot tell that a client gave up: it still serves requests nobody waits for.
//   clients - requests arrive at 75 per second (75 % of capacity); each one is a
//             `co_await stamina::async_retry(...)` whose attempts are limited to 0.5 s.
// With `--naive`, each request retries the way a first retry loop does: at once, up to 10
// times. The dip makes attempts time out; naive retries pile more requests into the queue
// than the backend can serve, every answer comes too late, and the backend stays down after
// the dip is over (a metastable failure). stamina's defaults — backoff with jitter and the
// default throttle, which paces calls to a dependency that stops answering — let the queue
// drain, and the service recovers seconds after the dip. With a concurrency limit (what the
// README tells server authors to add), the calls also keep the backend's queue short during
// the dip: it answers every request in time, and the goodput of the dip is kept too.
//
// Usage: demo [--naive | --no-limit] [--seconds N] [--csv FILE] [--expect recovery|collapse]

#include <stamina/stamina.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr double capacity = 100, dip_capacity = 30, arrival_rate = 75;
constexpr double dip_from = 4, dip_seconds = 2;

steady::time_point start;
double now_s() { return std::chrono::duration<double>(steady::now() - start).count(); }
steady::time_point at(double s) {
  return start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}

struct second {
  int arrived = 0, attempts = 0, succeeded = 0, failed = 0;
  std::size_t queue = 0;
};

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// --- backend: FIFO, timer-paced capacity, serves abandoned requests too ----------------------------

class backend {
 public:
  explicit backend(asio::io_context& ctx)
      : socket_(ctx, udp::endpoint(asio::ip::address_v4::loopback(), 0)), wake_(ctx, steady::time_point::max()) {
    socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20));
    asio::co_spawn(ctx, receive(), rethrow);
    asio::co_spawn(ctx, serve(), rethrow);
  }
  udp::endpoint endpoint() const { return socket_.local_endpoint(); }
  std::size_t queue() const { return queue_.size(); }
  void stop() {
    socket_.close();
    stopped_ = true;
    wake_.cancel();
  }

 private:
  asio::awaitable<void> receive() {
    std::uint64_t id = 0;
    udp::endpoint from;
    for (;;) {
      auto [ec, n] =
          co_await socket_.async_receive_from(asio::buffer(&id, sizeof id), from, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec || n != sizeof id) continue;
      queue_.push_back({id, from});
      wake_.cancel();
    }
  }
  asio::awaitable<void> serve() {
    asio::steady_timer busy(co_await asio::this_coro::executor);
    auto free_at = steady::now();
    while (!stopped_) {
      if (queue_.empty()) {
        wake_.expires_at(steady::time_point::max());
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      const auto [id, from] = queue_.front();
      queue_.pop_front();
      const double t = now_s();
      const double c = t >= dip_from && t < dip_from + dip_seconds ? dip_capacity : capacity;
      free_at = std::max(free_at, steady::now()) +
                std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1 / c));
      busy.expires_at(free_at);
      co_await busy.async_wait(asio::as_tuple(asio::use_awaitable));
      boost::system::error_code ignored;
      socket_.send_to(asio::buffer(&id, sizeof id), from, 0, ignored);
    }
  }

  udp::socket socket_;
  asio::steady_timer wake_;
  std::deque<std::pair<std::uint64_t, udp::endpoint>> queue_;
  bool stopped_ = false;
};

// --- client side: one datagram out, its answer back, per attempt -----------------------------------

class backend_client {
 public:
  backend_client(asio::io_context& ctx, udp::endpoint server)
      : socket_(ctx, udp::endpoint(asio::ip::address_v4::loopback(), 0)), server_(server) {
    socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20));
    asio::co_spawn(ctx, receive(), rethrow);
  }
  void stop() { socket_.close(); }

  // One attempt. Cancellable: stamina's attempt limit cancels the wait for the answer (and an
  // answer that comes later is dropped: the backend's work on it was wasted).
  asio::awaitable<void> call() {
    const std::uint64_t id = ++next_id_;
    asio::steady_timer answer(co_await asio::this_coro::executor, steady::time_point::max());
    waiting w{&answer};
    pending_.emplace(id, &w);
    boost::system::error_code ignored;
    socket_.send_to(asio::buffer(&id, sizeof id), server_, 0, ignored);
    co_await answer.async_wait(asio::as_tuple(asio::use_awaitable));
    pending_.erase(id);
    if (!w.answered) throw boost::system::system_error(asio::error::timed_out);
  }

 private:
  struct waiting {
    asio::steady_timer* timer;
    bool answered = false;
  };
  asio::awaitable<void> receive() {
    std::uint64_t id = 0;
    for (;;) {
      auto [ec, n] = co_await socket_.async_receive(asio::buffer(&id, sizeof id), asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec || n != sizeof id) continue;
      if (auto it = pending_.find(id); it != pending_.end()) {
        it->second->answered = true;
        it->second->timer->cancel();
      }
    }
  }

  udp::socket socket_;
  udp::endpoint server_;
  std::unordered_map<std::uint64_t, waiting*> pending_;
  std::uint64_t next_id_ = 0;
};

// An ASCII plot of successes per second against arrivals.
void plot(const std::vector<second>& s, int seconds) {
  std::printf("\ngoodput (successes per second; '|' marks the arrival rate, 75/s)\n");
  for (int t = 0; t < seconds; ++t) {
    const int bar = s[t].succeeded / 3;
    std::string line(static_cast<std::size_t>(std::max(bar, 25) + 1), ' ');
    std::fill_n(line.begin(), bar, '#');
    line[25] = line[25] == '#' ? '#' : '|';
    const bool dip = t >= dip_from && t < dip_from + dip_seconds;
    std::printf("%3ds %4d %s%s\n", t, s[t].succeeded, line.c_str(), dip ? "  <- capacity dip" : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool naive = false, no_limit = false;
  int seconds = 20;
  std::string csv, expect;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--naive") naive = true;
    if (a == "--no-limit") no_limit = true;
    if (a == "--seconds" && i + 1 < argc) seconds = std::max(10, std::atoi(argv[++i]));
    if (a == "--csv" && i + 1 < argc) csv = argv[++i];
    if (a == "--expect" && i + 1 < argc) expect = argv[++i];
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // The retries of hundreds of requests would flood the terminal; the per-second lines say it.
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});

  // [policy]
  // stamina's defaults, plus a limit on each attempt (an answer later than 0.5 s is useless) and
  // an adaptive limit on the attempts in flight to the backend, shared by every call to it.
  auto backend_limit = std::make_shared<stamina::concurrency_limit>("backend");
  auto policy = stamina::retry_policy(stamina::on_error(asio::error::timed_out))
                    .name("backend")
                    .attempt_timeout(500ms)
                    .limit(backend_limit);
  // [policy]
  if (naive)  // the loop people write first: again at once, 10 times, no shared protection
    policy.attempts(10).wait_initial(0s).wait_jitter(0s).throttle(nullptr).limit(nullptr);
  if (no_limit) policy.limit(nullptr);  // stamina's defaults alone
  const char* const mode = naive      ? "--naive: immediate retries, 10 tries"
                           : no_limit ? "--no-limit: stamina's defaults, 0.5 s per attempt"
                                      : "stamina's defaults and a concurrency limit, 0.5 s per attempt";

  asio::io_context ctx(1);
  start = steady::now();
  backend server(ctx);
  backend_client client(ctx, server.endpoint());
  std::vector<second> stats(static_cast<std::size_t>(seconds) + 2);
  const auto this_second = [&]() -> second& {
    return stats[std::min(stats.size() - 1, static_cast<std::size_t>(now_s()))];
  };

  std::printf("stamina demo (%s): requests at %.0f/s to a backend serving %.0f/s, %.0f/s from %.0f s to %.0f s\n", mode,
              arrival_rate, capacity, dip_capacity, dip_from, dip_from + dip_seconds);

  // Open-loop arrivals: requests keep coming whether or not earlier ones are done.
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::mt19937_64 rng(42);
        std::exponential_distribution<double> gap(arrival_rate);
        asio::steady_timer next_arrival(ctx);
        for (double t = gap(rng); t < seconds; t += gap(rng)) {
          next_arrival.expires_at(at(t));
          co_await next_arrival.async_wait(asio::use_awaitable);
          ++this_second().arrived;
          auto attempt = [&]() -> asio::awaitable<void> {
            ++this_second().attempts;
            co_await client.call();
          };
          asio::co_spawn(
              ctx, [&, attempt]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, attempt); },
              [&](std::exception_ptr e) { ++(e ? this_second().failed : this_second().succeeded); });
        }
      },
      rethrow);

  // One progress line per second.
  asio::steady_timer ticker(ctx);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int t = 1; t <= seconds; ++t) {
          ticker.expires_at(at(t));
          co_await ticker.async_wait(asio::use_awaitable);
          second& s = stats[static_cast<std::size_t>(t - 1)];
          s.queue = server.queue();
          const bool dip = t - 1 >= dip_from && t - 1 < dip_from + dip_seconds;
          std::printf(
              "[%3ds] capacity %3.0f/s  arrivals %3d  attempts %4d/s  ok %3d  failed %3d  backend queue %5zu (%.1f "
              "s)\n",
              t, dip ? dip_capacity : capacity, s.arrived, s.attempts, s.succeeded, s.failed, s.queue,
              static_cast<double>(s.queue) / capacity);
        }
        server.stop();
        client.stop();
        ctx.stop();  // calls still in flight are abandoned with the io_context
      },
      rethrow);
  ctx.run();

  // Summary: recovered = from some second after the dip on, every 2 s window served at least
  // 80 % of the requests that arrived in it.
  long arrived = 0, ok = 0, failed = 0, attempts = 0;
  int peak = 0;
  for (int t = 0; t < seconds; ++t) {
    arrived += stats[t].arrived;
    ok += stats[t].succeeded;
    failed += stats[t].failed;
    attempts += stats[t].attempts;
    peak = std::max(peak, stats[t].attempts);
  }
  int recovered_at = -1;
  const int dip_end = static_cast<int>(dip_from + dip_seconds);
  for (int t = dip_end; t + 2 < seconds && recovered_at < 0; ++t) {
    bool healthy = true;
    for (int w = t; w + 2 <= seconds - 1 && healthy; ++w)
      healthy = stats[w].succeeded + stats[w + 1].succeeded >= 0.8 * (stats[w].arrived + stats[w + 1].arrived);
    if (healthy) recovered_at = t;
  }
  plot(stats, seconds);
  std::printf("\nsummary (%s)\n", naive ? "--naive" : no_limit ? "--no-limit" : "stamina with a concurrency limit");
  std::printf("  requests            %ld (%ld succeeded, %ld failed, %ld unfinished)\n", arrived, ok, failed,
              arrived - ok - failed);
  std::printf("  attempts            %ld (%.2f per success)\n", attempts, ok > 0 ? double(attempts) / ok : 0.0);
  std::printf("  peak attempts/s     %d (%.1fx the arrival rate; the backend serves %.0f/s)\n", peak,
              peak / arrival_rate, capacity);
  // Goodput during the dip: what the backend can answer in time is its capacity, 30/s.
  int in_dip = 0;
  for (int t = static_cast<int>(dip_from); t < dip_end; ++t) in_dip += stats[static_cast<std::size_t>(t)].succeeded;
  std::printf("  goodput in the dip  %d successes in %.0f s (the backend can answer %.0f in time)\n", in_dip,
              dip_seconds, dip_capacity * dip_seconds);
  if (recovered_at >= 0)
    std::printf("  recovered           %d s after the dip ended\n", recovered_at - dip_end);
  else
    std::printf("  recovered           no: still down %d s after a %.0f s dip\n", seconds - dip_end, dip_seconds);

  if (!csv.empty()) {
    std::ofstream out(csv);
    out << "second,arrived,attempts,succeeded,failed,queue\n";
    for (int t = 0; t < seconds; ++t)
      out << t << ',' << stats[t].arrived << ',' << stats[t].attempts << ',' << stats[t].succeeded << ','
          << stats[t].failed << ',' << stats[t].queue << '\n';
  }
  if (expect == "recovery") return recovered_at >= 0 ? 0 : 1;
  if (expect == "collapse") return recovered_at < 0 ? 0 : 1;
  return 0;
}
