#ifndef STAMINA_TEST_STANDALONE_BOOST_NAMES_HPP
#define STAMINA_TEST_STANDALONE_BOOST_NAMES_HPP

// The test suite is written with Boost's names. Built against standalone Asio (preset
// standalone), every <boost/asio/...> and <boost/system/...> header it includes is a generated
// forwarder (test/CMakeLists.txt) to standalone Asio and <system_error>, plus these names: so
// the same tests run against stamina::stamina_standalone with std::error_code. Test support
// only; the library itself names its Asio through include/stamina/detail/asio.hpp.

#include <asio/version.hpp>

#include <system_error>

namespace asio {}

namespace boost {
namespace asio = ::asio;
namespace system {
using error_code = std::error_code;
using system_error = std::system_error;
using error_category = std::error_category;
using errc = std::errc;
inline const std::error_category& system_category() noexcept { return std::system_category(); }
inline const std::error_category& generic_category() noexcept { return std::generic_category(); }
}  // namespace system
}  // namespace boost

#endif
