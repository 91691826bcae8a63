// Virtual-time simulations of retry storms (no real time passes).
//
// 1. Contention: N clients (10..190) start together; each must win one optimistic-concurrency
//    write (read the version, then compare-and-swap) on a single resource. Each network leg
//    takes ~N(10 ms, 2 ms). Failed writes back off (base 5 ms, cap 2 s) and try again. Work =
//    total calls; time = until the last client is done. Averaged over 100 runs. Our strategies
//    are driven by stamina::backoff itself; the reference shapes of other libraries use their
//    published formulas.
// 2. Outage: steady load (Poisson, 100 requests/s) on a backend with capacity 200 attempts/s
//    that fails completely from t=10 s to t=20 s. Compares the naive immediate retry, the default
//    policy, full jitter and the default policy with a retry_budget: peak offered load relative
//    to normal, and time to drain after recovery.
//
// Usage: herd [results-dir]   writes herd.csv and outage.csv there (default: current dir)

#include <stamina/backoff.hpp>
#include <stamina/retry_budget.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// --- strategies ------------------------------------------------------------------------------

// Gives the wait before retry n (n = failed attempt, from 1), in seconds.
struct strategy {
  std::string name;
  // Creates the per-client wait function (a client may keep state, e.g. a backoff).
  std::function<std::function<double(unsigned)>(std::uint64_t seed)> make;
};

constexpr double base = 0.005;
constexpr double cap = 2.0;

stamina::retry_policy herd_policy(stamina::jitter j, double jitter_seconds) {
  return stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; }))
      .attempts(std::nullopt)
      .timeout(std::nullopt)
      .wait_initial(stamina::duration(base))
      .wait_max(stamina::duration(cap))
      .wait_jitter(stamina::duration(jitter_seconds))
      .jitter(j);
}

// A strategy driven by the library: each client owns a policy copy and a backoff over it.
strategy library(std::string name, stamina::jitter j, double jitter_seconds) {
  return {std::move(name), [j, jitter_seconds](std::uint64_t seed) {
            auto policy = std::make_shared<stamina::retry_policy>(herd_policy(j, jitter_seconds));
            auto b = std::make_shared<stamina::backoff>(*policy, seed);
            return std::function<double(unsigned)>([policy, b](unsigned n) { return b->draw_wait(n).count(); });
          }};
}

// A reference shape from its formula: f(n, uniform01).
strategy reference(std::string name, std::function<double(unsigned, double)> f) {
  return {std::move(name), [f](std::uint64_t seed) {
            auto rng = std::make_shared<std::mt19937_64>(seed);
            return std::function<double(unsigned)>(
                [f, rng](unsigned n) { return f(n, std::uniform_real_distribution<double>(0, 1)(*rng)); });
          }};
}

double exp_part(double b, double growth, unsigned n) { return std::min(cap, b * std::pow(growth, n - 1.0)); }

std::vector<strategy> strategies() {
  return {
      library("no jitter (stamina wait_jitter=0)", stamina::jitter::additive, 0.0),
      library("stamina additive (default 1 s jitter)", stamina::jitter::additive, 1.0),
      library("stamina additive (jitter = base)", stamina::jitter::additive, base),
      library("stamina full", stamina::jitter::full, 0.0),
      library("stamina equal", stamina::jitter::equal, 0.0),
      library("stamina decorrelated", stamina::jitter::decorrelated, 0.0),
      // Python stamina: jitter added, then clamped to the cap (which removes it at the cap).
      reference("python stamina (clamp after 1 s jitter)",
                [](unsigned n, double u) { return std::min(cap, base * std::pow(2.0, n - 1.0) + u * 1.0); }),
      // gRPC: multiplier 1.6, +-20 %.
      reference("gRPC (x1.6 +-20%)", [](unsigned n, double u) { return exp_part(base, 1.6, n) * (0.8 + 0.4 * u); }),
      // Go cenkalti/backoff and Resilience4j: multiplier 1.5, +-50 %.
      reference("cenkalti / resilience4j (x1.5 +-50%)",
                [](unsigned n, double u) { return exp_part(base, 1.5, n) * (0.5 + u); }),
  };
}

// --- contention simulation -----------------------------------------------------------------------

struct event {
  double time;
  int client;
  bool is_write;
  bool operator>(const event& o) const { return time > o.time; }
};

struct contention_result {
  double calls = 0;
  double time = 0;
};

