// Virtual-time simulations of retry storms, driven by the library's own decision code (the
// retry protocol, retry_budget and adaptive_throttle); reference policies of other libraries
// use their published rules. No real time passes; every run has a fixed seed.
//
// 1. Metastable overload: a FIFO server of capacity C = 100 requests/s (one at a time,
//    10 ms each) keeps serving requests whose clients gave up (wasted work). Open-loop Poisson
//    arrivals at 75 % of C; each attempt is limited to 0.5 s; 1 ms network each way. The
//    trigger: capacity falls to 30 % from t = 10 s to t = 12 s. Recovered = from some time on,
//    every 2 s window delivers at least 85 % of the arrival rate as successes until the end.
// 2. Outage: 100 requests/s on a backend that answers at once, serves 200 attempts/s (an
//    attempt beyond that in a 100 ms window fails at once) and fails every attempt from
//    t = 10 s to t = 20 s.
// 3. Random failures with capacity to spare: 50 requests/s for 10 s, every attempt answered
//    after 2 ms, failing at random with probability 30, 50, 70 or 90 %; stamina's defaults
//    scaled down in time (waits 10 ms, cap 200 ms, jitter 50 ms, timeout 2 s). A throttle must
//    not make this worse than plain retries.
//
// Usage: storm [results-dir] [seeds]   writes storm_metastable.csv, storm_outage.csv,
// storm_random.csv and storm_goodput.csv (goodput over time of seed 1) there, prints a table
// per scenario.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry_budget.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
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

// --- client policies ---------------------------------------------------------------------------

// What a request does next: attempt now (limited), wait, or stop (success or give-up).
struct next_step {
  enum kind_t { attempt, wait, done } kind = done;
  double amount = 0;  // attempt: time limit (0 = none); wait: seconds
  bool failed = false;
};

// One request's retry state.
class request_state {
 public:
  virtual ~request_state() = default;
  virtual next_step start() = 0;
  virtual next_step succeeded() = 0;
  virtual next_step failed(bool timed_out, double elapsed) = 0;
  virtual next_step wait_done(double elapsed) = 0;
};

// The library: a retry_protocol over a shared policy.
class library_request final : public request_state {
 public:
  library_request(const stamina::retry_policy& p, std::uint64_t seed) : call_(p, nullptr, seed) {}
  next_step start() override { return translate(call_.start(stamina::duration(0))); }
  next_step succeeded() override { return translate(call_.attempt_succeeded()); }
  next_step failed(bool timed_out, double elapsed) override {
    const stamina::duration e(elapsed);
    return translate(timed_out ? call_.attempt_timed_out(e, false) : call_.attempt_failed(refused(), e, false));
  }
  next_step wait_done(double elapsed) override {
    return translate(call_.wait_finished(stamina::duration(elapsed), false));
  }

 private:
  static const stamina::failure& refused() {
    static const stamina::failure f{
        boost::system::error_code(boost::system::errc::connection_refused, boost::system::generic_category())};
    return f;
  }
  next_step translate(const stamina::detail::action& a) {
    using stamina::detail::action_kind;
    switch (a.kind) {
      case action_kind::attempt:
        return {next_step::attempt, a.limit() ? a.limit()->count() : 0.0, false};
      case action_kind::wait:
        return {next_step::wait, a.wait().count(), false};
      case action_kind::deliver:
        return {next_step::done, 0, false};
      case action_kind::give_up:
        break;
    }
    return {next_step::done, 0, true};
  }
  stamina::detail::retry_protocol call_;
};

// AWS SDK standard mode's retry quota: 500 tokens, a retry costs 5 (10 after a timeout), a
// successful retry returns its cost, a success at the first attempt returns 1.
struct aws_quota {
  double tokens = 500;
};

// A reference policy from its published rules: `attempts`, wait(n, u), optional quota or
// gRPC-style retry throttling (stamina::retry_budget implements gRPC's rule exactly).
struct reference_rules {
  unsigned attempts = 1;
  std::function<double(unsigned, double)> wait;
  std::shared_ptr<stamina::retry_budget> grpc_throttling;
  std::shared_ptr<aws_quota> quota;
  double attempt_limit = 0.5;
};

