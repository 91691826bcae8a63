// parse_retry_after: a table of valid, edge and hostile inputs.

#include <boost/test/unit_test.hpp>

#include <stamina/retry_after.hpp>

#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono;

namespace {
// 1994-11-06 08:49:27 UTC: ten seconds before the RFC's example date.
const system_clock::time_point now = sys_days(year(1994) / November / 6) + hours(8) + minutes(49) + seconds(27);

struct row {
  std::string input;
  std::optional<double> expected;  // seconds; nullopt = rejected
};
}  // namespace

BOOST_AUTO_TEST_SUITE(retry_after)

BOOST_AUTO_TEST_CASE(table) {
  const std::vector<row> table{
      // valid
      {"120", 120.0},
      {"0", 0.0},
      {"  7\t", 7.0},
      {"007", 7.0},
      {"Sun, 06 Nov 1994 08:49:37 GMT", 10.0},
      {"Sunday, 06-Nov-94 08:49:37 GMT", 10.0},
      {"Sun Nov  6 08:49:37 1994", 10.0},
      {"Sun, 06 Nov 1994 09:49:27 GMT", 3600.0},
      {" \tSun, 06 Nov 1994 08:49:37 GMT \t", 10.0},
      // edge
      {"Sun, 06 Nov 1994 08:49:27 GMT", 0.0},         // now
      {"Sat, 01 Jan 1994 00:00:00 GMT", 0.0},         // past: zero
      {"Thu, 29 Feb 1996 00:00:00 GMT", 41440233.0},  // leap day
      {"Sun, 06 Nov 1994 08:49:60 GMT", 33.0},        // leap second
      {"Mon Jan 31 23:59:59 1994", 0.0},
      {"99999999999999999999999999999999999999", 1e18},   // saturates
      {"Fri, 31 Dec 9999 23:59:59 GMT", 252618189032.0},  // beyond system_clock's ns range (found by fuzzing)
      // hostile or malformed
      {"", std::nullopt},
      {"   ", std::nullopt},
      {"-5", std::nullopt},
      {"+5", std::nullopt},
      {"1.5", std::nullopt},
      {"0x10", std::nullopt},
      {"12abc", std::nullopt},
      {"12 34", std::nullopt},
      {"1e3", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37", std::nullopt},
      {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 31 Feb 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 29 Feb 1995 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 24:00:00 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:60:00 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:61 GMT", std::nullopt},
      {"Sun, 00 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT trailing", std::nullopt},
      {"Xyz, 06 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sunday, 06-Nov-1994 08:49:37 GMT", std::nullopt},
      {"Sun Nov 6 08:49:37 1994", std::nullopt},
      {"Sun Nov  6 08:49:37 1994 GMT", std::nullopt},
      {"Sun,  06 Nov 1994 08:49:37 GMT", std::nullopt},
      {std::string("12\0", 3), std::nullopt},
      {"\xff\xfe", std::nullopt},
      {std::string(100000, '9') + "x", std::nullopt},
  };
  BOOST_TEST(table.size() >= 30u);
  for (const row& r : table) {
    const auto got = stamina::parse_retry_after(r.input, now);
    BOOST_TEST_INFO("input '" << r.input.substr(0, 60) << "'");
    BOOST_TEST(got.has_value() == r.expected.has_value());
    if (got && r.expected) BOOST_TEST(got->count() == *r.expected, boost::test_tools::tolerance(1e-9));
  }
}

BOOST_AUTO_TEST_CASE(two_digit_years_follow_the_fifty_year_rule) {
  const system_clock::time_point in_2026 = sys_days(year(2026) / January / 1);
  // "70" is 2070? more than 50 years ahead of 2026 is > 2076, so 2070 stays in the future.
  const auto a = stamina::parse_retry_after("Monday, 01-Jan-70 00:00:00 GMT", in_2026);
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(a->count() > 0);
  // "99" would be 2099 (> 2076): it means 1999, in the past.
  const auto b = stamina::parse_retry_after("Friday, 01-Jan-99 00:00:00 GMT", in_2026);
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(b->count() == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
