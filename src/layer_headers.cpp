#include <stamina/layer_headers.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

STAMINA_NAMESPACE_BEGIN

namespace {

std::string_view trimmed(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

struct unit {
  char symbol;
  double seconds;
};
// Finest first: format picks the first whose value fits.
constexpr unit units[] = {{'n', 1e-9}, {'u', 1e-6}, {'m', 1e-3}, {'S', 1.0}, {'M', 60.0}, {'H', 3600.0}};
constexpr std::uint64_t max_timeout_value = 99'999'999;  // 8 digits
constexpr std::int64_t max_pushback_ms = 2'147'483'647;  // gRPC's int32 bound

}  // namespace

std::optional<duration> parse_grpc_timeout(std::string_view value) noexcept {
  const std::string_view v = trimmed(value);
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (const unit& u : units)
    if (u.symbol == v.back()) return duration(static_cast<double>(n) * u.seconds);
  return std::nullopt;
}

std::string format_grpc_timeout(duration left) {
  const double s = left.count();
  if (!(s > 0)) return "0n";
  for (const unit& u : units) {
    double n = std::floor(s / u.seconds);
    if (n <= static_cast<double>(max_timeout_value)) {
      // The value parse_grpc_timeout will read back (n * unit) must not exceed what is left,
      // even by the last bit of a rounded division.
      if (n > 0 && n * u.seconds > s) n -= 1;
      return std::to_string(static_cast<std::uint64_t>(n)) + u.symbol;
    }
  }
  return std::to_string(max_timeout_value) + 'H';  // saturates (and +inf)
}

std::optional<decision> parse_pushback(std::string_view value) noexcept {
  std::string_view v = trimmed(value);
  if (v.empty()) return std::nullopt;  // no marker
  const bool negative = v.front() == '-';
  if (negative) v.remove_prefix(1);
  if (v.empty()) return decision::pushback();
  std::int64_t ms = 0;
  for (char c : v) {
    if (!is_digit(c)) return decision::pushback();                      // gRPC's rule: unparseable means "do not retry"
    ms = std::min<std::int64_t>(max_pushback_ms, ms * 10 + (c - '0'));  // saturates
  }
  if (negative) return decision::pushback();
  return decision::retry_after(duration(static_cast<double>(ms) / 1000.0));
}

std::string format_pushback(duration wait) {
  const double ms = std::ceil(wait.count() * 1000.0);
  if (!(ms > 0)) return "0";
  return std::to_string(ms >= static_cast<double>(max_pushback_ms) ? max_pushback_ms : static_cast<std::int64_t>(ms));
}

STAMINA_NAMESPACE_END
