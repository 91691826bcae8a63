#ifndef STAMINA_RETRY_HPP
#define STAMINA_RETRY_HPP

#include <stamina/backoff.hpp>
#include <stamina/detail/driver_support.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>

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

// After the first failure: the backoff loop. Kept out of line so that the success path of
// retry_with stays small enough to inline.
template <class Clock, class Sleeper, class F, class Result>
[[gnu::noinline]] std::invoke_result_t<F&> retry_after_failure(const retry_policy& policy, Sleeper& sleep, F& f,
                                                               bool timed, typename Clock::time_point start,
                                                               Result first) {
  using result_type = std::invoke_result_t<F&>;
  using traits = sync_result<std::remove_cvref_t<result_type>>;
  const auto elapsed = [&] { return timed ? duration(Clock::now() - start) : duration(0); };
  backoff state(policy);
  retry_scope scope;
  if constexpr (traits::is_error_value) {
    result_type r = std::move(first);
    for (;;) {
      const failure what = traits::to_failure(r);
      const backoff::step s = state.on_failure(what, elapsed());
      if (!s.retry) {
        report_give_up(state, s.reason, what);
        return r;
      }
      report_retry(state, s, what, scope);
      if (!sleep(s.wait)) {
        scope.clear();
        report_give_up(state, give_up_reason::cancelled, what);
        return r;
      }
      scope.clear();
      r = f();
      if (!traits::failed(r)) {
        state.on_success();
        return r;
      }
    }
  } else {
    std::exception_ptr error = std::move(first);
    for (;;) {
      const failure what(error);
      const backoff::step s = state.on_failure(what, elapsed());
      if (!s.retry) {
        report_give_up(state, s.reason, what);
        std::rethrow_exception(error);  // the same exception object, unchanged
      }
      report_retry(state, s, what, scope);
      if (!sleep(s.wait)) {
        scope.clear();
        report_give_up(state, give_up_reason::cancelled, what);
        std::rethrow_exception(error);
      }
      scope.clear();
      try {
        if constexpr (std::is_void_v<result_type>) {
          f();
          state.on_success();
          return;
        } else {
          result_type r = f();
          state.on_success();
          return r;
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
  }
}

// The synchronous driver, with its clock and its way of sleeping injectable for tests.
// `Sleeper(duration) -> bool` returns false when the wait was interrupted.
//
// The success path costs a branch and, with a deadline, one clock read: the backoff is only
// built once an attempt has failed.
template <class Clock, class Sleeper, class F>
std::invoke_result_t<F&> retry_with(const retry_policy& policy, Sleeper&& sleep, F& f) {
  using result_type = std::invoke_result_t<F&>;
  using traits = sync_result<std::remove_cvref_t<result_type>>;
  const bool timed = has_time_limit(policy);
  const typename Clock::time_point start = timed ? Clock::now() : typename Clock::time_point{};
  if constexpr (traits::is_error_value) {
    result_type r = f();
    if (!traits::failed(r)) {
      record_first_success(policy);
      return r;
    }
    return retry_after_failure<Clock>(policy, sleep, f, timed, start, std::move(r));
  } else {
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<result_type>) {
        f();
        record_first_success(policy);
        return;
      } else {
        result_type r = f();
        record_first_success(policy);
        return r;
      }
    } catch (...) {
      error = std::current_exception();
    }
    return retry_after_failure<Clock>(policy, sleep, f, timed, start, std::move(error));
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
