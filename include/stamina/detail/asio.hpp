#ifndef STAMINA_DETAIL_ASIO_HPP
#define STAMINA_DETAIL_ASIO_HPP

// The one place that knows which Asio stamina is built against. By default Boost.Asio with
// boost::system::error_code; with STAMINA_STANDALONE_ASIO (set by the
// stamina::stamina_standalone target) standalone Asio with std::error_code. Every other file
// names `net::`, `stamina::error_code`, `stamina::system_error` and `detail::asio_compat::`.
// The error-code half is detail/system.hpp (for code that does not need Asio's async parts).
//
// Shims, and why each exists (with those of detail/system.hpp):
// - asio_compat::as_tuple: Asio 1.22 (Debian's libasio-dev) has it only in
//   `asio::experimental`; it moved to `asio` in 1.24 (Boost 1.80). Internal use only. (The
//   drivers bind values to a handler with their own prepend_to / append_to: Asio's prepend and
//   append of both versions drop the hooks of a handler with values.)
// - (in CMakeLists.txt) ASIO_HAS_CO_AWAIT / ASIO_HAS_STD_COROUTINE for clang: Asio 1.22 tests
//   __cpp_coroutines, which clang 14 does not define in C++20 mode, and would leave co_await out.
// - composed operations ask `self.get_cancellation_state().cancelled()`: `self.cancelled()` is
//   protected in Asio 1.22.
// - STAMINA_DETAIL_AWAITS_OPERATIONS: from Asio 1.24 (Boost 1.80) an awaitable coroutine can
//   co_await an asynchronous operation packaged as a function object, which then runs in the
//   awaiting frame; through `use_awaitable` each pending operation holds a coroutine frame of its
//   own. Asio 1.22 has only the latter.
// Everything else stamina uses (async_compose, co_spawn, awaitable, cancellation slots and
// states, recycling_allocator, basic_waitable_timer, execution::context) exists in both.

#include <stamina/detail/namespace.hpp>
#include <stamina/detail/system.hpp>

#if defined(STAMINA_STANDALONE_ASIO)

#if defined(ASIO_NO_DEPRECATED)
#define STAMINA_DETAIL_HANDLER_HOOKS 0
#else
#define STAMINA_DETAIL_HANDLER_HOOKS 1
#endif

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/associator.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_state.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/co_spawn.hpp>
#include <asio/compose.hpp>
#include <asio/detail/handler_alloc_helpers.hpp>
#include <asio/detail/handler_invoke_helpers.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/handler_continuation_hook.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>
#include <asio/wait_traits.hpp>
#if ASIO_VERSION >= 102400
#define STAMINA_DETAIL_AWAITS_OPERATIONS 1
#include <asio/as_tuple.hpp>
#else
#define STAMINA_DETAIL_AWAITS_OPERATIONS 0
#include <asio/experimental/as_tuple.hpp>
#endif

STAMINA_NAMESPACE_BEGIN
namespace detail::asio_compat {
#if ASIO_VERSION >= 102400
using ::asio::as_tuple;
#else
using ::asio::experimental::as_tuple;
#endif
// The deprecated handler hooks, which a wrapping handler forwards to the one it wraps (see
// gated_handler), while Asio still calls them.
namespace hook_alloc = ::asio_handler_alloc_helpers;
namespace hook_invoke = ::asio_handler_invoke_helpers;
}  // namespace detail::asio_compat
STAMINA_NAMESPACE_END

#else

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_invoke_helpers.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/handler_continuation_hook.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/wait_traits.hpp>

#define STAMINA_DETAIL_AWAITS_OPERATIONS 1  // Boost 1.80 on
#if defined(BOOST_ASIO_NO_DEPRECATED)
#define STAMINA_DETAIL_HANDLER_HOOKS 0
#else
#define STAMINA_DETAIL_HANDLER_HOOKS 1
#endif

STAMINA_NAMESPACE_BEGIN
namespace detail::asio_compat {
using boost::asio::as_tuple;
namespace hook_alloc = ::boost_asio_handler_alloc_helpers;
namespace hook_invoke = ::boost_asio_handler_invoke_helpers;
}  // namespace detail::asio_compat
STAMINA_NAMESPACE_END

#endif

STAMINA_NAMESPACE_BEGIN
namespace detail {
// Whether the caller asked a driver's call to stop (any cancellation type): what every driver
// tells the protocol after an attempt, a wait or a wait for a place.
inline bool cancel_requested(const stamina::net::cancellation_state& state) noexcept {
  return state.cancelled() != stamina::net::cancellation_type::none;
}
}  // namespace detail
STAMINA_NAMESPACE_END

#endif
