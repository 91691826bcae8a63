// A real server outage: a redis-server on a loopback port, a few hundred clients sending PING
// (RESP over raw TCP) through async_retry; the server is killed mid-run and restarted two
// seconds later. Every call must succeed within its deadline and attempts; with a budget the
// number of retries must stay within the budget's bound; with the default throttle (the
// default since 0.2) every call must still succeed, with fewer retries reaching the server.
//
// Usage: test_redis_outage /path/to/redis-server

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

extern char** environ;

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

class redis_process {
 public:
  redis_process(std::string binary, unsigned short port) : binary_(std::move(binary)), port_(std::to_string(port)) {}
  ~redis_process() { kill(); }

  void start() {
    std::vector<std::string> args{binary_,  "--port",     port_,          "--bind",       "127.0.0.1",
                                  "--save", "",           "--appendonly", "no",           "--daemonize",
                                  "no",     "--loglevel", "warning",      "--maxclients", "2000"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its start-up banner and warnings would drown the test's own output.
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, binary_.c_str(), &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    if (rc != 0) {
      std::perror("posix_spawn redis-server");
      std::exit(2);
    }
  }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  std::string binary_;
  std::string port_;
  pid_t pid_ = -1;
};

unsigned short free_port() {
  asio::io_context ctx;
  tcp::acceptor probe(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return probe.local_endpoint().port();
}

// One PING: a fresh connection, the RESP command, one reply line. Failures are exceptions.
asio::awaitable<void> ping(tcp::endpoint endpoint) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(endpoint, asio::use_awaitable);
  const std::string command = "*1\r\n$4\r\nPING\r\n";
  co_await asio::async_write(socket, asio::buffer(command), asio::use_awaitable);
  asio::streambuf in;
  co_await asio::async_read_until(socket, in, "\r\n", asio::use_awaitable);
  const std::string reply(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
  if (reply != "+PONG\r\n") throw std::runtime_error("unexpected reply: " + reply);
}

bool transient(const stamina::failure& f) {
  const auto ec = f.error();
  return ec == asio::error::connection_refused || ec == asio::error::connection_reset || ec == asio::error::eof ||
         ec == asio::error::broken_pipe;
}

struct run_result {
  long calls = 0, successes = 0, failures = 0, retries = 0, over_deadline = 0, over_attempts = 0;
  double max_call_seconds = 0;
};

run_result run(const std::string& redis_binary, std::shared_ptr<stamina::retry_budget> budget, bool default_throttle) {
  const unsigned short port = free_port();
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
  redis_process redis(redis_binary, port);
  redis.start();

  // Wait until it listens: the synchronous twin, on a blocking connect.
  {
    asio::io_context probe_ctx;
    const auto ready = stamina::retry(stamina::retry_policy(stamina::on_error(asio::error::connection_refused))
                                          .attempts(100)
                                          .timeout(10s)
                                          .wait_initial(20ms)
                                          .wait_max(200ms),
                                      [&] {
                                        tcp::socket s(probe_ctx);
                                        boost::system::error_code ec;
                                        s.connect(endpoint, ec);
                                        return ec;
                                      });
    if (ready) {
      std::fprintf(stderr, "redis-server did not start: %s\n", ready.message().c_str());
      std::exit(2);
    }
  }

  constexpr int clients = 300;
  constexpr unsigned max_attempts = 12;
  constexpr auto deadline = 8s;
  run_result result;
  stamina::instrumentation::set_on_retry_hooks({[&](const stamina::retry_details&) { ++result.retries; }});
  auto policy = stamina::retry_policy(transient)
                    .name(default_throttle ? "redis.ping" : "redis.ping.unthrottled")
                    .attempts(max_attempts)
                    .timeout(deadline)
                    .wait_initial(50ms)
                    .wait_max(1s)
                    .wait_jitter(100ms)
                    .budget(budget);
  if (!default_throttle) policy.throttle(nullptr);

  asio::io_context ctx(1);
  const auto start = clock_type::now();
  auto client = [&]() -> asio::awaitable<void> {
    asio::steady_timer pause(co_await asio::this_coro::executor);
    while (clock_type::now() - start < 6s) {
      const auto call_start = clock_type::now();
      int attempts = 0;
      ++result.calls;
      try {
        co_await stamina::async_retry(ctx, policy, [&]() {
          ++attempts;
          return ping(endpoint);
        });
        ++result.successes;
      } catch (const std::exception&) {
        ++result.failures;
      }
      const double took = std::chrono::duration<double>(clock_type::now() - call_start).count();
      result.max_call_seconds = std::max(result.max_call_seconds, took);
      if (took > std::chrono::duration<double>(deadline).count() + 0.5) ++result.over_deadline;  // 0.5 s: last attempt
      if (attempts > static_cast<int>(max_attempts)) ++result.over_attempts;
      pause.expires_after(50ms);
      co_await pause.async_wait(asio::use_awaitable);
    }
  };
  for (int i = 0; i < clients; ++i)
    asio::co_spawn(ctx, client(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });

  // The outage: killed at 1.5 s, restarted 2 s later.
  asio::steady_timer kill_timer(ctx, 1500ms), restart_timer(ctx, 3500ms);
  kill_timer.async_wait([&](boost::system::error_code) {
    std::printf("[%.1fs] killing redis-server\n", std::chrono::duration<double>(clock_type::now() - start).count());
    redis.kill();
  });
  restart_timer.async_wait([&](boost::system::error_code) {
    std::printf("[%.1fs] restarting redis-server\n", std::chrono::duration<double>(clock_type::now() - start).count());
    redis.start();
  });
  ctx.run();
  stamina::instrumentation::set_on_retry_hooks({});
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s /path/to/redis-server\n", argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  int failures = 0;
  const auto check = [&](bool ok, const char* what) {
    std::printf("  %-60s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) ++failures;
  };

  std::printf("run 1: no budget, no throttle\n");
  const run_result a = run(argv[1], nullptr, false);
  std::printf("  calls %ld, successes %ld, failures %ld, retries %ld, longest call %.2f s\n", a.calls, a.successes,
              a.failures, a.retries, a.max_call_seconds);
  check(a.calls > 0 && a.successes == a.calls, "every call succeeded");
  check(a.retries > 0, "the outage caused retries");
  check(a.over_deadline == 0, "no call exceeded its deadline");
  check(a.over_attempts == 0, "no call exceeded its attempts");

  std::printf("run 2: budget(100, 0.1), no throttle\n");
  auto budget = std::make_shared<stamina::retry_budget>(100, 0.1);
  const run_result b = run(argv[1], budget, false);
  const double bound = 50 + 0.1 * static_cast<double>(b.successes);
  std::printf("  calls %ld, successes %ld, failures %ld, retries %ld (bound %.1f), longest call %.2f s\n", b.calls,
              b.successes, b.failures, b.retries, bound, b.max_call_seconds);
  check(static_cast<double>(b.retries) <= bound, "retries within max_tokens/2 + token_ratio * successes");
  check(b.retries < a.retries, "fewer retries than without a budget");
  check(b.over_deadline == 0 && b.over_attempts == 0, "deadlines and attempts respected");

  std::printf("run 3: the default throttle\n");
  const run_result c = run(argv[1], nullptr, true);
  std::printf("  calls %ld, successes %ld, failures %ld, retries %ld, longest call %.2f s\n", c.calls, c.successes,
              c.failures, c.retries, c.max_call_seconds);
  check(c.calls > 0 && c.successes == c.calls, "every call succeeded");
  check(c.retries < a.retries, "fewer retries reached the server than without a throttle");
  check(c.over_deadline == 0 && c.over_attempts == 0, "deadlines and attempts respected");
  std::printf("%d passed, %d failed\n", 10 - failures, failures);
  return failures == 0 ? 0 : 1;
}
