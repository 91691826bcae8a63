// Hedging against a real loopback backend whose service time has a heavy tail.
//
//   hedging server              an Asio TCP server: one request per connection; it answers after
//                               1 ms (98 %) or 100 ms (2 %), drawn per request, or after 100 ms
//                               for every request of the overload profile; a client that closes
//                               the connection first makes it abandon the work (counted). Prints
//                               its port, then serves until killed.
//   hedging client PORT STRATEGY PROFILE CALLS CONCURRENCY   (PROFILE: tail, overload, fast)
//                               CONCURRENCY workers each make calls back to back until CALLS are
//                               done; prints one CSV row: latencies, requests sent, server counts.
//
// Strategies: none (one request per call), constant (async_hedge, fixed delay), adaptive-pNN
// (async_hedge, delay = the NNth percentile of recent latencies), unbudgeted-constant (no hedge
// budget), naive (async_retry cancelling an attempt after a fixed timeout and retrying at once);
// async-retry and idle-hedge (a delay of 1 s, never reached) compare the two success paths
// on real requests (the fast profile: every request 1 ms).
// benchmarks/hedging.sh runs them all and writes the table.

#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/instrumentation.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

// --- server ----------------------------------------------------------------------------------

struct server_counts {
  long received = 0;   // requests read
  long replied = 0;    // answered after their full service time
  long abandoned = 0;  // the client closed first: the work was stopped
};

// One request: read it, then serve it unless the client goes away first. The read of the
// closed connection and the service timer race; whichever finishes first cancels the other.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, server_counts& counts, std::mt19937_64& rng)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), counts_(counts), rng_(rng) {}

  void start() {
    asio::async_read_until(socket_, asio::dynamic_buffer(request_), '\n',
                           [self = shared_from_this()](error_code ec, std::size_t) { self->on_request(ec); });
  }

 private:
  void on_request(error_code ec) {
    if (ec) return;
    if (request_.rfind("STATS", 0) == 0) {
      reply_ = std::to_string(counts_.received) + " " + std::to_string(counts_.replied) + " " +
               std::to_string(counts_.abandoned) + "\n";
      if (request_.rfind("STATS RESET", 0) == 0) counts_ = {};
      asio::async_write(socket_, asio::buffer(reply_), [self = shared_from_this()](error_code, std::size_t) {});
      return;
    }
    ++counts_.received;
    const bool overload = request_.find(" overload") != std::string::npos;
    const bool fast = request_.find(" fast") != std::string::npos;
    const bool slow = overload || (!fast && std::uniform_real_distribution<double>(0, 1)(rng_) < 0.02);
    timer_.expires_after(slow ? 100ms : 1ms);
    timer_.async_wait([self = shared_from_this()](error_code e) { self->on_served(e); });
    // A request is one line; anything more (EOF) means the client is gone.
    socket_.async_read_some(asio::buffer(probe_), [self = shared_from_this()](error_code e, std::size_t) {
      if (e && !self->done_) {
        self->done_ = true;
        ++self->counts_.abandoned;
        self->timer_.cancel();
      }
    });
  }

  void on_served(error_code ec) {
    if (ec || done_) return;
    done_ = true;
    ++counts_.replied;
    reply_ = "OK " + request_;
    asio::async_write(socket_, asio::buffer(reply_), [self = shared_from_this()](error_code, std::size_t) {
      error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
      self->socket_.close(ignored);  // also ends the probing read
    });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  server_counts& counts_;
  std::mt19937_64& rng_;
  std::string request_;
  std::string reply_;
  char probe_[1];
  bool done_ = false;
};

int run_server() {
  asio::io_context ctx(1);
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  acceptor.listen(4096);
  std::cout << acceptor.local_endpoint().port() << std::endl;
  server_counts counts;
  std::mt19937_64 rng(12345);
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](error_code ec, tcp::socket s) {
      if (!ec) {
        s.set_option(tcp::no_delay(true));
        std::make_shared<session>(std::move(s), counts, rng)->start();
      }
      accept();
    });
  };
  accept();
  ctx.run();
  return 0;
}

// --- client ----------------------------------------------------------------------------------

struct client_counts {
  long requests = 0;  // connections opened = requests sent
};

// One request on its own connection. Cancellation (a lost hedge, a timed-out attempt) closes
// the connection, which the server sees.
asio::awaitable<std::string> request(tcp::endpoint server, std::string line, client_counts* counts) {
  ++counts->requests;
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, asio::use_awaitable);
  socket.set_option(tcp::no_delay(true));
  co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
  std::string reply;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(reply), '\n', asio::use_awaitable);
  co_return reply;
}

