#ifndef STAMINA_DETAIL_HEDGE_PROTOCOL_HPP
#define STAMINA_DETAIL_HEDGE_PROTOCOL_HPP

// The rules of one hedged call (gRPC A6 hedging), written once: a sans-I/O state machine like
// retry_protocol. The driver (hedge_op.hpp) reports what happened — an attempt succeeded or
// failed, the hedging delay or the deadline passed, the caller cancelled — and performs the
// step the machine returns. The machine reads no clock, starts nothing and waits for nothing.
//
// Owned here: when a hedge starts (after the delay; at once after a failure `on` accepts),
// the attempt limit, the budget, the adaptive delay's samples, which attempt's result the
// call delivers, that the call completes only once every attempt it started has returned,
// and the counters and hook events.

#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/failure.hpp>
#include <stamina/global.hpp>
#include <stamina/hedging_policy.hpp>
#include <stamina/instrumentation.hpp>

#include <cassert>
#include <optional>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// What the driver does after an event, in this order. Several parts may be set at once.
struct hedge_step {
  bool keep_result = false;              // store the reporting attempt's arguments: they are the call's result so far
  bool cancel_attempts = false;          // cancel every attempt still in flight
  bool disarm = false;                   // cancel the delay and deadline timers: no more hedges
  bool start_attempt = false;            // start the next attempt now (numbered `started()`)
  std::optional<duration> arm_delay;     // (re)arm the delay timer: report delay_elapsed after this
  std::optional<duration> arm_deadline;  // arm the deadline timer: report deadline_reached after this
  bool complete = false;                 // every attempt has returned: complete the call as `outcome()` says
};

// What the call completes with.
enum class hedge_outcome : unsigned char {
  kept_result,  // the stored arguments (the winner, or the failure that ended the call)
  timed_out,    // stamina::error::attempt_timeout, the other values value-initialised
};

class hedge_protocol {
 public:
  explicit hedge_protocol(const hedging_policy& policy) noexcept : policy_(&policy) {}
  hedge_protocol(hedging_policy&&) = delete;

  // The call starts: its first attempt, the delay until the first hedge, the deadline.
  hedge_step start() noexcept {
    const hedging_policy& p = *policy_;
    p.counters().calls.fetch_add(1, std::memory_order_relaxed);
    // Python stamina's switch: with retries deactivated a call makes one attempt.
    limit_ = load_global_config().active() ? p.max_attempts() : 1;
    if (limit_ > 1)
      if (hedge_budget* b = p.budget().get()) b->deposit();
    hedge_step step;
    step.start_attempt = true;
    started_ = in_flight_ = 1;
    in_flight_mask_ = 1;
    if (limit_ > 1) step.arm_delay = p.current_delay();
    step.arm_deadline = p.timeout();
    return step;
  }

  // Attempt `attempt` (from 1) succeeded; `elapsed()` is the time since the call started
  // (read only when needed: the adaptive delay's sample, the hook's event).
  template <class Elapsed>
  hedge_step attempt_succeeded(unsigned attempt, Elapsed&& elapsed) {
    hedge_step step = attempt_returned(attempt);
    if (decided_) return step;
    decided_ = true;
    step.keep_result = true;
    const hedging_policy& p = *policy_;
    if (latency_window* w = p.window(); w != nullptr || attempt > 1 || p.on_hedge() != nullptr) {
      const duration now = elapsed();
      if (w != nullptr) w->record(now);
      if (attempt > 1) {
        p.counters().won.fetch_add(1, std::memory_order_relaxed);
        notify(hedge_event_kind::won, attempt, now);
      }
      end_in_flight(step, now);
    } else {
      end_in_flight(step, duration(0));
    }
    return step;
  }

  // Attempt `attempt` failed with `f`.
  hedge_step attempt_failed(unsigned attempt, const failure& f, duration elapsed) {
    hedge_step step = attempt_returned(attempt);
    if (decided_) return step;
    step.keep_result = true;  // the last failure, delivered if nothing better comes
    if (!cancelled_ && !classify(f)) {
      // A failure `on` rejects ends the call (gRPC: a fatal status), with this failure.
      decided_ = true;
      end_in_flight(step, elapsed);
      return step;
    }
    if (!cancelled_ && started_ < limit_) {
      if (start_hedge(step, elapsed)) {
        // The next hedge after this one is a full delay away.
        if (started_ < limit_) step.arm_delay = policy_->current_delay();
        return step;
      }
    }
    if (in_flight_ == 0) finish(step);  // every attempt failed: the last failure
    return step;
  }

