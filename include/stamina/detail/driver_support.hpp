#ifndef STAMINA_DETAIL_DRIVER_SUPPORT_HPP
#define STAMINA_DETAIL_DRIVER_SUPPORT_HPP

// Pieces shared by the synchronous and the asynchronous driver.

#include <stamina/backoff.hpp>
#include <stamina/instrumentation.hpp>

#include <chrono>

namespace stamina::detail {

// Converts a wait to a clock's integer duration, saturating: an absurd wait (a hostile
// Retry-After, +inf) becomes about a century instead of overflowing the tick count.
template <class ClockDuration>
ClockDuration to_clock_duration(duration d) noexcept {
  constexpr double century = 100.0 * 365 * 24 * 3600;
  const double s = d.count() > 0 ? (d.count() < century ? d.count() : century) : 0.0;
  return std::chrono::ceil<ClockDuration>(duration(s));
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
