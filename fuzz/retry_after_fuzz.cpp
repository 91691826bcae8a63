// libFuzzer target: parse_retry_after on arbitrary bytes. It must never crash or hang, never
// return a negative or non-finite wait, and accept exactly the delta-seconds a reference
// reading accepts.

#include <stamina/retry_after.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  using namespace std::chrono;
  const auto now = sys_days(year(2026) / November / 29) + hours(12);
  const auto wait = stamina::parse_retry_after(value, now);
  if (wait && !(std::isfinite(wait->count()) && wait->count() >= 0)) {
    std::fprintf(stderr, "bad wait %g\n", wait->count());
    std::abort();
  }
  // Reference for the numeric form: optional spaces/tabs, one or more digits, spaces/tabs.
  std::string_view t = value;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  bool digits = !t.empty();
  for (char c : t) digits = digits && c >= '0' && c <= '9';
  if (digits && !wait) std::abort();  // valid delta-seconds rejected
  if (!t.empty() && t.front() >= '0' && t.front() <= '9' && !digits && wait) std::abort();  // trailing junk accepted
  return 0;
}
