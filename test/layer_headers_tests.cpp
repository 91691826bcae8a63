// The codecs of the headers between layers (grpc-timeout down, retry pushback up), and which
// give-ups a server answers with pushback. Hostile values: rejected or saturated.

#include <boost/test/unit_test.hpp>

#include <stamina/layer_headers.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

using stamina::duration;
using stamina::give_up_reason;

BOOST_AUTO_TEST_SUITE(layer_headers)

BOOST_AUTO_TEST_CASE(grpc_timeout_parses_digits_and_a_unit) {
  struct row {
    const char* text;
    double seconds;
  };
  const row rows[] = {{"1S", 1.0},       {"150m", 0.150},  {"2M", 120.0},
                      {"1H", 3600.0},    {"250u", 250e-6}, {"7n", 7e-9},
                      {" 5S\t", 5.0},    {"0m", 0.0},      {"99999999H", 99999999.0 * 3600},
                      {"00000001S", 1.0}};
  for (const row& r : rows) {
    const std::optional<duration> got = stamina::parse_grpc_timeout(r.text);
    BOOST_TEST_REQUIRE(got.has_value(), r.text);
    BOOST_TEST(std::abs(got->count() - r.seconds) <= 1e-12 * std::max(1.0, r.seconds), r.text);
  }
}

BOOST_AUTO_TEST_CASE(grpc_timeout_rejects_anything_else) {
  for (const char* bad :
       {"", "S", "5", "5s", "5 S", "-5S", "+5S", "5.0S", "123456789S", "5SS", "0x5S", "5h", "18446744073709551616H"})
    BOOST_TEST(!stamina::parse_grpc_timeout(bad).has_value(), bad);
  BOOST_TEST(!stamina::parse_grpc_timeout(std::string_view("5\0S", 3)).has_value());  // an embedded NUL
}

BOOST_AUTO_TEST_CASE(grpc_timeout_formats_the_finest_unit_that_fits_rounding_down) {
  using namespace std::chrono_literals;
  BOOST_TEST(stamina::format_grpc_timeout(duration(0.050)) == "50000000n");
  BOOST_TEST(stamina::format_grpc_timeout(duration(0.150)) == "150000u");  // 9 digits of n do not fit
  BOOST_TEST(stamina::format_grpc_timeout(duration(1.5)) == "1500000u");
  BOOST_TEST(stamina::format_grpc_timeout(duration(3600.0)) == "3600000m");
  BOOST_TEST(stamina::format_grpc_timeout(duration(0)) == "0n");
  BOOST_TEST(stamina::format_grpc_timeout(duration(-3)) == "0n");
  BOOST_TEST(stamina::format_grpc_timeout(duration(std::nan(""))) == "0n");
  BOOST_TEST(stamina::format_grpc_timeout(duration(1e300)) == "99999999H");
  BOOST_TEST(stamina::format_grpc_timeout(duration(std::numeric_limits<double>::infinity())) == "99999999H");
  // What is formatted parses back to at most the time left (a callee never outlives its caller).
  for (double s : {1e-9, 0.123456789, 7.25, 12345.678, 4e7, 3.6e11}) {
    const auto back = stamina::parse_grpc_timeout(stamina::format_grpc_timeout(duration(s)));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->count() <= s);
    BOOST_TEST(back->count() >= s * (1 - 1e-5) - 1e-9);  // 8 digits, the next unit at most 1000x coarser
  }
}

BOOST_AUTO_TEST_CASE(pushback_reads_gRPC_s_rule) {
  using kind = stamina::decision::kind;
  BOOST_TEST(!stamina::parse_pushback("").has_value());  // no marker
  BOOST_TEST(!stamina::parse_pushback(" \t").has_value());
  for (const char* stop : {"-1", "-0", "-", "abc", "1.5", "12ms", "--1", "-99999999999999999999"})
    BOOST_TEST((stamina::parse_pushback(stop)->what() == kind::pushback), stop);
  const auto wait = stamina::parse_pushback(" 250 ");
  BOOST_TEST_REQUIRE(wait.has_value());
  BOOST_TEST((wait->what() == kind::retry_after));
  BOOST_TEST(wait->wait().count() == 0.25);
  const auto huge = stamina::parse_pushback("99999999999999999999999999");  // saturates at 2^31 - 1 ms
  BOOST_TEST(huge->wait().count() == 2147483.647);
  BOOST_TEST(!stamina::decision::pushback().should_retry());
  BOOST_TEST(stamina::decision::pushback().overload());
}

BOOST_AUTO_TEST_CASE(pushback_formats_milliseconds_rounded_up_and_saturated) {
  BOOST_TEST(stamina::dont_retry_pushback == "-1");
  BOOST_TEST(stamina::format_pushback(duration(0.2501)) == "251");
  BOOST_TEST(stamina::format_pushback(duration(-1)) == "0");
  BOOST_TEST(stamina::format_pushback(duration(std::nan(""))) == "0");
  BOOST_TEST(stamina::format_pushback(duration(1e300)) == "2147483647");
}

BOOST_AUTO_TEST_CASE(a_server_answers_with_pushback_after_a_give_up_that_retried_or_was_overloaded) {
  for (give_up_reason r :
       {give_up_reason::attempts_exhausted, give_up_reason::deadline, give_up_reason::budget_exhausted,
        give_up_reason::throttled, give_up_reason::circuit_open, give_up_reason::pushback})
    BOOST_TEST(stamina::answers_with_pushback(r), to_string(r));
  BOOST_TEST(!stamina::answers_with_pushback(give_up_reason::not_retryable));
  BOOST_TEST(!stamina::answers_with_pushback(give_up_reason::cancelled));
}

BOOST_AUTO_TEST_SUITE_END()
