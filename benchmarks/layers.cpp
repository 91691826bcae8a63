// Layered retries against real processes on loopback (benchmarks/layers.sh starts them by pid):
// a client -> A -> B -> C chain of Beast HTTP servers, each calling the next through stamina.
//
//   layers server PORT NEXT_PORT MODE WIRING SECONDS OUT_CSV
//       NEXT_PORT 0: the bottom service C, answering by MODE: down (503 at once), half (503 for
//       half the requests, at random), slow (200 after 500 ms: past the client's deadline);
//       otherwise a middle service calling 127.0.0.1:NEXT_PORT. Exits after SECONDS, writing
//       "requests,after_deadline,max_late_ms" (requests that arrived after the client's deadline,
//       and how long after that deadline its last piece of work for a request ended).
//   layers client PORT REQUESTS RATE WIRING TIMEOUT_MS OUT_CSV
//       REQUESTS top-level requests at RATE per second, each a stamina call with TIMEOUT_MS as
//       its deadline and no throttle (so that every request enters the chain: the comparison is
//       about what the layers send); writes "requests,succeeded in time".
// WIRING: naive (every layer retries on its own) or layered (grpc-timeout down, pushback up:
// docs/layered-retries.md). Every call: 3 attempts, stamina's waits scaled down in time.
// The client's absolute deadline travels in x-top-deadline-ns (CLOCK_MONOTONIC is one clock for
// all processes of the machine), for the measurement only.

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr const char* top_deadline_header = "x-top-deadline-ns";

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

// A failed answer from the next service, as the calling op reports it to stamina.
struct status_error : std::runtime_error {
  explicit status_error(std::string pushback_value)
      : std::runtime_error("503 from the next service"), pushback(std::move(pushback_value)) {}
  std::string pushback;
};

// A 503 or a network failure is retried; a 503 that carries pushback is not.
stamina::retry_policy layer_policy(const char* name) {
  return stamina::retry_policy(stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
           if (const auto* e = f.get<status_error>()) {
             if (auto asked = stamina::parse_pushback(e->pushback)) return *asked;
             return stamina::decision::retry();
           }
           return f.get<boost::system::system_error>() != nullptr;
         }))
      .name(name)
      .attempts(3)
      .timeout(stamina::duration(4.5))
      .wait_initial(10ms)
      .wait_max(40ms)
      .wait_jitter(5ms);
}

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

// One HTTP exchange with 127.0.0.1:port (a connection per attempt).
asio::awaitable<response> exchange(unsigned short port, request req) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
  req.prepare_payload();
  co_await http::async_write(stream, req, asio::use_awaitable);
  beast::flat_buffer buffer;
  response answer;
  co_await http::async_read(stream, buffer, answer, asio::use_awaitable);
  co_return answer;
}

// One attempt at the service on `port`: the request carries the client's deadline (for the
// measurement) and, layered, the time left; an answer other than 200 is a failure that carries
// the service's pushback value.
asio::awaitable<response> call_service(unsigned short port, std::string top, bool layered,
                                       const stamina::attempt_context& ctx) {
  request out(http::verb::get, "/", 11);
  out.set(http::field::host, "127.0.0.1");
  out.set(top_deadline_header, top);
  if (layered && ctx.remaining()) out.set(stamina::deadline_header, stamina::format_grpc_timeout(*ctx.remaining()));
  response r = co_await exchange(port, std::move(out));
  if (r.result() != http::status::ok) throw status_error(std::string(r[stamina::pushback_header]));
  co_return r;
}

struct server_stats {
  long requests = 0;
  long after_deadline = 0;
  double max_late_ms = 0;
};

struct service {
  asio::io_context& io;
  unsigned short next_port;
  std::string mode;
  bool layered;
  server_stats stats{};
  std::mt19937 rng{12345};
  std::string next_name = "to-" + std::to_string(next_port);

  void finished(std::int64_t top_deadline) {
    if (top_deadline != 0) stats.max_late_ms = std::max(stats.max_late_ms, double(now_ns() - top_deadline) / 1e6);
  }

  // The bottom service.
  asio::awaitable<http::status> answer_as_c(const request& in) {
    if (mode == "down") co_return http::status::service_unavailable;
    if (mode == "half") co_return rng() % 2 ? http::status::service_unavailable : http::status::ok;
    // slow: 500 ms of work, abandoned at the inherited deadline when the caller passed one.
    stamina::duration work(0.5);
    if (layered)
      if (auto left = stamina::parse_grpc_timeout(std::string(in[stamina::deadline_header])))
        work = std::min(work, *left);
    asio::steady_timer t(io, std::chrono::duration_cast<steady::duration>(work));
    co_await t.async_wait(asio::use_awaitable);
    co_return work.count() < 0.5 ? http::status::service_unavailable : http::status::ok;
  }

