// libFuzzer target: the two codecs between layers (grpc-timeout, retry pushback) on arbitrary
// bytes. They must never crash or hang; a parsed timeout is finite and >= 0 and accepted
// exactly when a reference reading accepts it; a formatted timeout parses back to at most the
// time it was made from; a pushback is absent only for blank input, and its wait is bounded.

#include <stamina/layer_headers.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "%s: \"%.*s\"\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

std::string_view trimmed(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  return t;
}

// 1 to 8 digits, then one of H M S m u n.
bool valid_timeout(std::string_view t) {
  if (t.size() < 2 || t.size() > 9 || std::strchr("HMSmun", t.back()) == nullptr || t.back() == '\0') return false;
  for (char c : t.substr(0, t.size() - 1))
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);

  const auto timeout = stamina::parse_grpc_timeout(value);
  if (timeout && !(std::isfinite(timeout->count()) && timeout->count() >= 0)) fail("bad timeout", value);
  if (timeout.has_value() != valid_timeout(trimmed(value))) fail("timeout accepted or rejected wrongly", value);

  const auto pushback = stamina::parse_pushback(value);
  if (pushback.has_value() == trimmed(value).empty()) fail("pushback present exactly for blank input", value);
  if (pushback && pushback->should_retry()) {
    const double w = pushback->wait().count();
    if (!(w >= 0 && w <= 2147483.647)) fail("pushback wait out of bounds", value);
  }

  // Any 8 bytes as a duration: what is formatted parses back, never later than it.
  if (size >= sizeof(double)) {
    double seconds = 0;
    std::memcpy(&seconds, data, sizeof seconds);
    const std::string text = stamina::format_grpc_timeout(stamina::duration(seconds));
    const auto back = stamina::parse_grpc_timeout(text);
    if (!back) fail("formatted timeout does not parse", text);
    if (seconds > 0 && back->count() > seconds) fail("formatted timeout is later than the time left", text);
    const std::string ms = stamina::format_pushback(stamina::duration(seconds));
    const auto asked = stamina::parse_pushback(ms);
    if (!asked || !asked->should_retry()) fail("formatted pushback does not parse as a wait", ms);
  }
  return 0;
}