class reference_request final : public request_state {
 public:
  reference_request(const reference_rules& r, std::uint64_t seed) : r_(r), rng_(seed) {}
  next_step start() override { return attempt(); }
  next_step succeeded() override {
    if (r_.grpc_throttling) r_.grpc_throttling->on_success();
    if (r_.quota) r_.quota->tokens = std::min(500.0, r_.quota->tokens + (last_cost_ > 0 ? last_cost_ : 1));
    return {next_step::done, 0, false};
  }
  next_step failed(bool timed_out, double) override {
    const bool allowed = !r_.grpc_throttling || r_.grpc_throttling->on_failure();
    if (failures_ + 1 >= r_.attempts || !allowed) return {next_step::done, 0, true};
    if (r_.quota) {
      const double cost = timed_out ? 10 : 5;
      if (r_.quota->tokens < cost) return {next_step::done, 0, true};
      r_.quota->tokens -= cost;
      last_cost_ = cost;
    }
    ++failures_;
    const double w = r_.wait(failures_, std::uniform_real_distribution<double>(0, 1)(rng_));
    if (w <= 0) return attempt();
    return {next_step::wait, w, false};
  }
  next_step wait_done(double) override { return attempt(); }

 private:
  next_step attempt() { return {next_step::attempt, r_.attempt_limit, false}; }
  const reference_rules& r_;
  std::mt19937_64 rng_;
  unsigned failures_ = 0;
  double last_cost_ = 0;
};

struct client_config {
  std::string name;
  // Fresh shared state (budgets, throttles) per run, then a factory of per-request states.
  std::function<std::function<std::unique_ptr<request_state>(std::uint64_t)>(std::uint64_t run_seed)> make;
};

stamina::retry_policy any_failure() {
  return stamina::retry_policy(stamina::retry_on([](const stamina::failure&) { return true; }));
}

client_config library(std::string name, std::function<stamina::retry_policy(std::uint64_t run_seed)> policy) {
  return {std::move(name), [policy](std::uint64_t run_seed) {
            auto p = std::make_shared<stamina::retry_policy>(policy(run_seed));
            return std::function<std::unique_ptr<request_state>(std::uint64_t)>(
                [p](std::uint64_t seed) { return std::make_unique<library_request>(*p, seed); });
          }};
}

client_config reference(std::string name, std::function<reference_rules()> rules) {
  return {std::move(name), [rules](std::uint64_t) {
            auto r = std::make_shared<reference_rules>(rules());
            return std::function<std::unique_ptr<request_state>(std::uint64_t)>(
                [r](std::uint64_t seed) { return std::make_unique<reference_request>(*r, seed); });
          }};
}

// Virtual time: the simulation's clock, read by the throttles.
double virtual_now = 0;
double read_virtual_now() { return virtual_now; }

// Each run of the library's default gets a name of its own, so that it starts with a fresh
// default throttle, read on the simulation's virtual clock.
std::string fresh_default_name() {
  static int runs = 0;
  std::string name = "simulated-dependency-" + std::to_string(++runs);
  stamina::default_throttle(name)->clock(&read_virtual_now);
  return name;
}

