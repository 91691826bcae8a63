// Retry storms against real processes on loopback (started and stopped by
// benchmarks/real_storms.sh, by pid).
//
//   real_storms metastable-server PORT CAPACITY DIP_FROM DIP_SECONDS DIP_CAPACITY RUN_SECONDS CSV
//     A UDP server that serves requests first in, first out at CAPACITY per second (one at a
//     time, paced by a timer), DIP_CAPACITY from DIP_FROM for DIP_SECONDS. It serves every
//     request it received, also those whose client gave up long ago (wasted work). Writes per
//     second: received, served, queue length.
//   real_storms metastable-client PORT RATE RUN_SECONDS POLICY SEED CSV
//     Open-loop Poisson arrivals at RATE per second; each request is one async_retry call whose
//     attempts (one datagram, one answer) are limited to 0.5 s. Writes per second: requests
//     started, attempts sent, successes, failures; and, in the monotonic clock every process
//     shares, each request's start, end and outcome (CSV.requests) and each answered attempt's
//     round trip (CSV.attempts). The server writes its start (CSV.origin).
//   real_storms random-server PORT FAILING RUN_SECONDS
//     A UDP server with capacity to spare that answers every request 2 ms after it arrives, with
//     a failure at random (probability FAILING, e.g. 0.5) or a success.
//   real_storms random-client PORT RATE RUN_SECONDS POLICY SEED CSV
//     Open-loop Poisson arrivals at RATE per second for RUN_SECONDS; each request is one
//     async_retry call with stamina's defaults scaled down in time (waits 10 ms, cap 200 ms,
//     jitter 50 ms, timeout 2 s); a failed answer is a retryable failure. Writes one line:
//     requests, succeeded, attempts.
//   real_storms ratelimit-client PORT CLIENTS POLICY CSV
//     CLIENTS clients each GET / once through async_retry from a rate limiter answering 429 with
//     Retry-After; writes one line per client: attempts, success time, smallest gap between a
//     429 and the next attempt minus its Retry-After.
//   real_storms shard-server PORT RUN_SECONDS
//     A TCP server for one shard: per connection, reads 8 bytes and writes them back after 1 ms of
//     work. Stopped (killed by pid) and started again by the script to take the shard down.
//   real_storms shard-client PORT1,PORT2,PORT3 RATE RUN_SECONDS POLICY CSV
//     Open-loop arrivals at RATE per second, round robin over the shards; each request is one
//     async_retry call (connect, write, read; the defaults scaled down in time) with a policy
//     per shard. POLICY breaker: a circuit breaker per shard (`circuit_breakers`); default: the
//     defaults. Writes one line per request: shard, start time, latency, success.
//
// Policies: none, naive, v0.1 (0.1's defaults: no throttle, exact Retry-After), spread (v0.1
// with this version's spread after Retry-After), budget (v0.1 with a retry_budget), default
// (this version's defaults: spread and the default throttle), off (the defaults without a
// throttle), limit (the defaults and a concurrency_limit for the process, as the README tells
// server authors).

#include <stamina/stamina.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

const steady::time_point started = steady::now();
double seconds_since_start() { return std::chrono::duration<double>(steady::now() - started).count(); }
// The monotonic clock is one clock for every process on the machine: times written in it line
// the client's requests up with the server's dip.
double monotonic_now() { return std::chrono::duration<double>(steady::now().time_since_epoch()).count(); }

steady::duration seconds(double s) {
  return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}

// Runs `ctx` until `end`, then stops it (what is still pending is abandoned with the process).
void run_until(asio::io_context& ctx, steady::time_point end) {
  asio::steady_timer stop(ctx, end);
  stop.async_wait([&](boost::system::error_code) { ctx.stop(); });
  ctx.run();
}

// The completion of a co_spawned loop: a failure ends the process loudly.
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// Per-second counters, written as CSV at the end.
struct per_second {
  explicit per_second(std::size_t n, std::size_t columns) : rows(n + 2, std::vector<double>(columns, 0)) {}
  void add(std::size_t column, double v = 1) {
    const auto s = std::min(rows.size() - 1, static_cast<std::size_t>(std::max(0.0, seconds_since_start())));
    rows[s][column] += v;
  }
  void write(const std::string& path, const std::string& header) const {
    std::ofstream out(path);
    out << "second," << header << '\n';
    for (std::size_t s = 0; s < rows.size(); ++s) {
      out << s;
      for (double v : rows[s]) out << ',' << v;
      out << '\n';
    }
  }
  std::vector<std::vector<double>> rows;
};

