#ifndef STAMINA_LAYER_HEADERS_HPP
#define STAMINA_LAYER_HEADERS_HPP

// What travels between services so that retries do not multiply across layers: the caller's
// deadline down (gRPC's `grpc-timeout` format), and "do not retry" up (gRPC's retry pushback).
// Small, strict codecs; hostile values are rejected or saturated, never overflowed.

#include <stamina/decision.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>
#include <stamina/give_up_reason.hpp>

#include <optional>
#include <string>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

/// The request header that carries the caller's remaining time (gRPC's name).
inline constexpr std::string_view deadline_header = "grpc-timeout";

/// Parses a `grpc-timeout` value: 1 to 8 digits and one unit (`H` hours, `M` minutes, `S`
/// seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds), surrounding spaces and tabs
/// ignored. Anything else (empty, a sign, more than 8 digits, another unit, trailing text) gives
/// nullopt: the request then has no inherited deadline. The largest value, 99999999H, is about
/// 11,400 years: every valid value is finite.
std::optional<duration> parse_grpc_timeout(std::string_view value) noexcept;

/// Formats the time left for a `grpc-timeout` header: the finest unit whose value fits in 8
/// digits, rounded down (the callee's deadline is never later than the caller's). Zero,
/// negative or NaN gives "0n" (already expired); more than 99999999 hours saturates there.
std::string format_grpc_timeout(duration left);

/// The response header that says "do not retry" (gRPC's name for retry pushback): a
/// non-negative integer asks the caller to wait that many milliseconds before retrying; a
/// negative one asks it not to retry.
inline constexpr std::string_view pushback_header = "grpc-retry-pushback-ms";

/// Reads a pushback value into the decision it asks for, by gRPC's rule: a non-negative
/// integer gives `decision::retry_after(ms)` (saturating at 2^31 - 1 ms, gRPC's bound); a
/// negative or unparseable value gives `decision::pushback()` (do not retry). Spaces and tabs
/// around it are ignored; an empty value (no header) gives nullopt: the classifier decides as
/// usual.
/// Use it first in a classifier: `if (auto d = stamina::parse_pushback(h)) return *d;`.
std::optional<decision> parse_pushback(std::string_view value) noexcept;

/// The pushback value that tells the layer above not to retry: "-1".
inline constexpr std::string_view dont_retry_pushback = "-1";
/// A pushback value asking the layer above to wait `wait` before retrying (milliseconds,
/// rounded up, saturating at 2^31 - 1; a negative or NaN wait gives "0").
std::string format_pushback(duration wait);

/// For a server whose request handler called a dependency through stamina: whether the call's
/// give-up should be answered with `dont_retry_pushback`, so that the layer above does not retry
/// what this layer retried already. True when it gave up having retried or because of
/// overload: `attempts_exhausted`, `deadline`, `budget_exhausted`, `throttled`, `circuit_open`,
/// `pushback`; false for `not_retryable` (the caller may judge that failure itself) and
/// `cancelled`. The reason is `give_up_info::reason` in a fallback, or `retry_context::gave_up()`.
constexpr bool answers_with_pushback(give_up_reason reason) noexcept {
  return reason != give_up_reason::not_retryable && reason != give_up_reason::cancelled;
}

STAMINA_NAMESPACE_END

#endif
