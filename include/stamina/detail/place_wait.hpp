#ifndef STAMINA_DETAIL_PLACE_WAIT_HPP
#define STAMINA_DETAIL_PLACE_WAIT_HPP

// How the asynchronous drivers wait for a place under a concurrency limit without a thread: the
// waiting attempt suspends on a timer of its own that expires at the call's deadline. The limit
// grants a place under its lock, on whatever thread freed one; that thread must not touch the
// timer (timers are not thread-safe, and the io_context may be shutting down on another
// thread), so it only posts a wake-up to the timer's executor, holding the waiter alive. The
// wake-up and the start of the wait take the waiter's own lock around the timer: a wake-up that
// runs before the wait started makes the wait end at once (expired), one that runs after
// cancels it. The caller's cancellation reaches the pending wait through its cancellation slot,
// as for any timer. A call destroyed while it waits (its io_context torn down) leaves the queue
// first, so no wake-up is posted for it afterwards; one already posted runs (or is destroyed)
// harmlessly.

#include <stamina/concurrency_limit.hpp>
#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>

#include <stamina/detail/asio.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

template <class Timer>
struct place_waiter : limit_waiter, std::enable_shared_from_this<place_waiter<Timer>> {
  template <class Executor>
  explicit place_waiter(const Executor& ex) : timer(ex) {
    wake = &wake_timer;
  }
  std::mutex lock;
  Timer timer;
  bool woken = false;  // under `lock`

  // Called under the limit's lock, on the thread that freed the place.
  static void wake_timer(limit_waiter& w) {
    auto& self = static_cast<place_waiter&>(w);
    stamina::net::post(self.timer.get_executor(), [keep = self.shared_from_this()] {
      const std::lock_guard guard(keep->lock);
      keep->woken = true;
      keep->timer.cancel();
    });
  }
};

// One attempt's wait for a place. Destroyed before it finished (the call destroyed or its
// io_context torn down): it leaves the queue, or gives back the place granted meanwhile.
template <class Timer>
class place_wait {
 public:
  place_wait() = default;
  place_wait(const place_wait&) = delete;
  place_wait& operator=(const place_wait&) = delete;
  ~place_wait() {
    if (node_ && !limit_->withdraw(*node_)) limit_->release(std::nullopt, false);
    if (unclaimed_) limit_->release(std::nullopt, false);
  }

  // Takes a place if one is free (true: no wait; the place is this object's until claim()); else
  // queues the attempt, and the driver waits with async_wait for at most `at_most` (none: until
  // granted or cancelled).
  template <class Executor>
  bool start(concurrency_limit& limit, const Executor& ex, const std::optional<duration>& at_most) {
    limit_ = &limit;
    auto node = std::make_shared<place_waiter<Timer>>(ex);
    if (at_most)
      node->timer.expires_after(to_clock_duration<typename Timer::duration>(*at_most));
    else
      node->timer.expires_at(Timer::time_point::max());
    if (limit.acquire_or_wait(*node)) {
      unclaimed_ = true;
      return true;
    }
    node_ = std::move(node);
    return false;
  }
  // The place start() took at once passes to the call (place_wait_finished).
  void claim() noexcept { unclaimed_ = false; }

  // Waits until the place is granted, the deadline passes or the wait is cancelled; completes
  // with the timer's error_code (say nothing: finish() tells).
  template <class Token>
  auto async_wait(Token&& token) {
    return stamina::net::async_initiate<Token, void(stamina::error_code)>(
        [](auto handler, std::shared_ptr<place_waiter<Timer>> node) {
          // The node stays alive while its lock is held, even if the wait completes (and the
          // call ends) on another thread before this returns.
          const std::lock_guard guard(node->lock);
          if (node->woken) node->timer.expires_at(Timer::time_point::min());  // granted already
          node->timer.async_wait(std::move(handler));
        },
        token, node_);
  }

  // The wait completed: whether the place was granted (then the attempt holds it).
  bool finish() noexcept {
    const bool granted = !limit_->withdraw(*node_);
    node_.reset();
    return granted;
  }

 private:
  concurrency_limit* limit_ = nullptr;
  std::shared_ptr<place_waiter<Timer>> node_;
  bool unclaimed_ = false;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
