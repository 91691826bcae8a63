#ifndef STAMINA_CONCURRENCY_LIMIT_HPP
#define STAMINA_CONCURRENCY_LIMIT_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

STAMINA_NAMESPACE_BEGIN

class concurrency_limit;

namespace detail {

/// The limit's arithmetic, without a clock or a lock: fed one round-trip time per answered
/// attempt, it moves the limit the way Netflix's Gradient2 and TCP Vegas do. `short_rtt` follows
/// the latest answers, `long_rtt` the usual latency; while the recent answers are slower than
/// `tolerance` times the usual, requests are queueing at the dependency and the limit shrinks
/// towards what was in flight, scaled by how much slower; while they are not and the limit is
/// in use, it grows by about its square root per answer. A drop — no answer in time (the
/// attempt timed out), or an answer that says the dependency is overloaded (429, 503) — halves
/// it. A failure is a sample only if it came slower than usual (one that comes at once, a
/// refused connection, says nothing about queueing).
class limit_estimator {
 public:
  struct settings {
    double initial = 20;
    double min = 1;
    double max = 1000;
    double tolerance = 4;
  };
  explicit limit_estimator(const settings& s) noexcept : s_(s), limit_(s.initial) {}

  /// One answer, `rtt` seconds after its attempt was sent, with `in_flight` attempts
  /// outstanding when it came (itself included). `dropped`: no answer came in time, or it said
  /// the dependency is overloaded. `failure`: the answer was a failure, which counts only when
  /// it came slower than usual (a failure at once says nothing about queueing).
  void on_sample(double rtt, double in_flight, bool dropped, bool failure = false) noexcept;

  double limit() const noexcept { return limit_; }
  double short_rtt() const noexcept { return short_rtt_; }
  double long_rtt() const noexcept { return long_rtt_; }

 private:
  settings s_;
  double limit_;
  double short_rtt_ = 0;
  double long_rtt_ = 0;
};

/// One call waiting for a place under the limit, linked into its queue. `wake` is called, under
/// the limit's lock, when the place is granted (the node must stay alive until it has been
/// withdrawn or granted).
struct limit_waiter {
  void (*wake)(limit_waiter&) = nullptr;
  limit_waiter* next = nullptr;
  limit_waiter* prev = nullptr;
  std::uint32_t ticket = 0;  // the limit's generation when the place was granted
  bool queued = false;       // in the queue (under the limit's lock)
  bool granted = false;      // a place was granted to it (under the limit's lock)
  // Where an asynchronous waiter is enrolled with its execution context (place_wait.hpp).
  concurrency_limit* service_limit = nullptr;
  limit_waiter* service_next = nullptr;
  limit_waiter* service_prev = nullptr;
};

/// What an answer tells the limit.
enum class limit_sample : unsigned char {
  none,     ///< nothing: cancelled, never sent
  success,  ///< an answer: its round trip
  failure,  ///< a failure: its round trip counts only if slower than usual
  drop,     ///< no answer in time, or "overloaded"
};

}  // namespace detail

struct concurrency_limit_access;

/// An adaptive limit on the attempts in flight to one dependency, shared by the calls to it and
/// safe across threads (`std::shared_ptr<concurrency_limit>` in `retry_policy::limit` and
/// `hedging_policy::limit`; a hedge beside attempts in flight is never queued, see `async_hedge`). It keeps
/// the dependency's queue short: it learns the dependency's usual latency and, when answers come
/// slower than `tolerance` times that, lowers the number of attempts it lets out (latency rises
/// before anything fails; a rate throttle only sees the failures, late).
///
/// An attempt over the limit is not sent: it waits here, in arrival order, for a place (the
/// asynchronous drivers suspend on a timer, the blocking one blocks), at most until its call's
/// deadline (`timeout`), and a cancelled call leaves the queue at once. With
/// `retry_policy::fail_fast` (or `hedging_policy::fail_fast`), an attempt that would wait fails
/// instead (`throttled`).
///
/// Set it up (setters, `clock`) before sharing it. Its lock is held across `fork()`, and a forked
/// child starts it afresh (no place in flight, nobody waiting): what it inherited belonged to
/// the parent's other threads; places of the parent given back in the child are ignored, and a
/// call of the child that was queued at `fork()` waits until its deadline (cancel it).
class concurrency_limit {
 public:
  /// Seconds on a monotonic clock; injectable for tests.
  using clock_function = double (*)();

  /// The default settings; `name` is for reports.
  explicit concurrency_limit(std::string name = "");
  concurrency_limit(const concurrency_limit&) = delete;
  concurrency_limit& operator=(const concurrency_limit&) = delete;
  ~concurrency_limit();

  /// The limit it starts at (default 20; in [min_limit, max_limit]; moved inside them when
  /// they change).
  concurrency_limit& initial_limit(unsigned value);
  /// The lowest it goes (default 1; in [1, max_limit]).
  concurrency_limit& min_limit(unsigned value);
  /// The highest it goes (default 1000; in [min_limit, 100000]).
  concurrency_limit& max_limit(unsigned value);
  /// How much slower than usual answers may come before the limit shrinks (default 4; finite,
  /// in [1.1, 100]).
  concurrency_limit& tolerance(double value);
  /// The clock (default: the monotonic clock).
  concurrency_limit& clock(clock_function now);

  /// The name given at construction.
  const std::string& name() const noexcept { return name_; }
  /// The limit now.
  unsigned limit() const;
  /// Attempts in flight now.
  unsigned in_flight() const;
  /// Calls waiting for a place now.
  std::size_t waiting() const;

  /// @cond
  // For the drivers (call_state.hpp). A place taken must be given back with release(). Places
  // carry the limit's generation (`ticket`): a forked child starts a new one, and a place of the
  // parent's given back in the child is ignored.
  bool try_acquire(std::uint32_t* ticket = nullptr) noexcept;
  // Takes a place if one is free and nobody waits (true); else queues `w` (false) and its
  // `wake` is called, under the lock, when a place is granted to it.
  bool acquire_or_wait(detail::limit_waiter& w) noexcept;
  // Takes `w` out of the queue if it is still there (true). Whether a place was granted to it
  // (then the caller holds it) is `w.granted`, readable once this returned.
  bool withdraw(detail::limit_waiter& w) noexcept;
  // Gives a place back; `sent_at` (this limit's clock, from now()) and `kind` describe the
  // answer.
  void release(std::uint32_t ticket, std::optional<double> sent_at, detail::limit_sample kind) noexcept;
  // Gives back a place of the current generation (tests, and places taken with no ticket).
  void release(std::optional<double> sent_at = std::nullopt, bool dropped = false) noexcept;
  // Blocks until a place is granted (true; its ticket in `*ticket`), `max` has passed or `stop`
  // is requested (false).
  bool wait(std::optional<duration> max, const std::stop_token* stop, std::uint32_t* ticket = nullptr);
  double now() const noexcept { return clock_(); }
  /// @endcond

 private:
  friend struct concurrency_limit_access;
  void grant_waiters() noexcept;  // under the lock
  bool wait_granted(detail::limit_waiter& w, std::optional<duration> max, const std::stop_token* stop);

  std::string name_;
  clock_function clock_;
  detail::limit_estimator::settings settings_;
  mutable std::mutex mutex_;
  detail::limit_estimator estimator_;
  unsigned in_flight_ = 0;
  std::size_t waiting_ = 0;
  std::uint32_t generation_ = 0;
  detail::limit_waiter* head_ = nullptr;
  detail::limit_waiter* tail_ = nullptr;
};

STAMINA_NAMESPACE_END

#endif
