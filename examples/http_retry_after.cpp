// An HTTP client that retries a GET against a server answering 503 with Retry-After, then 200.
// The 503 is read successfully by Beast and retried through on_result, after the server's
// Retry-After (decision::retry_after(parse_retry_after(...))): no exception type is needed.

#include <stamina/stamina.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <iostream>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Answers 503 "Retry-After: 1", then 503 "Retry-After: 0", then 200.
asio::awaitable<void> server(tcp::acceptor acceptor, int& requests) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    co_await http::async_read(socket, buffer, request, asio::use_awaitable);
    ++requests;
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(false);
    if (requests <= 2) {
      response.result(http::status::service_unavailable);
      response.set(http::field::retry_after, requests == 1 ? "1" : "0");
      response.body() = "busy";
    } else {
      response.result(http::status::ok);
      response.body() = "hello";
    }
    response.prepare_payload();
    co_await http::async_write(socket, response, asio::use_awaitable);
    if (requests >= 3) co_return;
  }
}

using response = http::response<http::string_body>;

// One GET: whatever status the server answers is a successful read.
asio::awaitable<response> get(tcp::endpoint endpoint) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(endpoint, asio::use_awaitable);
  http::request<http::empty_body> request(http::verb::get, "/greeting", 11);
  request.set(http::field::host, "localhost");
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  response answer;
  co_await http::async_read(stream, buffer, answer, asio::use_awaitable);
  co_return answer;
}

// [on_result]
// 503 and 429 are retried: after the server's Retry-After when it sent a valid one, else with
// the policy's backoff. Any other answer is delivered to the caller as it is.
stamina::decision busy(const response& answer) {
  if (answer.result() != http::status::service_unavailable && answer.result() != http::status::too_many_requests)
    return false;
  if (const auto wait = stamina::parse_retry_after(answer[http::field::retry_after], std::chrono::system_clock::now()))
    return stamina::decision::retry_after(*wait);
  return true;
}
// [on_result]

}  // namespace

int main() {
  asio::io_context ctx;
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();
  int requests = 0;
  response answer;
  double seconds = 0;

  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(ctx, server(std::move(acceptor), requests), rethrow);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // [policy]
        // Network failures (exceptions from Beast) are retried too; the status through on_result.
        const auto policy =
            stamina::retry_policy(stamina::on_error(asio::error::connection_refused, asio::error::connection_reset,
                                                    beast::error::timeout))
                .on_result(busy)
                .name("GET /greeting")
                .attempts(5)
                .timeout(10s);
        // [policy]
        const auto start = std::chrono::steady_clock::now();
        // The op is named before the co_await: g++ 12 destroys a lambda with captures twice when
        // it is written inside a co_await expression.
        const auto fetch = [endpoint] { return get(endpoint); };
        answer = co_await stamina::async_retry(ctx, policy, fetch);
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      rethrow);
  ctx.run();

  std::cout << "HTTP " << answer.result_int() << " \"" << answer.body() << "\" after " << requests << " requests in "
            << seconds << " s\n";
  // The waits were at least the server's, 1 s then 0 s, each spread by at most min(d, wait_jitter).
  return answer.result() == http::status::ok && answer.body() == "hello" && requests == 3 && seconds >= 1.0 &&
                 seconds < 3.5
             ? 0
             : 1;
}
