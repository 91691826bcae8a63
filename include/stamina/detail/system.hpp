#ifndef STAMINA_DETAIL_SYSTEM_HPP
#define STAMINA_DETAIL_SYSTEM_HPP

// Which error codes stamina uses, with which Asio (see detail/asio.hpp, which adds the
// asynchronous parts): the part the blocking code needs, without Asio's async machinery.
// - `net`: the Asio namespace (`boost::asio` or `::asio`); only its error enums are included here.
// - error_code, system_error, error_category: Boost.System's or std's, as that Asio uses.
// - detail::code_failed: Boost's error_code::failed() (which asks the category) has no std
//   equivalent; a std::error_code fails when it is non-zero.
// - STAMINA_ERROR_CODE_ENUM: error code enums are registered with the error-code library in use.

#if defined(STAMINA_STANDALONE_ASIO)

#include <asio/error.hpp>
#include <stamina/detail/namespace.hpp>

#include <system_error>

STAMINA_NAMESPACE_BEGIN
namespace net = ::asio;
using error_code = std::error_code;
using system_error = std::system_error;
using error_category = std::error_category;
namespace detail {
inline bool code_failed(const std::error_code& ec) noexcept { return static_cast<bool>(ec); }
}  // namespace detail
STAMINA_NAMESPACE_END

#define STAMINA_ERROR_CODE_ENUM(E) \
  template <>                      \
  struct std::is_error_code_enum<E> : std::true_type {};

#else

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

STAMINA_NAMESPACE_BEGIN
namespace net = boost::asio;
using error_code = boost::system::error_code;
using system_error = boost::system::system_error;
using error_category = boost::system::error_category;
namespace detail {
inline bool code_failed(const boost::system::error_code& ec) noexcept { return ec.failed(); }
}  // namespace detail
STAMINA_NAMESPACE_END

#define STAMINA_ERROR_CODE_ENUM(E) \
  template <>                      \
  struct boost::system::is_error_code_enum<E> : std::true_type {};

#endif

#endif