contention_result contend(const strategy& s, int clients, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> leg(0.010, 0.002);
  const auto delay = [&] { return std::max(0.0, leg(rng)); };
  std::vector<std::function<double(unsigned)>> wait(clients);
  std::vector<unsigned> failures(clients, 0);
  std::vector<long> read_version(clients, 0);
  for (int c = 0; c < clients; ++c) wait[c] = s.make(seed * 1000003 + static_cast<std::uint64_t>(c));

  std::priority_queue<event, std::vector<event>, std::greater<>> q;
  long version = 0;
  long calls = 0;
  double last_done = 0;
  for (int c = 0; c < clients; ++c) {
    q.push({delay(), c, false});  // everyone starts at t = 0
    ++calls;
  }
  while (!q.empty()) {
    const event e = q.top();
    q.pop();
    if (!e.is_write) {
      read_version[e.client] = version;
      q.push({e.time + delay(), e.client, true});
      continue;
    }
    const double reply = e.time + delay();
    if (read_version[e.client] == version) {  // compare-and-swap succeeds
      ++version;
      last_done = std::max(last_done, reply);
      continue;
    }
    const double next = reply + wait[e.client](++failures[e.client]);
    q.push({next + delay(), e.client, false});
    ++calls;
  }
  return {static_cast<double>(calls), last_done};
}

// --- outage simulation ---------------------------------------------------------------------------

struct outage_result {
  double peak_ratio = 0;  // max attempts/s over 1 s windows, divided by the normal load
  double drain = 0;       // seconds after recovery until the load is back within 10 % of normal
  double attempts = 0;
  double failed_requests = 0;
  double requests = 0;
};

struct outage_config {
  std::string name;
  bool naive = false;
  stamina::jitter jitter = stamina::jitter::additive;
  bool budget = false;
};

