// An HTTP client that retries a GET against a server answering 503 with Retry-After, then 200,
// honouring the header through decision::retry_after(parse_retry_after(...)). Boost.Beast.

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

// A non-2xx answer, with the Retry-After header if the server sent one.
struct http_status_error : std::runtime_error {
  http_status_error(unsigned status, std::string retry_after)
      : std::runtime_error("HTTP " + std::to_string(status)), status(status), retry_after(std::move(retry_after)) {}
  unsigned status;
  std::string retry_after;
};

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

asio::awaitable<std::string> get(tcp::endpoint endpoint) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(endpoint, asio::use_awaitable);
  http::request<http::empty_body> request(http::verb::get, "/greeting", 11);
  request.set(http::field::host, "localhost");
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response, asio::use_awaitable);
  if (response.result() != http::status::ok)
    throw http_status_error(response.result_int(), std::string(response[http::field::retry_after]));
  co_return response.body();
}

// 503 and 429 are retried: after the server's Retry-After when it sent a valid one, else with
// the policy's backoff. Other statuses are not retried.
// [classify]
stamina::decision classify(const stamina::failure& f) {
  const auto* e = f.get<http_status_error>();
  if (!e || (e->status != 503 && e->status != 429)) return stamina::decision::no_retry();
  if (const auto wait = stamina::parse_retry_after(e->retry_after, std::chrono::system_clock::now()))
    return stamina::decision::retry_after(*wait);
  return stamina::decision::retry();
}
// [classify]

}  // namespace

int main() {
  stamina::instrumentation::set_on_retry_hooks({stamina::instrumentation::logging_hook(std::cout)});
  asio::io_context ctx;
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();
  int requests = 0;
  std::string body;
  double seconds = 0;

  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(ctx, server(std::move(acceptor), requests), rethrow);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        const auto policy = stamina::retry_policy(classify).name("GET /greeting").attempts(5).timeout(10s);
        const auto start = std::chrono::steady_clock::now();
        // The op is named before the co_await: g++ 12 destroys a lambda with captures twice when
        // it is written inside a co_await expression.
        const auto fetch = [endpoint] { return get(endpoint); };
        body = co_await stamina::async_retry(ctx, policy, fetch);
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      rethrow);
  ctx.run();

  std::cout << "body \"" << body << "\" after " << requests << " requests in " << seconds << " s\n";
  // The waits were exactly the server's: 1 s, then 0 s (no jitter, no backoff).
  return body == "hello" && requests == 3 && seconds >= 1.0 && seconds < 3.0 ? 0 : 1;
}