std::string control(tcp::endpoint server, const std::string& line) {
  asio::io_context ctx;
  tcp::socket s(ctx);
  s.connect(server);
  asio::write(s, asio::buffer(line));
  std::string reply;
  asio::read_until(s, asio::dynamic_buffer(reply), '\n');
  return reply;
}

double percentile(std::vector<double>& v, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int run_client(unsigned short port, const std::string& strategy, const std::string& profile, int calls,
               int concurrency) {
  // The naive strategy gives up often under overload: its default log lines are not the point.
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  const tcp::endpoint server(asio::ip::address_v4::loopback(), port);
  control(server, "STATS RESET\n");
  asio::io_context ctx(1);
  client_counts counts;
  const std::string line = "GET " + profile + "\n";
  auto op = [server, line, c = &counts] { return request(server, line, c); };

  // Hedging policies (retries only on connection errors; a hedge is the point).
  auto on = stamina::on_error(asio::error::connection_refused, asio::error::connection_reset);
  stamina::hedging_policy hedging(on);
  hedging.name("backend").max_attempts(2).delay(5ms);
  if (strategy.rfind("adaptive-p", 0) == 0) hedging.delay(10ms).adaptive_delay(std::stod(strategy.substr(10)) / 100.0);
  if (strategy == "unbudgeted-constant") hedging.budget(nullptr);
  if (strategy == "idle-hedge") hedging.delay(1s);  // never due: the success path alone
  stamina::retry_policy plain_retry(on);
  plain_retry.name("retry").throttle(nullptr);
  // The naive alternative: give up on an attempt after the same 5 ms and send another.
  stamina::retry_policy naive(on);
  naive.name("naive")
      .attempts(3)
      .attempt_timeout(5ms)
      .wait_initial(0s)
      .wait_jitter(0s)
      .timeout(std::nullopt)
      .throttle(nullptr);

  std::vector<double> latencies;  // ms
  latencies.reserve(static_cast<std::size_t>(calls));
  int started = 0;
  int failed = 0;
  auto worker = [&]() -> asio::awaitable<void> {
    while (started < calls) {
      ++started;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        if (strategy == "none")
          co_await op();
        else if (strategy == "naive")
          co_await stamina::async_retry(ctx, naive, op);
        else if (strategy == "async-retry")
          co_await stamina::async_retry(ctx, plain_retry, op);
        else
          co_await stamina::async_hedge(ctx, hedging, op);
      } catch (const std::exception&) {
        ++failed;
      }
      latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  };
  const auto begin = std::chrono::steady_clock::now();
  int workers_done = 0;
  for (int i = 0; i < concurrency; ++i)
    asio::co_spawn(ctx, worker, [&](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
      ++workers_done;
    });
  ctx.run();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  // Let the server finish abandoning the last cancelled requests before reading its counts.
  std::this_thread::sleep_for(200ms);
  std::istringstream stats(control(server, "STATS\n"));
  long received = 0, replied = 0, abandoned = 0;
  stats >> received >> replied >> abandoned;

  const double n = static_cast<double>(latencies.size());
  const double extra = (static_cast<double>(counts.requests) - n) / n * 100.0;
  const auto s = hedging.stats();
  std::printf("%s,%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%ld,%.2f,%ld,%ld,%ld,%llu,%llu,%.3f,%.1f\n", strategy.c_str(),
              profile.c_str(), static_cast<int>(n), failed, percentile(latencies, 0.5), percentile(latencies, 0.99),
              percentile(latencies, 0.999), *std::max_element(latencies.begin(), latencies.end()), counts.requests,
              extra, received, replied, abandoned, static_cast<unsigned long long>(s.won),
              static_cast<unsigned long long>(s.denied), hedging.current_delay().count() * 1e3, n / seconds);
  return workers_done == concurrency ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "server") return run_server();
  if (args.size() == 6 && args[0] == "client")
    return run_client(static_cast<unsigned short>(std::stoi(args[1])), args[2], args[3], std::stoi(args[4]),
                      std::stoi(args[5]));
  if (!args.empty() && args[0] == "header") {
    std::puts(
        "strategy,profile,calls,failed,p50_ms,p99_ms,p999_ms,max_ms,requests,extra_pct,server_received,"
        "server_replied,server_abandoned,hedges_won,hedges_denied,final_delay_ms,calls_per_s");
    return 0;
  }
  std::cerr << "usage: hedging server | hedging client PORT STRATEGY PROFILE CALLS CONCURRENCY | hedging header\n";
  return 2;
}