stamina::retry_policy make_policy(const std::string& name, double attempt_limit) {
  auto p = stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; })).name("storm");
  if (attempt_limit > 0) p.attempt_timeout(stamina::duration(attempt_limit));
  if (name == "none") return p.attempts(1).throttle(nullptr);
  if (name == "naive") return p.wait_initial(0s).wait_jitter(0s).throttle(nullptr);
  if (name == "v0.1" || name == "spread") return p.throttle(nullptr);
  if (name == "budget") return p.throttle(nullptr).budget(std::make_shared<stamina::retry_budget>());
  if (name == "default") return p;
  if (name == "limit") return p.limit(std::make_shared<stamina::concurrency_limit>("storm"));
  if (name == "off") return p.throttle(nullptr);
  std::fprintf(stderr, "unknown policy %s\n", name.c_str());
  std::exit(2);
}

// --- metastable: server --------------------------------------------------------------------------

int metastable_server(unsigned short port, double capacity, double dip_from, double dip_seconds, double dip_capacity,
                      double run_seconds, const std::string& csv) {
  asio::io_context ctx(1);
  udp::socket socket(ctx, udp::endpoint(asio::ip::address_v4::loopback(), port));
  socket.set_option(asio::socket_base::receive_buffer_size(4 << 20));
  socket.set_option(asio::socket_base::send_buffer_size(4 << 20));
  struct work {
    std::uint64_t id;
    udp::endpoint from;
  };
  std::deque<work> queue;
  per_second stats(static_cast<std::size_t>(run_seconds), 3);  // received, served, queue
  asio::steady_timer wake(ctx, steady::time_point::max());

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::uint64_t id = 0;
        udp::endpoint from;
        for (;;) {
          auto [ec, n] = co_await socket.async_receive_from(asio::buffer(&id, sizeof id), from,
                                                            asio::as_tuple(asio::use_awaitable));
          if (ec == asio::error::operation_aborted) co_return;
          if (ec || n != sizeof id) continue;
          queue.push_back({id, from});
          stats.add(0);
          wake.cancel();
        }
      },
      rethrow);

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer service(ctx);
        auto free_at = steady::now();
        while (seconds_since_start() <= run_seconds) {
          if (queue.empty()) {
            wake.expires_at(steady::time_point::max());
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
          }
          const work w = queue.front();
          queue.pop_front();
          const double t = seconds_since_start();
          const double c = t >= dip_from && t < dip_from + dip_seconds ? dip_capacity : capacity;
          // One request at a time, 1/c seconds each: timer-paced capacity.
          free_at = std::max(free_at, steady::now()) + seconds(1.0 / c);
          service.expires_at(free_at);
          co_await service.async_wait(asio::as_tuple(asio::use_awaitable));
          boost::system::error_code ignored;
          socket.send_to(asio::buffer(&w.id, sizeof w.id), w.from, 0, ignored);  // served, even if abandoned
          stats.add(1);
        }
      },
      rethrow);

  asio::steady_timer sampler(ctx);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (double t = 1; t <= run_seconds; ++t) {
          sampler.expires_at(started + seconds(t));
          co_await sampler.async_wait(asio::use_awaitable);
          stats.rows[static_cast<std::size_t>(t) - 1][2] = static_cast<double>(queue.size());
        }
        socket.close();
        wake.cancel();
      },
      rethrow);
  ctx.run();
  stats.write(csv, "received,served,queue");
  std::ofstream(csv + ".origin") << std::chrono::duration<double>(started.time_since_epoch()).count() << '\n';
  return 0;
}

// --- metastable: client --------------------------------------------------------------------------

