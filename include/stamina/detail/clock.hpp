#ifndef STAMINA_DETAIL_CLOCK_HPP
#define STAMINA_DETAIL_CLOCK_HPP

// How drivers measure a call's time and hand waits to timers: the coarse clock for elapsed time,
// a stopwatch read only when the call needs it, and saturating conversions.

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

#include <chrono>
#include <cstdint>
#include <type_traits>
#if defined(__linux__)
#include <time.h>
#endif

STAMINA_NAMESPACE_BEGIN

namespace detail {

// Converts a wait to a clock's integer duration, saturating: an absurd wait (a hostile
// Retry-After, +inf) becomes about a century instead of overflowing the tick count.
template <class ClockDuration>
ClockDuration to_clock_duration(duration d) noexcept {
  constexpr double century = 100.0 * 365 * 24 * 3600;
  const double s = d.count() > 0 ? (d.count() < century ? d.count() : century) : 0.0;
  return std::chrono::ceil<ClockDuration>(duration(s));
}

// The clock every driver measures a call's elapsed time with when it waits on
// std::chrono::steady_clock. On Linux it is CLOCK_MONOTONIC_COARSE: a few nanoseconds to read
// instead of ~20, at a resolution of a few milliseconds, which is plenty for deadlines and
// attempt limits and keeps the success path cheap. (Timers still wait on steady_clock.)
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

template <class Clock>
struct elapsed_clock {
  using type = Clock;  // a test's virtual clock is used as it is
};
template <>
struct elapsed_clock<std::chrono::steady_clock> {
  using type = coarse_steady_clock;
};

/// Elapsed time since the call started, read only when the protocol needs it, from the
/// coarse variant of `WaitClock` — or, for a call whose deadline came from outside
/// (`precise`), from `WaitClock` itself: the coarse clock lags it by up to its resolution (a
/// few milliseconds), which an inherited deadline must not gain at every hop.
template <class WaitClock>
class stopwatch {
  using Clock = typename elapsed_clock<WaitClock>::type;
  static constexpr bool has_coarse = !std::is_same_v<Clock, WaitClock>;

 public:
  [[gnu::always_inline]] explicit stopwatch(bool running, bool precise = false) noexcept
      : start_(running ? Clock::now() : stopped()) {
    if constexpr (has_coarse) {
      // The two clocks share their epoch and tick (nanoseconds), and no clock of a running
      // machine reads a negative time: the precise start is kept in the same word, negated.
      if (running && precise) start_ = typename Clock::time_point(typename Clock::duration(-precise_ticks()));
    }
  }
  duration elapsed() const noexcept {
    if (start_ == stopped()) return duration(0);
    if constexpr (has_coarse) {
      if (start_.time_since_epoch().count() < 0)
        return duration(std::chrono::nanoseconds(precise_ticks() + start_.time_since_epoch().count()));
    }
    return duration(Clock::now() - start_);
  }
  /// When it started, in seconds since the clock's epoch (0 when not running). The coarse
  /// clock shares steady_clock's epoch, so a deadline on steady_clock compares with it.
  double origin() const noexcept {
    if (start_ == stopped()) return 0.0;
    const double at = std::chrono::duration<double>(start_.time_since_epoch()).count();
    return has_coarse && at < 0 ? -at : at;
  }

 private:
  // Not running: a time no clock returns (one word, not two: it sits in every coroutine frame).
  // An unsigned clock would return its min() (0) at its epoch.
  static_assert(std::is_signed_v<typename Clock::rep> || std::is_floating_point_v<typename Clock::rep>,
                "stamina: a call's clock needs a signed or floating-point tick count");
  static constexpr typename Clock::time_point stopped() noexcept { return Clock::time_point::min(); }
  static typename Clock::rep precise_ticks() noexcept {
    return std::chrono::duration_cast<typename Clock::duration>(WaitClock::now().time_since_epoch()).count();
  }
  typename Clock::time_point start_;
};

// Reads a stopwatch of any clock through one type (for the non-template half of a driver).
class duration_source {
 public:
  duration_source() = default;
  template <class Clock>
  explicit duration_source(const stopwatch<Clock>* watch) noexcept
      : watch_(watch),
        read_([](const void* w) noexcept { return static_cast<const stopwatch<Clock>*>(w)->elapsed(); }) {}
  duration operator()() const noexcept { return read_ != nullptr ? read_(watch_) : duration(0); }

 private:
  const void* watch_ = nullptr;
  duration (*read_)(const void*) noexcept = nullptr;
};

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
