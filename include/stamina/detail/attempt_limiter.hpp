#ifndef STAMINA_DETAIL_ATTEMPT_LIMITER_HPP
#define STAMINA_DETAIL_ATTEMPT_LIMITER_HPP

// How both asynchronous drivers enforce an attempt time limit: the attempt is started bound to a
// cancellation slot of our own (the composed operation binds the attempt's handler to it; the
// caller coroutine binds the coroutine it spawns for the attempt); a timer emits terminal
// cancellation into it when the limit passes, and the caller's own cancellation is forwarded
// to the same signal while the attempt runs.

#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>

#include <stamina/detail/asio.hpp>

#include <memory>

STAMINA_NAMESPACE_BEGIN
namespace detail {

template <class Timer>
class attempt_limiter {
 public:
  template <class Executor>
  explicit attempt_limiter(const Executor& ex) : timer_(ex) {}

  // Starts the clock of one attempt. `caller` is the slot the caller's cancellation arrives
  // on (may be unconnected); `handler_ex` is where the timer's handler runs, the executor the
  // attempt's completion is serialised on. Returns the slot to start the attempt with.
  template <class HandlerExecutor>
  stamina::net::cancellation_slot arm(duration limit, stamina::net::cancellation_slot caller,
                                      const HandlerExecutor& handler_ex) {
    // A block per attempt: a timer handler already queued for an earlier attempt can only
    // touch that attempt's block, never cancel this one.
    current_ = std::make_shared<shared>();
    timer_.expires_after(to_clock_duration<typename Timer::duration>(limit));
    timer_.async_wait(stamina::net::bind_executor(handler_ex, [s = current_](const stamina::error_code& ec) {
      if (ec || s->finished) return;
      s->fired = true;
      s->signal.emit(stamina::net::cancellation_type::terminal);
    }));
    caller_ = caller;
    if (caller_.is_connected())
      caller_.assign([s = current_](stamina::net::cancellation_type type) { s->signal.emit(type); });
    return slot();
  }

  // Whether an attempt is armed and not yet finished.
  bool engaged() const noexcept { return current_ && !current_->finished; }

  // The slot arm() returned, for the attempt it armed.
  stamina::net::cancellation_slot slot() const noexcept { return current_->signal.slot(); }

  // The attempt completed: stops the timer and the forwarding. Returns whether the time limit
  // had cut the attempt.
  bool finish() {
    current_->finished = true;
    if (caller_.is_connected()) caller_.clear();
    timer_.cancel();
    return current_->fired;
  }

 private:
  struct shared {
    stamina::net::cancellation_signal signal;
    bool fired = false;
    bool finished = false;
  };
  Timer timer_;
  std::shared_ptr<shared> current_;
  stamina::net::cancellation_slot caller_;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