std::vector<client_config> clients(double attempt_limit) {
  const auto limit = stamina::duration(attempt_limit);
  return {
      library("no retry",
              [limit](std::uint64_t) { return any_failure().attempts(1).attempt_timeout(limit).throttle(nullptr); }),
      library("naive: 10 tries, no wait",
              [limit](std::uint64_t) {
                return any_failure().attempts(10).wait_initial(0s).wait_jitter(0s).attempt_timeout(limit).throttle(
                    nullptr);
              }),
      library("stamina 0.1 default",
              [limit](std::uint64_t) { return any_failure().attempt_timeout(limit).throttle(nullptr); }),
      library("stamina 0.1 default + retry_budget",
              [limit](std::uint64_t) {
                return any_failure().attempt_timeout(limit).throttle(nullptr).budget(
                    std::make_shared<stamina::retry_budget>());
              }),
      library("stamina default (default throttle)",
              [limit](std::uint64_t) { return any_failure().attempt_timeout(limit).name(fresh_default_name()); }),
      library("stamina default + retry_budget",
              [limit](std::uint64_t) {
                return any_failure()
                    .attempt_timeout(limit)
                    .name(fresh_default_name())
                    .budget(std::make_shared<stamina::retry_budget>());
              }),
      // gRPC A6: 5 attempts, backoff x1.6 from 0.1 s (cap 1 s) +-20 %, retry throttling
      // maxTokens 10, tokenRatio 0.1.
      reference("gRPC (5 attempts, x1.6 +-20%, throttling)",
                [attempt_limit] {
                  reference_rules r;
                  r.attempts = 5;
                  r.wait = [](unsigned n, double u) {
                    return std::min(1.0, 0.1 * std::pow(1.6, n - 1.0)) * (0.8 + 0.4 * u);
                  };
                  r.grpc_throttling = std::make_shared<stamina::retry_budget>(10, 0.1);
                  r.attempt_limit = attempt_limit;
                  return r;
                }),
      // AWS SDK standard mode: 3 attempts, full jitter U(0, min(20 s, 1 s * 2^(n-1))), quota.
      reference("AWS standard (3 attempts, full jitter, quota)",
                [attempt_limit] {
                  reference_rules r;
                  r.attempts = 3;
                  r.wait = [](unsigned n, double u) { return u * std::min(20.0, std::pow(2.0, n - 1.0)); };
                  r.quota = std::make_shared<aws_quota>();
                  r.attempt_limit = attempt_limit;
                  return r;
                }),
      // Polly v8 retry strategy defaults: 3 retries, constant 2 s, no jitter.
      reference("Polly v8 default (3 retries, 2 s constant)",
                [attempt_limit] {
                  reference_rules r;
                  r.attempts = 4;
                  r.wait = [](unsigned, double) { return 2.0; };
                  r.attempt_limit = attempt_limit;
                  return r;
                }),
  };
}

// --- the simulation engine ----------------------------------------------------------------------

struct scenario {
  double rate = 75;  // arrivals per second
  double end = 60;   // seconds simulated
  double arrivals_until = 60;
  double trigger_from = 10, trigger_to = 12;
  // metastable: FIFO server whose capacity falls during the trigger
  bool fifo = true;
  double capacity = 100, dip_capacity = 30;
  // outage: instant answers, failure during the trigger or beyond `capacity` per 100 ms
  double attempt_limit = 0.5;
  // random: every attempt answered after 2 ms, failing with this probability (0: off)
  double random_failures = 0;
};

struct run_result {
  bool recovered = false;
  double recovery_time = 0;  // after the trigger ends
  double failed = 0;         // requests that arrived before end - 10 s and did not succeed
  double requests = 0;
  double peak_load = 0;  // max attempts/s reaching the server over 1 s windows, / normal load
  double attempts_per_success = 0;
  std::vector<double> goodput;  // successes per second
  std::vector<double> offered;  // attempts reaching the server per second
};

enum event_kind { arrive, reach_server, server_done, response, attempt_deadline, wait_end };

struct event {
  double time;
  event_kind kind;
  int req;
  unsigned attempt;
  bool operator>(const event& o) const { return time > o.time; }
};

