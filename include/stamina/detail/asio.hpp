#ifndef STAMINA_DETAIL_ASIO_HPP
#define STAMINA_DETAIL_ASIO_HPP

// The one place that knows which Asio stamina is built against. By default Boost.Asio with
// boost::system::error_code; with STAMINA_STANDALONE_ASIO (set by the
// stamina::stamina_standalone target) standalone Asio with std::error_code. Every other file
// names `net::`, `stamina::error_code`, `stamina::system_error` and `detail::asio_compat::`.
//
// Shims, and why each exists:
// - `net`: the Asio namespace (`boost::asio` or `::asio`).
// - error_code, system_error, error_category: Boost.System's or std's, as that Asio uses.
// - asio_compat::append / prepend / as_tuple: Asio 1.22 (Debian's libasio-dev) has them only
//   in `asio::experimental`; they moved to `asio` in 1.24 (Boost 1.80). Internal use only.
// - STAMINA_ERROR_CODE_ENUM: error code enums are registered with the error-code library in use.
// - detail::code_failed: Boost's error_code::failed() (which asks the category) has no std
//   equivalent; a std::error_code fails when it is non-zero.
// - (in CMakeLists.txt) ASIO_HAS_CO_AWAIT / ASIO_HAS_STD_COROUTINE for clang: Asio 1.22 tests
//   __cpp_coroutines, which clang 14 does not define in C++20 mode, and would leave co_await out.
// - composed operations ask `self.get_cancellation_state().cancelled()`: `self.cancelled()` is
//   protected in Asio 1.22.
// Everything else stamina uses (async_compose, co_spawn, awaitable, cancellation slots and
// states, recycling_allocator, basic_waitable_timer, execution::context) exists in both.

#if defined(STAMINA_STANDALONE_ASIO)

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/co_spawn.hpp>
#include <asio/compose.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>
#include <asio/wait_traits.hpp>
#if ASIO_VERSION >= 102400
#include <asio/append.hpp>
#include <asio/as_tuple.hpp>
#include <asio/prepend.hpp>
#else
#include <asio/experimental/append.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/prepend.hpp>
#endif

#include <system_error>

namespace stamina {
namespace net = ::asio;
using error_code = std::error_code;
using system_error = std::system_error;
using error_category = std::error_category;
namespace detail {
inline bool code_failed(const std::error_code& ec) noexcept { return static_cast<bool>(ec); }
}  // namespace detail
namespace detail::asio_compat {
#if ASIO_VERSION >= 102400
using ::asio::append;
using ::asio::as_tuple;
using ::asio::prepend;
#else
using ::asio::experimental::append;
using ::asio::experimental::as_tuple;
using ::asio::experimental::prepend;
#endif
}  // namespace detail::asio_compat
}  // namespace stamina

#define STAMINA_ERROR_CODE_ENUM(E) \
  template <>                      \
  struct std::is_error_code_enum<E> : std::true_type {};

#else

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prepend.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/wait_traits.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace stamina {
namespace net = boost::asio;
using error_code = boost::system::error_code;
using system_error = boost::system::system_error;
using error_category = boost::system::error_category;
namespace detail {
inline bool code_failed(const boost::system::error_code& ec) noexcept { return ec.failed(); }
}  // namespace detail
namespace detail::asio_compat {
using boost::asio::append;
using boost::asio::as_tuple;
using boost::asio::prepend;
}  // namespace detail::asio_compat
}  // namespace stamina

#define STAMINA_ERROR_CODE_ENUM(E) \
  template <>                      \
  struct boost::system::is_error_code_enum<E> : std::true_type {};

#endif

#endif
