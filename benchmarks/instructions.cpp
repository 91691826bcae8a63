// Instructions per call of the success-path cases of bench_overhead, for benchmarks/instructions.sh,
// which runs this program under callgrind (valgrind). Time on a shared machine moves by several
// per cent with nothing but code layout (the hand-written baselines themselves move between two
// builds); instructions executed are exact and repeatable, so a before/after of a few per cent can
// be told apart from noise. They are not time: a cache miss or a mispredicted branch costs many.
//
// Usage: instructions CASE CALLS   (runs CALLS calls of CASE; the script subtracts two runs)
// Only API present since 0.2, so that the same source builds against an older revision.

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

volatile int sink;  // keeps results alive
long calls = 0;

struct transient : std::runtime_error {
  using std::runtime_error::runtime_error;
};

__attribute__((noinline)) int work() {
  asm volatile("" ::: "memory");
  return 42;
}

const stamina::retry_policy& default_policy() {
  static const stamina::retry_policy p = stamina::on_exception<transient>();
  return p;
}
const stamina::retry_policy& no_deadline_policy() {
  static const stamina::retry_policy p = stamina::retry_policy(default_policy()).timeout(std::nullopt);
  return p;
}
const stamina::retry_policy& error_policy() {
  static const stamina::retry_policy p = stamina::retry_policy(stamina::on_error(asio::error::try_again));
  return p;
}

// The baselines, as in overhead.cpp.
__attribute__((noinline)) int hand_written_sync() {
  for (int attempt = 1;; ++attempt) {
    try {
      return work();
    } catch (const transient&) {
      if (attempt == 10) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    }
  }
}

asio::awaitable<int> trivial_awaitable() { co_return work(); }

auto token_op(asio::io_context& ctx) {
  return [&ctx](auto token) { return asio::post(ctx, asio::append(std::move(token), error_code())); };
}

asio::awaitable<void> awaitable_hand_written(asio::io_context& ctx) {
  for (long i = 0; i < calls; ++i) {
    std::optional<asio::steady_timer> timer;
    int value = 0;
    for (int attempt = 1;; ++attempt) {
      std::exception_ptr error;
      try {
        value = co_await trivial_awaitable();
      } catch (const transient&) {
        error = std::current_exception();
      }
      if (!error) break;
      if (attempt == 10) std::rethrow_exception(error);
      if (!timer) timer.emplace(ctx);
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::use_awaitable);
    }
    sink = value;
  }
}

// The floors: each loop as a coroutine or composed operation of its own, called per call (what
// any retry function pays before it does anything).
asio::awaitable<int> wrapped_awaitable_call(asio::io_context& ctx) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    std::exception_ptr error;
    try {
      co_return co_await trivial_awaitable();
    } catch (const transient&) {
      error = std::current_exception();
    }
    if (attempt == 10) std::rethrow_exception(error);
    if (!timer) timer.emplace(ctx);
    timer->expires_after(100ms);
    co_await timer->async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> awaitable_wrapped(asio::io_context& ctx) {
  for (long i = 0; i < calls; ++i) sink = co_await wrapped_awaitable_call(ctx);
}

template <class Op>
asio::awaitable<void> wrapped_token_call(asio::io_context& ctx, Op& op, bool zero_waits = false) {
  std::optional<asio::steady_timer> timer;
  for (int attempt = 1;; ++attempt) {
    auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
    if (!ec) co_return;
    if (ec != asio::error::try_again || attempt == 10) throw boost::system::system_error(ec);
    if (zero_waits) continue;
    if (!timer) timer.emplace(ctx);
    timer->expires_after(100ms);
    co_await timer->async_wait(asio::use_awaitable);
  }
}

template <class Op>
struct composed_retry {
  asio::io_context& ctx;
  Op& op;
  int attempt = 0;
  bool waited = false;
  std::unique_ptr<asio::steady_timer> timer;
  template <class Self>
  void operator()(Self& self, error_code ec = {}) {
    if (waited) {
      waited = false;
      if (ec) return self.complete(ec);
    } else if (attempt > 0) {
      if (!ec || ec != asio::error::try_again || attempt == 10) return self.complete(ec);
      if (!timer) timer = std::make_unique<asio::steady_timer>(ctx);
      timer->expires_after(100ms);
      waited = true;
      return timer->async_wait(std::move(self));
    }
    ++attempt;
    op(std::move(self));
  }
};

asio::awaitable<void> awaitable_stamina(asio::io_context& ctx) {
  const auto op = [] { return trivial_awaitable(); };
  for (long i = 0; i < calls; ++i) sink = co_await stamina::async_retry(ctx, default_policy(), op);
}