int metastable_client(unsigned short port, double rate, double run_seconds, const std::string& policy_name,
                      std::uint64_t seed, const std::string& csv) {
  asio::io_context ctx(1);
  const udp::endpoint server(asio::ip::address_v4::loopback(), port);
  udp::socket socket(ctx, udp::endpoint(asio::ip::address_v4::loopback(), 0));
  socket.set_option(asio::socket_base::receive_buffer_size(4 << 20));
  const stamina::retry_policy policy = make_policy(policy_name, 0.5);
  per_second stats(static_cast<std::size_t>(run_seconds), 4);  // requests, attempts, successes, failures

  // Attempts waiting for their answer, by id; an answer cancels the waiter's timer.
  struct waiter {
    asio::steady_timer* timer;
    bool answered = false;
  };
  std::unordered_map<std::uint64_t, waiter*> pending;
  struct round_trip {
    double sent, answered;
  };
  std::vector<round_trip> answered;  // each attempt the server answered in time
  std::uint64_t next_id = seed << 40;

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::uint64_t id = 0;
        for (;;) {
          auto [ec, n] =
              co_await socket.async_receive(asio::buffer(&id, sizeof id), asio::as_tuple(asio::use_awaitable));
          if (ec == asio::error::operation_aborted) co_return;
          if (ec || n != sizeof id) continue;
          const auto it = pending.find(id);
          if (it == pending.end()) continue;  // an attempt that was abandoned: wasted work
          it->second->answered = true;
          it->second->timer->cancel();
        }
      },
      rethrow);

  // One attempt: a datagram out, its answer back; cancellable (the attempt limit cancels it).
  auto attempt = [&]() -> asio::awaitable<void> {
    const std::uint64_t id = ++next_id;
    asio::steady_timer timer(co_await asio::this_coro::executor, steady::time_point::max());
    waiter w{&timer};
    pending.emplace(id, &w);
    stats.add(1);
    boost::system::error_code ignored;
    socket.send_to(asio::buffer(&id, sizeof id), server, 0, ignored);
    const double sent = monotonic_now();
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    pending.erase(id);
    if (w.answered) answered.push_back({sent, monotonic_now()});
    if (!w.answered) throw boost::system::system_error(asio::error::operation_aborted);
  };

  long in_flight = 0;
  struct request {
    double began, ended;
    bool succeeded;
  };
  std::vector<request> requests;  // each request that ended: when (monotonic seconds), how
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::mt19937_64 rng(seed);
        std::exponential_distribution<double> gap(rate);
        asio::steady_timer arrivals(ctx);
        auto next = steady::now();
        while (seconds_since_start() < run_seconds) {
          next += seconds(gap(rng));
          arrivals.expires_at(next);
          co_await arrivals.async_wait(asio::use_awaitable);
          stats.add(0);
          ++in_flight;
          const double began = monotonic_now();
          asio::co_spawn(
              ctx, [&]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, attempt); },
              [&, began](std::exception_ptr e) {
                --in_flight;
                stats.add(e ? 3 : 2);
                requests.push_back({began, monotonic_now(), !e});
              });
        }
      },
      rethrow);

  run_until(ctx, started + seconds(run_seconds + 0.6));
  stats.write(csv, "requests,attempts,successes,failures");
  std::ofstream times(csv + ".requests");
  times << "began,ended,succeeded\n";
  char line[96];
  for (const request& r : requests) {
    std::snprintf(line, sizeof line, "%.6f,%.6f,%d\n", r.began, r.ended, r.succeeded ? 1 : 0);
    times << line;
  }
  std::ofstream trips(csv + ".attempts");
  trips << "sent,answered\n";
  for (const round_trip& r : answered) {
    std::snprintf(line, sizeof line, "%.6f,%.6f\n", r.sent, r.answered);
    trips << line;
  }
  std::printf("client %s: %ld requests still in flight at the end\n", policy_name.c_str(), in_flight);
  return 0;
}

// --- random failures, capacity to spare --------------------------------------------------------------

int random_server(unsigned short port, double failing, double run_seconds) {
  asio::io_context ctx(1);
  udp::socket socket(ctx, udp::endpoint(asio::ip::address_v4::loopback(), port));
  socket.set_option(asio::socket_base::receive_buffer_size(4 << 20));
  std::mt19937_64 rng(port);
  std::uniform_real_distribution<double> u(0, 1);
  constexpr std::uint64_t failed_bit = std::uint64_t{1} << 63;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::uint64_t id = 0;
        udp::endpoint from;
        for (;;) {
          auto [ec, n] = co_await socket.async_receive_from(asio::buffer(&id, sizeof id), from,
                                                            asio::as_tuple(asio::use_awaitable));
          if (ec == asio::error::operation_aborted) co_return;
          if (ec || n != sizeof id) continue;
          const std::uint64_t answer = u(rng) < failing ? id | failed_bit : id;
          auto timer = std::make_shared<asio::steady_timer>(ctx, 2ms);  // the work takes 2 ms
          timer->async_wait([&socket, timer, answer, from](boost::system::error_code) {
            boost::system::error_code ignored;
            socket.send_to(asio::buffer(&answer, sizeof answer), from, 0, ignored);
          });
        }
      },
      rethrow);
  run_until(ctx, steady::now() + seconds(run_seconds));
  return 0;
}