run_result simulate(const scenario& sc, const client_config& cfg, std::uint64_t seed) {
  constexpr double net = 0.001;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(sc.rate);
  const auto factory = cfg.make(seed * 31 + 7);

  struct request {
    double start = 0;
    std::unique_ptr<request_state> state;
    unsigned attempt = 0;  // id of the attempt in flight
    bool pending = false;
    bool done = false;
    bool ok = false;
  };
  std::vector<request> reqs;
  std::priority_queue<event, std::vector<event>, std::greater<>> q;
  for (double t = gap(rng); t < sc.arrivals_until; t += gap(rng)) {
    reqs.emplace_back();
    reqs.back().start = t;
    q.push({t, arrive, static_cast<int>(reqs.size() - 1), 0});
  }
  const auto seconds = static_cast<std::size_t>(sc.end) + 1;
  run_result r;
  r.goodput.assign(seconds, 0);
  r.offered.assign(seconds, 0);
  std::vector<double> per_100ms(seconds * 10, 0);
  std::deque<std::pair<int, unsigned>> fifo;
  bool busy = false;
  double successes = 0, attempts = 0;

  const auto capacity_at = [&](double t) {
    return t >= sc.trigger_from && t < sc.trigger_to ? sc.dip_capacity : sc.capacity;
  };
  std::function<void(int, next_step, double)> perform = [&](int id, next_step s, double now) {
    request& rq = reqs[static_cast<std::size_t>(id)];
    switch (s.kind) {
      case next_step::attempt:
        rq.pending = true;
        ++rq.attempt;
        q.push({now + net, reach_server, id, rq.attempt});
        if (s.amount > 0) q.push({now + s.amount, attempt_deadline, id, rq.attempt});
        return;
      case next_step::wait:
        q.push({now + s.amount, wait_end, id, rq.attempt});
        return;
      case next_step::done:
        rq.done = true;
        rq.ok = !s.failed;
        return;
    }
  };
  const auto start_service = [&](double now) {
    if (busy || fifo.empty()) return;
    busy = true;
    const auto [id, attempt] = fifo.front();
    fifo.pop_front();
    q.push({now + 1.0 / capacity_at(now), server_done, id, attempt});
  };

  while (!q.empty()) {
    const event e = q.top();
    q.pop();
    if (e.time > sc.end) break;
    virtual_now = e.time;
    request& rq = reqs[static_cast<std::size_t>(e.req)];
    const auto sec = static_cast<std::size_t>(e.time);
    switch (e.kind) {
      case arrive:
        rq.state = factory(seed * 1000003 + static_cast<std::uint64_t>(e.req));
        perform(e.req, rq.state->start(), e.time);
        break;
      case reach_server: {
        ++attempts;
        r.offered[sec] += 1;
        if (sc.random_failures > 0) {
          const bool failed = std::uniform_real_distribution<double>(0, 1)(rng) < sc.random_failures;
          q.push({e.time + net, response, e.req, failed ? e.attempt | 0x80000000u : e.attempt});
        } else if (sc.fifo) {
          fifo.emplace_back(e.req, e.attempt);
          start_service(e.time);
        } else {
          const bool down = e.time >= sc.trigger_from && e.time < sc.trigger_to;
          const bool overloaded = ++per_100ms[static_cast<std::size_t>(e.time * 10)] > sc.capacity / 10;
          q.push({e.time + net, response, e.req, down || overloaded ? e.attempt | 0x80000000u : e.attempt});
        }
        break;
      }
      case server_done:
        busy = false;
        q.push({e.time + net, response, e.req, e.attempt});  // served, even if abandoned
        start_service(e.time);
        break;
      case response: {
        const bool failed = (e.attempt & 0x80000000u) != 0;
        if (!rq.pending || rq.attempt != (e.attempt & 0x7fffffffu)) break;  // abandoned: wasted work
        rq.pending = false;
        if (failed) {
          perform(e.req, rq.state->failed(false, e.time - rq.start), e.time);
        } else {
          ++successes;
          r.goodput[sec] += 1;
          perform(e.req, rq.state->succeeded(), e.time);
        }
        break;
      }
      case attempt_deadline:
        if (!rq.pending || rq.attempt != e.attempt) break;
        rq.pending = false;
        perform(e.req, rq.state->failed(true, e.time - rq.start), e.time);
        break;
      case wait_end:
        perform(e.req, rq.state->wait_done(e.time - rq.start), e.time);
        break;
    }
  }

  double normal = 0;
  for (std::size_t s = 2; s < static_cast<std::size_t>(sc.trigger_from); ++s) normal += r.offered[s];
  normal /= sc.trigger_from - 2;
  for (std::size_t s = 1; s + 1 < seconds; ++s) r.peak_load = std::max(r.peak_load, r.offered[s] / normal);
  for (const request& rq : reqs) {
    if (rq.start >= sc.end - 10) continue;
    r.requests += 1;
    if (!rq.ok) r.failed += 1;
  }
  r.attempts_per_success = successes > 0 ? attempts / successes : INFINITY;
  // Recovered at t: in every 2 s window from t until 2 s before the end, successes are at
  // least 80 % of the requests that arrived in it.
  std::vector<double> arrivals(seconds, 0);
  for (const request& rq : reqs) arrivals[std::min(seconds - 1, static_cast<std::size_t>(rq.start))] += 1;
  const auto last = static_cast<std::size_t>(sc.end) - 2;
  for (auto t = static_cast<std::size_t>(sc.trigger_to); t + 2 <= last; ++t) {
    bool healthy = true;
    for (std::size_t w = t; w + 2 <= last && healthy; ++w)
      healthy = r.goodput[w] + r.goodput[w + 1] >= 0.8 * (arrivals[w] + arrivals[w + 1]);
    if (healthy) {
      r.recovered = true;
      r.recovery_time = static_cast<double>(t) - sc.trigger_to;
      break;
    }
  }
  return r;
}