asio::awaitable<void> token_hand_written(asio::io_context& ctx) {
  auto op = token_op(ctx);
  for (long i = 0; i < calls; ++i) {
    std::optional<asio::steady_timer> timer;
    for (int attempt = 1;; ++attempt) {
      auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
      if (!ec || ec != asio::error::try_again) break;
      if (attempt == 10) throw boost::system::system_error(ec);
      if (!timer) timer.emplace(ctx);
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::use_awaitable);
    }
  }
}

asio::awaitable<void> token_wrapped(asio::io_context& ctx) {
  auto op = token_op(ctx);
  for (long i = 0; i < calls; ++i) co_await wrapped_token_call(ctx, op);
}

asio::awaitable<void> token_stamina(asio::io_context& ctx) {
  auto op = token_op(ctx);
  for (long i = 0; i < calls; ++i) co_await stamina::async_retry(ctx, error_policy(), op);
}

// The retry path with zero waits: one failure, then a success, per call.
auto flapping_op(asio::io_context& ctx, bool& fail) {
  return [&ctx, &fail](auto token) {
    fail = !fail;
    return asio::post(ctx, asio::append(std::move(token), fail ? error_code(asio::error::try_again) : error_code()));
  };
}

asio::awaitable<void> retry_hand_written(asio::io_context& ctx) {
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (long i = 0; i < calls; ++i) {
    for (int attempt = 1;; ++attempt) {
      auto [ec] = co_await op(asio::as_tuple(asio::use_awaitable));
      if (!ec) break;
      if (ec != asio::error::try_again || attempt == 10) throw boost::system::system_error(ec);
    }
  }
}

asio::awaitable<void> retry_wrapped(asio::io_context& ctx) {
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (long i = 0; i < calls; ++i) co_await wrapped_token_call(ctx, op, true);
}

asio::awaitable<void> retry_stamina(asio::io_context& ctx) {
  bool fail = false;
  auto op = flapping_op(ctx, fail);
  for (long i = 0; i < calls; ++i) co_await stamina::async_retry(ctx, error_policy(), op);
}

template <class Body>
void in_coroutine(Body body) {
  asio::io_context ctx(1);
  std::exception_ptr failed;
  asio::co_spawn(ctx, body(ctx), [&](std::exception_ptr e) { failed = e; });
  ctx.run();
  if (failed) std::abort();
}

template <class Start>
void callbacks(Start start) {
  asio::io_context ctx(1);
  auto op = token_op(ctx);
  for (long i = 0; i < calls; ++i) {
    start(ctx, op, [](error_code ec) { sink = ec.value(); });
    ctx.run();
    ctx.restart();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: instructions CASE CALLS\n");
    return 2;
  }
  stamina::instrumentation::set_on_retry_hooks({});
  stamina::instrumentation::set_on_give_up_hooks({});
  calls = std::atol(argv[2]);
  const std::string c = argv[1];
  if (c == "sync_hand_written") {
    for (long i = 0; i < calls; ++i) sink = hand_written_sync();
  } else if (c == "sync_default") {
    for (long i = 0; i < calls; ++i) sink = stamina::retry(default_policy(), work);
  } else if (c == "sync_no_deadline") {
    for (long i = 0; i < calls; ++i) sink = stamina::retry(no_deadline_policy(), work);
  } else if (c == "awaitable_hand_written") {
    in_coroutine(awaitable_hand_written);
  } else if (c == "awaitable_wrapped") {
    in_coroutine(awaitable_wrapped);
  } else if (c == "awaitable_stamina") {
    in_coroutine(awaitable_stamina);
  } else if (c == "token_hand_written") {
    in_coroutine(token_hand_written);
  } else if (c == "token_wrapped") {
    in_coroutine(token_wrapped);
  } else if (c == "token_stamina") {
    in_coroutine(token_stamina);
  } else if (c == "callback_direct") {
    callbacks([](auto& /*ctx*/, auto& op, auto handler) { op(handler); });
  } else if (c == "callback_composed") {
    callbacks([](auto& ctx, auto& op, auto handler) {
      asio::async_compose<decltype(handler), void(error_code)>(
          composed_retry<std::remove_reference_t<decltype(op)>>{ctx, op}, handler, ctx);
    });
  } else if (c == "callback_stamina") {
    callbacks([](auto& ctx, auto& op, auto handler) { stamina::async_retry(ctx, error_policy(), op, handler); });
  } else if (c == "retry_hand_written") {
    in_coroutine(retry_hand_written);
  } else if (c == "retry_wrapped") {
    in_coroutine(retry_wrapped);
  } else if (c == "retry_stamina") {
    stamina::testing_scope zero_waits(2);
    in_coroutine(retry_stamina);
  } else {
    std::fprintf(stderr, "unknown case %s\n", c.c_str());
    return 2;
  }
  return 0;
}
