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

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// The waiters whose timers live on one execution context. It is made after the context's
// timer machinery (its first use comes after a waiter's timer exists), so it is shut down before
// it when the context is destroyed: it then takes every waiter out of its limit's queue, and no
// thread posts a wake-up into a context whose handlers are being destroyed. A waiter granted
// before that is given back by its owner, as usual.
class place_wait_service : public stamina::net::execution_context::service {
 public:
  inline static stamina::net::execution_context::id id;
  explicit place_wait_service(stamina::net::execution_context& ctx) : service(ctx) {}

  // Under `lock_`; false once shut down (the waiter must not queue).
  bool enrol(concurrency_limit& limit, limit_waiter& w) noexcept {
    const std::lock_guard guard(lock_);
    if (shut_down_) return false;
    w.service_limit = &limit;
    w.service_next = head_;
    w.service_prev = nullptr;
    if (head_ != nullptr) head_->service_prev = &w;
    head_ = &w;
    return true;
  }
  void leave(limit_waiter& w) noexcept {
    const std::lock_guard guard(lock_);
    if (w.service_limit == nullptr) return;
    (w.service_prev != nullptr ? w.service_prev->service_next : head_) = w.service_next;
    if (w.service_next != nullptr) w.service_next->service_prev = w.service_prev;
    w.service_limit = nullptr;
  }

 private:
  void shutdown() override {
    const std::lock_guard guard(lock_);
    shut_down_ = true;
    for (limit_waiter* w = head_; w != nullptr; w = w->service_next) w->service_limit->withdraw(*w);
  }

  std::mutex lock_;
  limit_waiter* head_ = nullptr;
  bool shut_down_ = false;
};

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
    if (node_) {
      finish();
      if (ticket_) limit_->release(*ticket_, std::nullopt, limit_sample::none);
    }
    if (unclaimed_) limit_->release(ticket_.value_or(0), std::nullopt, limit_sample::none);
  }

  // Takes a place if one is free (true: no wait; the place is this object's until claim()); else
  // queues the attempt, and the driver waits with async_wait for at most `at_most` (none: until
  // granted or cancelled).
  template <class Executor>
  bool start(concurrency_limit& limit, const Executor& ex, const std::optional<duration>& at_most) {
    limit_ = &limit;
    ticket_.reset();
    auto node = std::make_shared<place_waiter<Timer>>(ex);
    if (at_most)
      node->timer.expires_after(to_clock_duration<typename Timer::duration>(*at_most));
    else
      node->timer.expires_at(Timer::time_point::max());
    std::uint32_t ticket = 0;
    if (limit.try_acquire(&ticket)) {
      unclaimed_ = true;
      ticket_ = ticket;
      return true;
    }
    service_ = &stamina::net::use_service<place_wait_service>(
        stamina::net::query(node->timer.get_executor(), stamina::net::execution::context));
    if (!service_->enrol(limit, *node)) {
      // The context is being destroyed: wait without a queue (until the deadline).
      node_ = std::move(node);
      return false;
    }
    if (limit.acquire_or_wait(*node)) {
      service_->leave(*node);
      unclaimed_ = true;
      ticket_ = node->ticket;
      return true;
    }
    node_ = std::move(node);
    return false;
  }
  // The place start() took at once passes to the call; returns its ticket.
  std::uint32_t claim() noexcept {
    unclaimed_ = false;
    return ticket_.value_or(0);
  }

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

  // The wait completed: whether the place was granted (then the attempt holds it, ticket()).
  bool finish() noexcept {
    limit_->withdraw(*node_);
    if (service_ != nullptr) service_->leave(*node_);
    const bool granted = node_->granted;
    if (granted) ticket_ = node_->ticket;
    node_.reset();
    return granted;
  }
  std::uint32_t ticket() const noexcept { return ticket_.value_or(0); }

 private:
  concurrency_limit* limit_ = nullptr;
  place_wait_service* service_ = nullptr;
  std::shared_ptr<place_waiter<Timer>> node_;
  std::optional<std::uint32_t> ticket_;
  bool unclaimed_ = false;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