struct summary {
  int recovered = 0;
  double worst_recovery = 0, mean_recovery = 0, failed = 0, requests = 0, peak = 0, aps = 0;
};

void run_table(const char* title, const scenario& sc, const std::vector<client_config>& all, int seeds,
               const std::string& csv_path, std::ofstream* goodput_csv) {
  std::ofstream csv(csv_path);
  csv << "policy,seeds,recovered_seeds,mean_recovery_s,worst_recovery_s,failed_requests,requests,failed_pct,peak_load,"
         "attempts_per_success\n";
  std::printf("\n%s (%d seeds)\n", title, seeds);
  std::printf("%-44s %9s %12s %12s %9s %9s %11s\n", "policy", "recovered", "recovery s", "failed req", "failed %",
              "peak load", "att/success");
  std::vector<std::vector<double>> curves;
  for (const client_config& c : all) {
    summary s;
    for (int k = 1; k <= seeds; ++k) {
      const run_result r = simulate(sc, c, static_cast<std::uint64_t>(k));
      if (k == 1) curves.push_back(r.goodput);
      if (k == 1 && std::getenv("STORM_DEBUG") && c.name.find(std::getenv("STORM_DEBUG")) != std::string::npos) {
        for (std::size_t t = 0; t < r.offered.size(); ++t) std::printf("%zu:%.0f/%.0f ", t, r.offered[t], r.goodput[t]);
        std::printf("\n");
      }
      if (r.recovered) {
        ++s.recovered;
        s.mean_recovery += r.recovery_time;
        s.worst_recovery = std::max(s.worst_recovery, r.recovery_time);
      }
      s.failed += r.failed / seeds;
      s.requests += r.requests / seeds;
      s.peak += r.peak_load / seeds;
      s.aps += r.attempts_per_success / seeds;
    }
    if (s.recovered > 0) s.mean_recovery /= s.recovered;
    char rec[32];
    if (s.recovered > 0)
      std::snprintf(rec, sizeof rec, "%.1f / %.0f", s.mean_recovery, s.worst_recovery);
    else
      std::snprintf(rec, sizeof rec, "never");
    std::printf("%-44s %5d/%-3d %12s %12.0f %8.1f%% %8.2fx %11.2f\n", c.name.c_str(), s.recovered, seeds, rec, s.failed,
                100 * s.failed / s.requests, s.peak, s.aps);
    csv << '"' << c.name << "\"," << seeds << ',' << s.recovered << ',' << s.mean_recovery << ',' << s.worst_recovery
        << ',' << s.failed << ',' << s.requests << ',' << 100 * s.failed / s.requests << ',' << s.peak << ',' << s.aps
        << '\n';
  }
  if (goodput_csv) {
    *goodput_csv << "second";
    for (const auto& c : all) *goodput_csv << ",\"" << c.name << '"';
    *goodput_csv << '\n';
    for (std::size_t t = 0; t + 1 < curves.front().size(); ++t) {
      *goodput_csv << t;
      for (const auto& curve : curves) *goodput_csv << ',' << curve[t];
      *goodput_csv << '\n';
    }
  }
}

