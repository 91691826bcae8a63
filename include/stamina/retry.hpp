#ifndef STAMINA_RETRY_HPP
#define STAMINA_RETRY_HPP

#include <stamina/backoff.hpp>
#include <stamina/detail/protocol.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#if defined(__linux__)
#include <time.h>
#endif

namespace stamina {

namespace detail {

// How a synchronous result says "failed".
template <class R>
struct sync_result {
  static constexpr bool is_error_value = false;  // failures are exceptions
};
template <>
struct sync_result<boost::system::error_code> {
  static constexpr bool is_error_value = true;
  static bool failed(const boost::system::error_code& ec) noexcept { return ec.failed(); }
  static failure to_failure(const boost::system::error_code& ec) noexcept { return failure(ec); }
};
template <class T, class E>
struct sync_result<boost::system::result<T, E>> {
  static_assert(std::is_same_v<E, boost::system::error_code> || std::is_same_v<E, std::exception_ptr>,
                "stamina::retry supports result<T, error_code> and result<T, exception_ptr>");
  static constexpr bool is_error_value = true;
  static bool failed(const boost::system::result<T, E>& r) noexcept { return !r.has_value(); }
  static failure to_failure(const boost::system::result<T, E>& r) noexcept { return failure(r.error()); }
};

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

struct thread_sleeper {
  bool operator()(duration d) const {
    std::this_thread::sleep_for(to_clock_duration<std::chrono::steady_clock::duration>(d));
    return true;
  }
};

// Returns false as soon as stop is requested (then the wait is abandoned).
struct stoppable_sleeper {
  std::stop_token stop;
  bool operator()(duration d) const {
    if (stop.stop_requested()) return false;
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    return !cv.wait_for(lock, stop, to_clock_duration<std::chrono::steady_clock::duration>(d), [] { return false; }) &&
           !stop.stop_requested();
  }
};

// The blocking driver: performs the actions of the retry protocol, sleeping the thread for
// waits. Its clock and its way of sleeping are injectable for tests; `Sleeper(duration) ->
// bool` returns false when the wait was interrupted. It has no way to interrupt a blocking
// attempt, so an attempt time limit is not applied here.
template <class Clock, class Sleeper, class F>
std::invoke_result_t<F&> retry_with(const retry_policy& policy, Sleeper&& sleep, F& f) {
  using result_type = std::invoke_result_t<F&>;
  using traits = sync_result<std::remove_cvref_t<result_type>>;
  retry_protocol call(policy);
  const stopwatch<Clock> clock(call.needs_clock());
  [[maybe_unused]] std::conditional_t<traits::is_error_value, std::optional<result_type>, std::exception_ptr> last;
  for (action next = call.start(duration(0));;) {
    switch (next.kind) {
      case action_kind::attempt:
        if constexpr (traits::is_error_value) {
          last.emplace(f());
          next = traits::failed(*last) ? call.attempt_failed(traits::to_failure(*last), clock.elapsed(), false)
                                       : call.attempt_succeeded();
        } else {
          try {
            if constexpr (std::is_void_v<result_type>) {
              f();
              (void)call.attempt_succeeded();
              return;
            } else {
              result_type r = f();
              (void)call.attempt_succeeded();
              return r;
            }
          } catch (...) {
            last = std::current_exception();
          }
          next = call.attempt_failed(failure(last), clock.elapsed(), false);
        }
        break;
      case action_kind::wait:
        next = call.wait_finished(clock.elapsed(), !sleep(next.wait));
        break;
      case action_kind::deliver:
      case action_kind::give_up:
        // A blocking call has no "aborted" value: an interrupted wait delivers the last failure.
        if constexpr (traits::is_error_value)
          return std::move(*last);
        else
          std::rethrow_exception(last);  // the same exception object, unchanged
    }
  }
}

}  // namespace detail

/// Calls `f()` until it succeeds or the policy gives up, sleeping the calling thread between
/// attempts. `f` may
/// - return `T` (or `void`) and throw on failure: the result is returned; on give-up the last
///   exception object is rethrown unchanged;
/// - return `boost::system::error_code` or `boost::system::result<T>`: a failed value is a
///   failure; on give-up the last value is returned (nothing is thrown).
/// Failures the policy's `on` rejects are delivered at once.
template <class F>
auto retry(const retry_policy& policy, F&& f) -> std::invoke_result_t<F&> {
  return detail::retry_with<detail::coarse_steady_clock>(policy, detail::thread_sleeper{}, f);
}

/// Same, but a stop request on `stop` ends the current wait at once and the last failure is
/// delivered (the attempt in progress, if any, is not interrupted).
template <class F>
auto retry(const retry_policy& policy, std::stop_token stop, F&& f) -> std::invoke_result_t<F&> {
  return detail::retry_with<detail::coarse_steady_clock>(policy, detail::stoppable_sleeper{std::move(stop)}, f);
}

}  // namespace stamina

#endif
