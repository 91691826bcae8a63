// The Boost.Asio half of a program that links both flavours of stamina.
#include <stamina/async_retry.hpp>
#include <stamina/retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <string>
#include <typeinfo>

// Retries a refused connection twice with each driver; the classifier reads failure::error(),
// whose return type is this flavour's error_code.
std::string run_boost_flavour() {
  namespace asio = boost::asio;
  using boost::system::error_code;
  using namespace std::chrono_literals;
  stamina::instrumentation::set_on_retry_hooks({});  // this flavour's hooks: quiet
  const auto policy = stamina::retry_policy(stamina::retry_on([](const stamina::failure& f) {
                        return f.error() == asio::error::connection_refused;
                      }))
                          .wait_initial(1ms)
                          .wait_jitter(0s)
                          .name("boost");
  int calls = 0;
  const error_code sync =
      stamina::retry(policy, [&] { return ++calls < 3 ? error_code(asio::error::connection_refused) : error_code(); });
  asio::io_context ctx;
  int async_calls = 0;
  error_code async = asio::error::fault;
  stamina::async_retry(
      ctx, policy,
      [&](auto token) {
        const error_code ec = ++async_calls < 3 ? error_code(asio::error::connection_refused) : error_code();
        return asio::post(ctx, asio::append(std::move(token), ec));
      },
      [&](error_code ec) { async = ec; });
  ctx.run();
  const bool ok = !sync && calls == 3 && !async && async_calls == 3;
  return std::string(ok ? "ok" : "WRONG") + " (" + typeid(stamina::error_code).name() + ")";
}
