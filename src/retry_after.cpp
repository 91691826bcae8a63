#include <stamina/detail/namespace.hpp>
#include <stamina/retry_after.hpp>

#include <array>
#include <cstddef>

STAMINA_NAMESPACE_BEGIN

namespace {

constexpr double max_delta_seconds = 1e18;

constexpr std::array<std::string_view, 7> short_days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_days{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                    "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// A tiny cursor over the header value; every method consumes on success only.
class cursor {
 public:
  explicit cursor(std::string_view s) : s_(s) {}
  bool done() const noexcept { return pos_ == s_.size(); }
  bool literal(std::string_view lit) noexcept {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  template <std::size_t N>
  bool one_of(const std::array<std::string_view, N>& names, int& index) noexcept {
    for (std::size_t i = 0; i < N; ++i)
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    return false;
  }
  bool digits(std::size_t count, int& value) noexcept {
    if (s_.size() - pos_ < count) return false;
    int v = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const char c = s_[pos_ + i];
      if (!is_digit(c)) return false;
      v = v * 10 + (c - '0');
    }
    pos_ += count;
    value = v;
    return true;
  }
  // hour ":" minute ":" second, each two digits, ranges checked (60 s allows a leap second).
  bool time_of_day(int& h, int& m, int& s) noexcept {
    return digits(2, h) && literal(":") && digits(2, m) && literal(":") && digits(2, s) && h <= 23 && m <= 59 &&
           s <= 60;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

struct civil_time {
  int year, month, day, hour, minute, second;  // month 1..12
};

bool valid_day(int year, int month, int day) {
  using namespace std::chrono;
  return day >= 1 && year_month_day(std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                    std::chrono::day(static_cast<unsigned>(day)))
                         .ok();
}

std::optional<civil_time> parse_imf_fixdate(std::string_view v) {
  cursor c(v);
  civil_time t{};
  int ignored = 0;
  if (!(c.one_of(short_days, ignored) && c.literal(", ") && c.digits(2, t.day) && c.literal(" ") &&
        c.one_of(months, t.month) && c.literal(" ") && c.digits(4, t.year) && c.literal(" ") &&
        c.time_of_day(t.hour, t.minute, t.second) && c.literal(" GMT") && c.done()))
    return std::nullopt;
  ++t.month;
  return t;
}

std::optional<civil_time> parse_rfc850(std::string_view v, int current_year) {
  cursor c(v);
  civil_time t{};
  int ignored = 0;
  int yy = 0;
  if (!(c.one_of(long_days, ignored) && c.literal(", ") && c.digits(2, t.day) && c.literal("-") &&
        c.one_of(months, t.month) && c.literal("-") && c.digits(2, yy) && c.literal(" ") &&
        c.time_of_day(t.hour, t.minute, t.second) && c.literal(" GMT") && c.done()))
    return std::nullopt;
  ++t.month;
  // RFC 9110: a two-digit year more than 50 years in the future is the most recent past year
  // with the same last two digits.
  t.year = current_year - current_year % 100 + yy;
  if (t.year > current_year + 50) t.year -= 100;
  return t;
}

std::optional<civil_time> parse_asctime(std::string_view v) {
  cursor c(v);
  civil_time t{};
  int ignored = 0;
  if (!(c.one_of(short_days, ignored) && c.literal(" ") && c.one_of(months, t.month) && c.literal(" ")))
    return std::nullopt;
  if (!(c.literal(" ") ? c.digits(1, t.day) : c.digits(2, t.day))) return std::nullopt;
  if (!(c.literal(" ") && c.time_of_day(t.hour, t.minute, t.second) && c.literal(" ") && c.digits(4, t.year) &&
        c.done()))
    return std::nullopt;
  ++t.month;
  return t;
}

std::optional<duration> parse_delta_seconds(std::string_view v) {
  if (v.empty()) return std::nullopt;
  double seconds = 0;
  for (char ch : v) {
    if (!is_digit(ch)) return std::nullopt;
    seconds = seconds * 10 + (ch - '0');
    if (seconds > max_delta_seconds) seconds = max_delta_seconds;  // keep reading: still digits only
  }
  return duration(seconds);
}

}  // namespace

std::optional<duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (is_digit(value.front())) return parse_delta_seconds(value);

  using namespace std::chrono;
  const int current_year = static_cast<int>(year_month_day(floor<days>(now)).year());
  std::optional<civil_time> t = parse_imf_fixdate(value);
  if (!t) t = parse_rfc850(value, current_year);
  if (!t) t = parse_asctime(value);
  if (!t || !valid_day(t->year, t->month, t->day)) return std::nullopt;

  const sys_days date =
      year_month_day(year(t->year), month(static_cast<unsigned>(t->month)), day(static_cast<unsigned>(t->day)));
  const sys_seconds when = date + hours(t->hour) + minutes(t->minute) + seconds(t->second);
  // In floating-point seconds: year 9999 does not fit system_clock's nanosecond ticks.
  const duration wait = duration(when.time_since_epoch()) - duration(now.time_since_epoch());
  return wait.count() > 0 ? wait : duration(0);
}

STAMINA_NAMESPACE_END