  // A middle service: the next one through stamina.
  asio::awaitable<response> answer_as_middle(const request& in) {
    stamina::retry_policy p = layer_policy(next_name.c_str());
    if (layered)
      if (auto left = stamina::parse_grpc_timeout(std::string(in[stamina::deadline_header])))
        p.deadline(steady::now() + *left);
    const std::string top(in[top_deadline_header]);
    const stamina::fallback on_give_up([&](const stamina::give_up_info& info) {
      response failed(http::status::service_unavailable, 11);
      if (layered && stamina::answers_with_pushback(info.reason))
        failed.set(stamina::pushback_header, stamina::dont_retry_pushback);
      return failed;
    });
    const auto call_next = [&](const stamina::attempt_context& ctx) {
      return call_service(next_port, top, layered, ctx);
    };
    co_return co_await stamina::async_retry(io, p, call_next, on_give_up, asio::use_awaitable);
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    request in;
    co_await http::async_read(stream, buffer, in, asio::use_awaitable);
    ++stats.requests;
    std::int64_t top = 0;
    if (auto v = in[top_deadline_header]; !v.empty()) top = std::strtoll(std::string(v).c_str(), nullptr, 10);
    if (top != 0 && now_ns() > top) ++stats.after_deadline;
    response out(http::status::ok, 11);
    if (next_port == 0) {
      out.result(co_await answer_as_c(in));
    } else {
      out = co_await answer_as_middle(in);
    }
    finished(top);
    out.keep_alive(false);
    out.prepare_payload();
    co_await http::async_write(stream, out, asio::use_awaitable);
  }

  asio::awaitable<void> accept(tcp::acceptor& acceptor) {
    for (;;) {
      tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
      asio::co_spawn(io, session(std::move(s)), [](std::exception_ptr) {});  // a caller that hung up
    }
  }
};

int run_server(int argc, char** argv) {
  if (argc != 8) return 2;
  asio::io_context io;
  service s{io, static_cast<unsigned short>(std::atoi(argv[3])), argv[4], std::string(argv[5]) == "layered"};
  tcp::acceptor acceptor(
      io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::atoi(argv[2]))));
  asio::co_spawn(io, s.accept(acceptor), [](std::exception_ptr) {});
  asio::steady_timer stop(io, std::chrono::seconds(std::atoi(argv[6])));
  stop.async_wait([&](boost::system::error_code) { io.stop(); });
  io.run();
  std::ofstream(argv[7]) << s.stats.requests << ',' << s.stats.after_deadline << ',' << s.stats.max_late_ms << '\n';
  return 0;
}

int run_client(int argc, char** argv) {
  if (argc != 8) return 2;
  const auto port = static_cast<unsigned short>(std::atoi(argv[2]));
  const int requests = std::atoi(argv[3]);
  const double rate = std::atof(argv[4]);
  const bool layered = std::string(argv[5]) == "layered";
  const auto timeout = std::chrono::milliseconds(std::atoi(argv[6]));
  asio::io_context io;
  int succeeded = 0;
  int done = 0;
  auto one = [&](int i) -> asio::awaitable<void> {
    asio::steady_timer start(io, std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(i / rate)));
    co_await start.async_wait(asio::use_awaitable);
    const std::int64_t top_ns = now_ns() + std::chrono::nanoseconds(timeout).count();
    const std::string top = std::to_string(top_ns);
    stamina::retry_policy p = layer_policy("top");
    p.timeout(stamina::duration(timeout)).throttle(nullptr);
    const stamina::fallback failed([] { return response(http::status::service_unavailable, 11); });
    const auto call_a = [&](const stamina::attempt_context& ctx) { return call_service(port, top, layered, ctx); };
    const response r = co_await stamina::async_retry(io, p, call_a, failed, asio::use_awaitable);
    if (r.result() == http::status::ok && now_ns() <= top_ns) ++succeeded;  // an answer in time
    ++done;
  };
  for (int i = 0; i < requests; ++i)
    asio::co_spawn(io, one(i), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  io.run();
  std::ofstream(argv[7]) << done << ',' << succeeded << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Quiet: the numbers are in the CSV files.
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  const std::string role = argc > 1 ? argv[1] : "";
  const int rc = role == "server" ? run_server(argc, argv) : role == "client" ? run_client(argc, argv) : 2;
  if (rc == 2) std::fprintf(stderr, "usage: see benchmarks/layers.cpp\n");
  return rc;
}
