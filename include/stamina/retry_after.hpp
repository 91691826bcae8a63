#ifndef STAMINA_RETRY_AFTER_HPP
#define STAMINA_RETRY_AFTER_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

#include <chrono>
#include <optional>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

/// Parses an HTTP `Retry-After` header value (RFC 9110 §10.2.3) into a wait, strictly:
/// - surrounding spaces and tabs are ignored;
/// - delta-seconds: digits only (no sign, fraction, hex or trailing text); absurdly large
///   values saturate at 1e18 s instead of overflowing;
/// - an HTTP-date in exactly one of the three forms (IMF-fixdate `Sun, 06 Nov 1994 08:49:37
///   GMT`, obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37
///   1994`), with the day name, month, day of month, hour, minute and second ranges checked
///   and "GMT" required where the form has it. A date in the past gives zero.
/// Anything else (garbage, negative numbers, empty) gives `nullopt`.
///
/// Use it from a classifier: `return stamina::decision::retry_after(*wait)`; a wait that would
/// end past the policy's deadline makes the call give up instead of waiting.
std::optional<duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

STAMINA_NAMESPACE_END

#endif