int random_client(unsigned short port, double rate, double run_seconds, const std::string& policy_name,
                  std::uint64_t seed, const std::string& csv) {
  asio::io_context ctx(1);
  const udp::endpoint server(asio::ip::address_v4::loopback(), port);
  udp::socket socket(ctx, udp::endpoint(asio::ip::address_v4::loopback(), 0));
  socket.set_option(asio::socket_base::receive_buffer_size(4 << 20));
  constexpr std::uint64_t failed_bit = std::uint64_t{1} << 63;
  auto policy = stamina::retry_policy(stamina::on_exception<std::runtime_error>())
                    .name("random-" + std::to_string(port))
                    .wait_initial(10ms)
                    .wait_max(200ms)
                    .wait_jitter(50ms)
                    .timeout(2s);
  if (policy_name == "off") policy.throttle(nullptr);
  if (policy_name == "none") policy.throttle(nullptr).attempts(1);

  struct waiter {
    asio::steady_timer* timer;
    bool answered = false;
    bool failed = false;
  };
  std::unordered_map<std::uint64_t, waiter*> pending;
  struct round_trip {
    double sent, answered;
  };
  std::vector<round_trip> answered;  // each attempt the server answered in time
  std::uint64_t next_id = seed << 40;
  long requests = 0, succeeded = 0, attempts = 0, in_flight = 0;

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::uint64_t answer = 0;
        for (;;) {
          auto [ec, n] =
              co_await socket.async_receive(asio::buffer(&answer, sizeof answer), asio::as_tuple(asio::use_awaitable));
          if (ec == asio::error::operation_aborted) co_return;
          if (ec || n != sizeof answer) continue;
          const auto it = pending.find(answer & ~failed_bit);
          if (it == pending.end()) continue;
          it->second->answered = true;
          it->second->failed = (answer & failed_bit) != 0;
          it->second->timer->cancel();
        }
      },
      rethrow);

  // One attempt: a datagram out, its answer back (a lost datagram gives up after 1 s).
  auto attempt = [&]() -> asio::awaitable<void> {
    const std::uint64_t id = ++next_id;
    asio::steady_timer timer(co_await asio::this_coro::executor, 1s);
    waiter w{&timer};
    pending.emplace(id, &w);
    ++attempts;
    boost::system::error_code ignored;
    socket.send_to(asio::buffer(&id, sizeof id), server, 0, ignored);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    pending.erase(id);
    if (!w.answered) throw std::runtime_error("no answer");
    if (w.failed) throw std::runtime_error("failed at random");
  };

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::mt19937_64 rng(seed);
        std::exponential_distribution<double> gap(rate);
        asio::steady_timer arrivals(ctx);
        auto next = steady::now();
        while (seconds_since_start() < run_seconds) {
          next += seconds(gap(rng));
          arrivals.expires_at(next);
          co_await arrivals.async_wait(asio::use_awaitable);
          ++requests;
          ++in_flight;
          asio::co_spawn(
              ctx, [&]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, attempt); },
              [&](std::exception_ptr e) {
                --in_flight;
                if (!e) ++succeeded;
              });
        }
      },
      rethrow);
  // Every call ends within its 2 s deadline (plus an attempt's second at most).
  run_until(ctx, started + seconds(run_seconds + 3.5));
  std::ofstream out(csv);
  out << "requests,succeeded,attempts,unfinished\n"
      << requests << ',' << succeeded << ',' << attempts << ',' << in_flight << '\n';
  return 0;
}

// --- three shards, one down ------------------------------------------------------------------------

int shard_server(unsigned short port, double run_seconds) {
  asio::io_context ctx(1);
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), port));  // reuse_address on
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
          if (ec == asio::error::operation_aborted) co_return;
          if (ec) continue;
          asio::co_spawn(
              ctx,
              [s = std::move(socket)]() mutable -> asio::awaitable<void> {
                std::uint64_t id = 0;
                auto [read_ec, n] =
                    co_await asio::async_read(s, asio::buffer(&id, sizeof id), asio::as_tuple(asio::use_awaitable));
                if (read_ec || n != sizeof id) co_return;
                asio::steady_timer work(s.get_executor(), 1ms);
                co_await work.async_wait(asio::as_tuple(asio::use_awaitable));
                co_await asio::async_write(s, asio::buffer(&id, sizeof id), asio::as_tuple(asio::use_awaitable));
              },
              asio::detached);  // a failed connection only ends itself: nothing to report
        }
      },
      rethrow);
  run_until(ctx, steady::now() + seconds(run_seconds));
  return 0;
}