// The random-failure table: success per policy and failure probability, against the targets.
void run_random_table(int seeds, const std::string& csv_path) {
  const auto scaled = [] {
    return any_failure()
        .wait_initial(stamina::duration(0.010))
        .wait_max(stamina::duration(0.200))
        .wait_jitter(stamina::duration(0.050))
        .timeout(stamina::duration(2.0));
  };
  const std::vector<client_config> policies = {
      library("stamina default (default throttle)", [&](std::uint64_t) { return scaled().name(fresh_default_name()); }),
      library("throttle off", [&](std::uint64_t) { return scaled().throttle(nullptr); }),
      library("one attempt, no retry", [&](std::uint64_t) { return scaled().attempts(1).throttle(nullptr); }),
  };
  std::ofstream csv(csv_path);
  csv << "policy,failing_pct,seeds,succeeded_pct,attempts_per_request\n";
  std::printf(
      "\nrandom failures, capacity to spare: 50 req/s for 10 s, answers in 2 ms, defaults scaled down (%d seeds)\n",
      seeds);
  std::printf("%-38s %10s %10s %10s %10s\n", "policy", "30 %", "50 %", "70 %", "90 %");
  std::vector<std::vector<double>> success(policies.size());
  for (std::size_t i = 0; i < policies.size(); ++i) {
    std::printf("%-38s", policies[i].name.c_str());
    for (double p : {0.3, 0.5, 0.7, 0.9}) {
      scenario sc;
      sc.rate = 50;
      sc.arrivals_until = 10;
      sc.end = 20;                            // every request has ended (2 s deadline): all are counted
      sc.trigger_from = sc.trigger_to = 100;  // no trigger
      sc.random_failures = p;
      double ok = 0, requests = 0, attempts = 0;
      for (int k = 1; k <= seeds; ++k) {
        const run_result r = simulate(sc, policies[i], static_cast<std::uint64_t>(k));
        ok += r.requests - r.failed;
        requests += r.requests;
        attempts += r.attempts_per_success * (r.requests - r.failed);
      }
      const double pct = 100 * ok / requests;
      success[i].push_back(pct);
      std::printf(" %9.1f%%", pct);
      csv << '"' << policies[i].name << "\"," << p * 100 << ',' << seeds << ',' << pct << ',' << attempts / requests
          << '\n';
    }
    std::printf("\n");
  }
  const bool met50 = success[0][1] >= 99.0, met70 = success[0][2] >= 95.0;
  std::printf("  %s default >= 99 %% succeeded at 50 %% failing (%.1f %%)\n", met50 ? "MET " : "MISS", success[0][1]);
  std::printf("  %s default >= 95 %% succeeded at 70 %% failing (%.1f %%)\n", met70 ? "MET " : "MISS", success[0][2]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  const int seeds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 10;
  // The simulations must not log: hooks off.
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});

  scenario metastable;
  std::ofstream goodput(dir + "/storm_goodput.csv");
  run_table("metastable overload: FIFO server 100/s, load 75/s, attempt limit 0.5 s, capacity 30/s for 2 s", metastable,
            clients(metastable.attempt_limit), seeds, dir + "/storm_metastable.csv", &goodput);

  scenario outage;
  outage.fifo = false;
  outage.rate = 100;
  outage.capacity = 200;
  outage.trigger_from = 10;
  outage.trigger_to = 20;
  outage.attempt_limit = 0;  // the backend answers at once
  run_table("outage: 100 req/s, capacity 200 attempts/s, every attempt fails from 10 s to 20 s", outage, clients(5.0),
            seeds, dir + "/storm_outage.csv", nullptr);

  run_random_table(seeds, dir + "/storm_random.csv");
  return 0;
}
