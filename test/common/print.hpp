#ifndef STAMINA_TEST_COMMON_PRINT_HPP
#define STAMINA_TEST_COMMON_PRINT_HPP

// Types Boost.Test cannot print on its own.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <utility>

BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<unsigned>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::exception_ptr)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::chrono::steady_clock::time_point)
namespace test {
using int_pair = std::pair<int, int>;
}
BOOST_TEST_DONT_PRINT_LOG_VALUE(test::int_pair)

#endif