int shard_client(const std::vector<unsigned short>& ports, double rate, double run_seconds,
                 const std::string& policy_name, const std::string& csv) {
  asio::io_context ctx(1);
  // The defaults scaled down in time; a breaker per shard, scaled the same way.
  stamina::circuit_breakers breakers("shards", [](stamina::circuit_breaker& b) {
    b.failure_ratio(0.5).minimum_calls(5).window(1s).open_for(500ms).probes(1);
  });
  std::vector<stamina::retry_policy> policies;
  for (const unsigned short port : ports) {
    auto p = stamina::retry_policy(
                 stamina::on_error(asio::error::connection_refused, asio::error::connection_reset, asio::error::eof))
                 .name("shard-" + std::to_string(port))
                 .wait_initial(10ms)
                 .wait_max(200ms)
                 .wait_jitter(50ms)
                 .timeout(2s)
                 .attempt_timeout(500ms);
    if (policy_name == "breaker") p.breaker(breakers[std::to_string(port)]);
    policies.push_back(std::move(p));
  }
  struct record {
    std::size_t shard;
    double start, latency;
    bool ok;
  };
  std::vector<record> records;
  std::uint64_t next_id = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        const auto gap = seconds(1.0 / rate);
        asio::steady_timer arrivals(ctx);
        auto next = steady::now();
        for (std::size_t n = 0; seconds_since_start() < run_seconds; ++n) {
          next += gap;
          arrivals.expires_at(next);
          co_await arrivals.async_wait(asio::use_awaitable);
          const std::size_t shard = n % ports.size();
          const tcp::endpoint to(asio::ip::address_v4::loopback(), ports[shard]);
          const std::uint64_t id = ++next_id;
          const double start = seconds_since_start();
          auto op = [&ctx, to, id](auto token) {
            return asio::async_compose<decltype(token), void(boost::system::error_code)>(
                [socket = std::make_shared<tcp::socket>(ctx), to, id, buffer = id, step = 0](
                    auto& self, boost::system::error_code ec = {}, std::size_t = 0) mutable {
                  if (ec) return self.complete(ec);
                  switch (step++) {
                    case 0:
                      return socket->async_connect(to, std::move(self));
                    case 1:
                      return asio::async_write(*socket, asio::buffer(&id, sizeof id), std::move(self));
                    case 2:
                      return asio::async_read(*socket, asio::buffer(&buffer, sizeof buffer), std::move(self));
                    default:
                      return self.complete(buffer == id ? boost::system::error_code() : asio::error::eof);
                  }
                },
                token, ctx);
          };
          stamina::async_retry(ctx, policies[shard], op, [&, shard, start](boost::system::error_code ec) {
            records.push_back({shard, start, seconds_since_start() - start, !ec});
          });
        }
      },
      rethrow);
  run_until(ctx, started + seconds(run_seconds + 3));
  std::ofstream out(csv);
  out << "shard,start_s,latency_ms,ok\n";
  for (const record& r : records) out << r.shard << ',' << r.start << ',' << r.latency * 1e3 << ',' << r.ok << '\n';
  return 0;
}

// --- rate limiter: clients -----------------------------------------------------------------------

struct http_status : std::runtime_error {
  http_status(int code, std::string retry_after)
      : std::runtime_error("HTTP " + std::to_string(code)), code(code), retry_after(std::move(retry_after)) {}
  int code;
  std::string retry_after;
};

