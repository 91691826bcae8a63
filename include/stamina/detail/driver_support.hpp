#ifndef STAMINA_DETAIL_DRIVER_SUPPORT_HPP
#define STAMINA_DETAIL_DRIVER_SUPPORT_HPP

// Pieces shared by the synchronous and the asynchronous driver.

#include <stamina/backoff.hpp>
#include <stamina/instrumentation.hpp>

#include <chrono>
#include <cstdint>
#if defined(__linux__)
#include <time.h>
#endif

namespace stamina::detail {

// The clock the synchronous driver measures its deadline with. On Linux it is
// CLOCK_MONOTONIC_COARSE: a few nanoseconds to read instead of ~20, at a resolution of a few
// milliseconds, which is plenty for deadlines of seconds and keeps the success path cheap.
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
struct coarse_steady_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<coarse_steady_clock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};
#else
using coarse_steady_clock = std::chrono::steady_clock;
#endif

// Converts a wait to a clock's integer duration, saturating: an absurd wait (a hostile
// Retry-After, +inf) becomes about a century instead of overflowing the tick count.
template <class ClockDuration>
ClockDuration to_clock_duration(duration d) noexcept {
  constexpr double century = 100.0 * 365 * 24 * 3600;
  const double s = d.count() > 0 ? (d.count() < century ? d.count() : century) : 0.0;
  return std::chrono::ceil<ClockDuration>(duration(s));
}

// Success before anything failed: the backoff was never built, but a budget still earns its
// tokens back (unless retrying is switched off).
inline void record_first_success(const retry_policy& policy) noexcept {
  if (retry_budget* budget = policy.budget().get(); budget && load_global_config().active()) budget->on_success();
}

// Whether the call must know when it started (a deadline or an attempt time limit).
inline bool has_time_limit(const retry_policy& policy) noexcept {
  return policy.timeout().has_value() || policy.attempt_timeout().has_value();
}

inline void report_retry(const backoff& b, const backoff::step& s, const failure& f, retry_scope& scope) {
  if (b.active() && has_on_retry_hooks()) {
    const retry_details d{b.policy().name(), s.retry_num, s.wait, s.waited_so_far, f};
    notify_retry(d, scope);
  }
}

inline void report_give_up(const backoff& b, give_up_reason reason, const failure& f) {
  if (b.active() && has_on_give_up_hooks()) {
    const give_up_details d{b.policy().name(), reason, b.failures(), b.waited_so_far(), f};
    notify_give_up(d);
  }
}

}  // namespace stamina::detail

#endif
