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
/// coarse variant of `WaitClock`.
template <class WaitClock>
class stopwatch {
  using Clock = typename elapsed_clock<WaitClock>::type;

 public:
  explicit stopwatch(bool running) noexcept : start_(running ? Clock::now() : stopped()) {}
  duration elapsed() const noexcept { return start_ != stopped() ? duration(Clock::now() - start_) : duration(0); }

 private:
  // Not running: a time no clock returns (one word, not two: it sits in every coroutine frame).
  // An unsigned clock would return its min() (0) at its epoch.
  static_assert(std::is_signed_v<typename Clock::rep> || std::is_floating_point_v<typename Clock::rep>,
                "stamina: a call's clock needs a signed or floating-point tick count");
  static constexpr typename Clock::time_point stopped() noexcept { return Clock::time_point::min(); }
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