int ratelimit_client(unsigned short port, int clients, const std::string& policy_name, const std::string& csv) {
  asio::io_context ctx(1);
  const tcp::endpoint server(asio::ip::address_v4::loopback(), port);
  auto policy = make_policy(policy_name, 0).attempts(std::nullopt);
  policy.on(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
    if (const auto* s = f.get<http_status>()) {
      if (s->code == 429)
        if (const auto wait = stamina::parse_retry_after(s->retry_after, std::chrono::system_clock::now()))
          return stamina::decision::retry_after(*wait);
      return s->code >= 500 || s->code == 429;
    }
    return true;  // connection errors
  }));
  if (policy_name == "v0.1") policy.wait_jitter(0s);  // 0.1 waited exactly the Retry-After

  struct client_record {
    int attempts = 0;
    double done_at = -1;
    double last_rejected_at = -1, last_retry_after = 0;
    double worst_margin = std::numeric_limits<double>::infinity();  // gap - Retry-After, smallest
  };
  std::vector<client_record> records(static_cast<std::size_t>(clients));

  for (auto& rec : records) {
    client_record* r = &rec;
    auto get = [&ctx, server, r]() -> asio::awaitable<void> {
      const double t = seconds_since_start();
      if (r->last_rejected_at >= 0)
        r->worst_margin = std::min(r->worst_margin, t - r->last_rejected_at - r->last_retry_after);
      ++r->attempts;
      tcp::socket s(ctx);
      co_await s.async_connect(server, asio::use_awaitable);
      const std::string request = "GET / HTTP/1.1\r\nHost: limiter\r\nConnection: close\r\n\r\n";
      co_await asio::async_write(s, asio::buffer(request), asio::use_awaitable);
      asio::streambuf buf;
      co_await asio::async_read_until(s, buf, "\r\n\r\n", asio::use_awaitable);
      std::string head(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
      const int code = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
      if (code == 200) co_return;
      std::string retry_after;
      for (const char* name : {"retry-after: ", "Retry-After: "}) {
        const auto at = head.find(name);
        if (at != std::string::npos) retry_after = head.substr(at + 13, head.find("\r\n", at) - at - 13);
      }
      r->last_rejected_at = seconds_since_start();
      r->last_retry_after = retry_after.empty() ? 0 : std::atof(retry_after.c_str());
      throw http_status(code, retry_after);
    };
    asio::co_spawn(
        ctx, [&ctx, &policy, get]() -> asio::awaitable<void> { co_await stamina::async_retry(ctx, policy, get); },
        [r](std::exception_ptr e) {
          if (!e) r->done_at = seconds_since_start();
        });
  }
  ctx.run();
  std::ofstream out(csv);
  out << "client,attempts,done_at,worst_margin\n";
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    out << i << ',' << r.attempts << ',' << r.done_at << ',' << (std::isinf(r.worst_margin) ? 0.0 : r.worst_margin)
        << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  stamina::instrumentation::set_on_retry_hooks({});  // thousands of retries: no log lines
  stamina::instrumentation::set_on_give_up_hooks({});
  const std::vector<std::string> a(argv + 1, argv + argc);
  const auto port = [&](std::size_t i) { return static_cast<unsigned short>(std::stoi(a.at(i))); };
  if (a.size() == 8 && a[0] == "metastable-server")
    return metastable_server(port(1), std::stod(a[2]), std::stod(a[3]), std::stod(a[4]), std::stod(a[5]),
                             std::stod(a[6]), a[7]);
  if (a.size() == 7 && a[0] == "metastable-client")
    return metastable_client(port(1), std::stod(a[2]), std::stod(a[3]), a[4], std::stoull(a[5]), a[6]);
  if (a.size() == 5 && a[0] == "ratelimit-client") return ratelimit_client(port(1), std::stoi(a[2]), a[3], a[4]);
  if (a.size() == 4 && a[0] == "random-server") return random_server(port(1), std::stod(a[2]), std::stod(a[3]));
  if (a.size() == 7 && a[0] == "random-client")
    return random_client(port(1), std::stod(a[2]), std::stod(a[3]), a[4], std::stoull(a[5]), a[6]);
  if (a.size() == 3 && a[0] == "shard-server") return shard_server(port(1), std::stod(a[2]));
  if (a.size() == 6 && a[0] == "shard-client") {
    std::vector<unsigned short> ports;
    std::size_t from = 0;
    for (std::size_t comma; (comma = a[1].find(',', from)) != std::string::npos; from = comma + 1)
      ports.push_back(static_cast<unsigned short>(std::stoi(a[1].substr(from, comma - from))));
    ports.push_back(static_cast<unsigned short>(std::stoi(a[1].substr(from))));
    return shard_client(ports, std::stod(a[2]), std::stod(a[3]), a[4], a[5]);
  }
  std::fprintf(stderr, "usage: see the comment at the top of benchmarks/real_storms.cpp\n");
  return 2;
}
