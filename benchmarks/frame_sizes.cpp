// The coroutine frame of one `co_await stamina::async_retry(...)` (the use_awaitable driver), for
// an awaitable op and a token op: the size Asio's recycling allocator is asked for, read by
// interposing aligned_alloc (where Asio takes frame memory it has not recycled yet; the first
// call of a thread has nothing to recycle). The frame sits in every pending co_await call, and
// above about 1 KiB Asio stops recycling it.
//
// Usage: frame_sizes

#include <stamina/stamina.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

namespace asio = boost::asio;

namespace {
bool recording = false;
std::vector<std::size_t>& sizes() {
  static std::vector<std::size_t> s;
  return s;
}
}  // namespace

extern "C" void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  using real_type = void* (*)(std::size_t, std::size_t);
  static const auto real = reinterpret_cast<real_type>(dlsym(RTLD_NEXT, "aligned_alloc"));
  if (recording) {
    recording = false;  // the vector may allocate
    sizes().push_back(n);
    recording = true;
  }
  return real(align, n);
}

int main() {
  const auto policy = stamina::retry_policy(stamina::on_error(asio::error::try_again)).timeout(std::nullopt);
  const char* names[] = {"awaitable op", "token op"};
  for (int form = 0; form < 2; ++form) {
    // Each run() starts with nothing to recycle: Asio keeps recycled blocks in the thread context
    // of a run() call, and frees them when it returns.
    asio::io_context ctx;
    sizes().clear();
    auto awaitable_op = []() -> asio::awaitable<int> { co_return 1; };
    auto token_op = [&ctx](auto token) {
      return asio::post(ctx, asio::append(std::move(token), stamina::error_code()));
    };
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          recording = true;
          if (form == 0)
            co_await stamina::async_retry(ctx, policy, awaitable_op);
          else
            co_await stamina::async_retry(ctx, policy, token_op);
          recording = false;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    ctx.run();
    // The first block asked for is the retry frame (the op's own frame or operation comes after).
    std::printf("use_awaitable frame, %-12s %zu B\n", names[form], sizes().empty() ? 0 : sizes().front());
  }
  return 0;
}