outage_result outage(const outage_config& cfg, std::uint64_t seed) {
  constexpr double rate = 100;      // requests per second
  constexpr double capacity = 200;  // attempts per second the backend can serve
  constexpr double down_from = 10, down_to = 20, end = 60;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> leg(0.010, 0.002);
  std::exponential_distribution<double> gap(rate);
  const auto delay = [&] { return std::max(0.0, leg(rng)); };

  const auto policy_ptr = std::make_shared<stamina::retry_policy>(
      stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; })).jitter(cfg.jitter));
  // The budget's rule as a call applies it (backoff is only the wait arithmetic): every retryable
  // failure costs a token, and no token means no retry; a success returns a share of one.
  const auto budget = cfg.budget ? std::make_shared<stamina::retry_budget>(100, 0.1) : nullptr;
  if (budget) policy_ptr->budget(budget);

  struct request {
    double start;
    std::optional<stamina::backoff> retries;
    unsigned naive_failures = 0;
  };
  std::vector<request> requests;
  requests.reserve(static_cast<std::size_t>(rate * end * 1.2));
  std::priority_queue<event, std::vector<event>, std::greater<>> q;  // event.client = request index
  for (double t = gap(rng); t < end - 10; t += gap(rng)) {
    requests.push_back({t, std::nullopt});
    requests.back().retries.emplace(*policy_ptr, seed * 7919 + requests.size());
    q.push({t + delay(), static_cast<int>(requests.size() - 1), true});
  }
  std::vector<double> per_window(static_cast<std::size_t>(end * 10) + 100, 0);  // 100 ms windows
  outage_result r;
  r.requests = static_cast<double>(requests.size());
  const stamina::failure failed{
      boost::system::error_code(boost::system::errc::connection_refused, boost::system::generic_category())};
  while (!q.empty()) {
    const event e = q.top();
    q.pop();
    request& req = requests[static_cast<std::size_t>(e.client)];
    const auto w = static_cast<std::size_t>(e.time * 10);
    if (w >= per_window.size()) continue;
    ++r.attempts;
    const bool overloaded = ++per_window[w] > capacity / 10;
    const bool down = e.time >= down_from && e.time < down_to;
    const double reply = e.time + delay();
    if (!down && !overloaded) {  // a success ends the request
      if (budget) budget->on_success();
      continue;
    }
    double wait = 0;
    bool again = false;
    if (cfg.naive) {
      again = ++req.naive_failures < 10;  // the loop people write: 10 tries, no wait
    } else {
      const bool allowed = budget == nullptr || budget->on_failure();
      const auto step = req.retries->on_failure(failed, stamina::duration(reply - req.start));
      again = step.retry && allowed;
      wait = step.wait.count();
    }
    if (again)
      q.push({reply + wait + delay(), e.client, true});
    else
      ++r.failed_requests;
  }
  // Load per 1 s window; normal = the mean over the healthy first 10 s (after 1 s of warm-up).
  std::vector<double> per_second(static_cast<std::size_t>(end), 0);
  for (std::size_t i = 0; i < per_window.size() && i / 10 < per_second.size(); ++i) per_second[i / 10] += per_window[i];
  double normal = 0;
  for (int s = 1; s < 10; ++s) normal += per_second[static_cast<std::size_t>(s)];
  normal /= 9;
  for (double v : per_second) r.peak_ratio = std::max(r.peak_ratio, v / normal);
  r.drain = end - down_to;
  for (int s = static_cast<int>(down_to); s < static_cast<int>(end) - 10; ++s) {
    bool settled = true;
    for (int k = s; k < s + 3; ++k) settled = settled && per_second[static_cast<std::size_t>(k)] <= 1.1 * normal;
    if (settled) {
      r.drain = s - down_to;
      break;
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  constexpr int runs = 100;

  std::ofstream herd(dir + "/herd.csv");
  herd << "strategy,clients,calls,time_ms\n";
  std::printf("contention: mean over %d runs (base 5 ms, cap 2 s, network ~N(10 ms, 2 ms) per leg)\n", runs);
  std::printf("%-42s %8s %12s %12s   %8s %12s %12s\n", "strategy", "clients", "calls", "time ms", "clients", "calls",
              "time ms");
  const auto all = strategies();
  std::vector<std::vector<double>> wide_calls, wide_time;  // [strategy][clients index]
  for (const strategy& s : all) {
    std::vector<std::string> cells;
    wide_calls.emplace_back();
    wide_time.emplace_back();
    for (int n = 10; n <= 190; n += 20) {
      double calls = 0, time = 0;
      for (int run = 0; run < runs; ++run) {
        const auto r = contend(s, n, static_cast<std::uint64_t>(run + 1) * 104729 + static_cast<std::uint64_t>(n));
        calls += r.calls;
        time += r.time;
      }
      calls /= runs;
      time /= runs;
      herd << '"' << s.name << "\"," << n << ',' << calls << ',' << time * 1000 << '\n';
      wide_calls.back().push_back(calls);
      wide_time.back().push_back(time * 1000);
      if (n == 10 || n == 190) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%8d %12.0f %12.0f", n, calls, time * 1000);
        cells.emplace_back(buf);
      }
    }
    std::printf("%-42s %s   %s\n", s.name.c_str(), cells[0].c_str(), cells[1].c_str());
  }

  // The same, one column per strategy, for plotting.
  for (int which = 0; which < 2; ++which) {
    std::ofstream wide(dir + (which == 0 ? "/herd_calls_wide.csv" : "/herd_time_wide.csv"));
    wide << "clients";
    for (const strategy& s : all) wide << ",\"" << s.name << '"';
    wide << '\n';
    for (std::size_t k = 0; k < wide_calls.front().size(); ++k) {
      wide << 10 + 20 * k;
      for (std::size_t i = 0; i < all.size(); ++i) wide << ',' << (which == 0 ? wide_calls : wide_time)[i][k];
      wide << '\n';
    }
  }

  std::ofstream out(dir + "/outage.csv");
  out << "policy,peak_load_ratio,drain_s,attempts,failed_requests,requests\n";
  std::printf("\noutage: 100 req/s, capacity 200 attempts/s, down from 10 s to 20 s; mean over 20 runs\n");
  std::printf("%-34s %10s %10s %10s %12s\n", "policy", "peak load", "drain s", "attempts", "failed req");
  const std::vector<outage_config> configs{
      {"naive immediate retry (10 tries)", true},
      {"stamina default (additive)", false, stamina::jitter::additive},
      {"stamina full jitter", false, stamina::jitter::full},
      {"stamina default + retry_budget", false, stamina::jitter::additive, true},
  };
  for (const auto& cfg : configs) {
    outage_result mean;
    constexpr int outage_runs = 20;
    for (int run = 0; run < outage_runs; ++run) {
      const auto r = outage(cfg, static_cast<std::uint64_t>(run) + 11);
      mean.peak_ratio += r.peak_ratio / outage_runs;
      mean.drain += r.drain / outage_runs;
      mean.attempts += r.attempts / outage_runs;
      mean.failed_requests += r.failed_requests / outage_runs;
      mean.requests += r.requests / outage_runs;
    }
    out << '"' << cfg.name << "\"," << mean.peak_ratio << ',' << mean.drain << ',' << mean.attempts << ','
        << mean.failed_requests << ',' << mean.requests << '\n';
    std::printf("%-34s %9.1fx %10.1f %10.0f %12.0f\n", cfg.name.c_str(), mean.peak_ratio, mean.drain, mean.attempts,
                mean.failed_requests);
  }
  return 0;
}