  // The delay timer armed by the last step expired.
  hedge_step delay_elapsed(duration elapsed) {
    hedge_step step;
    if (decided_ || cancelled_ || started_ >= limit_) return step;
    if (start_hedge(step, elapsed) && started_ < limit_) step.arm_delay = policy_->current_delay();
    return step;
  }

  // The deadline timer expired: the call ends with attempt_timeout once its attempts return.
  hedge_step deadline_reached(duration elapsed) {
    hedge_step step;
    if (decided_) return step;
    decided_ = true;
    outcome_ = hedge_outcome::timed_out;
    end_in_flight(step, elapsed);
    return step;
  }

  // The caller cancelled the whole call: no more hedges; every attempt in flight is
  // cancelled, and the first of them to succeed anyway still wins (else the last failure).
  hedge_step cancelled(duration elapsed) {
    hedge_step step;
    if (decided_ || cancelled_) return step;
    cancelled_ = true;
    step.disarm = true;
    cancel_all(step, elapsed);
    return step;
  }

  hedge_outcome outcome() const noexcept { return outcome_; }
  // Attempts started so far (the number of the last one).
  unsigned started() const noexcept { return started_; }
  unsigned in_flight() const noexcept { return in_flight_; }
  // Bit n-1 is set while attempt n is in flight: the attempts a cancel_attempts step means.
  unsigned in_flight_mask() const noexcept { return in_flight_mask_; }
  bool decided() const noexcept { return decided_; }
  bool completed() const noexcept { return completed_; }

 private:
  hedge_step attempt_returned(unsigned attempt) noexcept {
    assert(in_flight_ > 0 && (in_flight_mask_ & bit(attempt)) != 0);
    --in_flight_;
    in_flight_mask_ &= ~bit(attempt);
    hedge_step step;
    if (decided_ && in_flight_ == 0) finish(step);
    return step;
  }

  bool classify(const failure& f) const noexcept {
    try {
      return policy_->on()(f).should_retry();
    } catch (...) {
      report_classifier_failure();
      return false;
    }
  }

  // Starts the next attempt if the budget allows.
  bool start_hedge(hedge_step& step, duration elapsed) {
    const hedging_policy& p = *policy_;
    if (hedge_budget* b = p.budget().get(); b != nullptr && !b->try_spend()) {
      p.counters().denied.fetch_add(1, std::memory_order_relaxed);
      notify(hedge_event_kind::budget_denied, started_ + 1, elapsed);
      return false;
    }
    ++started_;
    ++in_flight_;
    in_flight_mask_ |= bit(started_);
    step.start_attempt = true;
    p.counters().hedges.fetch_add(1, std::memory_order_relaxed);
    notify(hedge_event_kind::started, started_, elapsed);
    return true;
  }

  // The call is decided: cancel what is still running, or complete now.
  void end_in_flight(hedge_step& step, duration elapsed) {
    step.disarm = true;
    if (in_flight_ == 0)
      finish(step);
    else
      cancel_all(step, elapsed);
  }

  void cancel_all(hedge_step& step, duration elapsed) {
    if (in_flight_ == 0) return;
    step.cancel_attempts = true;
    policy_->counters().cancelled.fetch_add(in_flight_, std::memory_order_relaxed);
    if (policy_->on_hedge() != nullptr)
      for (unsigned n = 1; n <= started_; ++n)
        if ((in_flight_mask_ & bit(n)) != 0) notify(hedge_event_kind::cancelled, n, elapsed);
  }

  void finish(hedge_step& step) noexcept {
    assert(!completed_);
    decided_ = completed_ = true;
    step.disarm = true;
    step.complete = true;
  }

  void notify(hedge_event_kind kind, unsigned attempt, duration elapsed) const noexcept {
    const auto* hook = policy_->on_hedge();
    if (hook == nullptr) return;
    try {
      const hedge_event event{policy_->name(), kind, attempt, elapsed};
      (*hook)(event);
    } catch (...) {
      report_hedge_hook_failure();
    }
  }
  static unsigned bit(unsigned attempt) noexcept { return 1U << (attempt - 1); }

  const hedging_policy* policy_;
  unsigned limit_ = 1;
  unsigned started_ = 0;
  unsigned in_flight_ = 0;
  unsigned in_flight_mask_ = 0;
  bool decided_ = false;    // the call's result is fixed (or it timed out)
  bool cancelled_ = false;  // the caller cancelled: no more hedges
  bool completed_ = false;  // the complete step was returned
  hedge_outcome outcome_ = hedge_outcome::kept_result;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
