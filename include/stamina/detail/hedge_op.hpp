#ifndef STAMINA_DETAIL_HEDGE_OP_HPP
#define STAMINA_DETAIL_HEDGE_OP_HPP

// The driver of async_hedge, for every completion token: it performs the hedge protocol's
// steps with Asio. Attempts start through start_attempt (both op forms), each bound to a
// cancellation signal of its own so that losers can be cancelled one by one; the hedging
// delay and the deadline are wake-ups of the context's one timer (wakeup_service.hpp).
//
// Several attempts run at once, and a loser may only be cancelled in the context its operation
// completes in (Asio's rule for cancellation slots). So every step of a call runs on one strand:
// the handler's executor when it is a strand, else a strand made on it. The attempts complete
// there, the wake-ups and the caller's cancellation are posted there, and nothing else touches
// the call's state — except the initiating function, which starts the first attempt off the
// strand: while it runs, a step that arrives re-posts itself (`performing_`). User code (the op,
// the classifier, the on_hedge hook) therefore runs under no lock of ours, and a cancellation it
// emits into its own call is handled after the current step, never inside it.

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/clock.hpp>
#include <stamina/detail/hedge_protocol.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/place_wait.hpp>
#include <stamina/detail/wakeup_service.hpp>
#include <stamina/error.hpp>
#include <stamina/hedging_policy.hpp>

#include <stamina/detail/asio.hpp>

#include <array>
#include <atomic>
#include <cassert>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

template <class Executor>
struct is_strand : std::false_type {};
template <class Inner>
struct is_strand<stamina::net::strand<Inner>> : std::true_type {};

// The executor every step of a hedged call runs on: the handler's, if it is a strand already.
template <class HandlerExecutor>
using serial_executor =
    std::conditional_t<is_strand<HandlerExecutor>::value, HandlerExecutor, stamina::net::strand<HandlerExecutor>>;

template <class HandlerExecutor>
serial_executor<HandlerExecutor> make_serial(const HandlerExecutor& ex) {
  if constexpr (is_strand<HandlerExecutor>::value)
    return ex;
  else
    return stamina::net::make_strand(ex);
}

template <class Clock, class Executor, class Allocator, class Op, class Self, class First, class... Rest>
class hedge_state {
  using handler_executor =
      decltype(stamina::net::get_associated_executor(std::declval<Self&>(), std::declval<const Executor&>()));
  using strand_type = serial_executor<handler_executor>;
  using pointer = std::shared_ptr<hedge_state>;
  using timer_type = stamina::net::basic_waitable_timer<Clock, stamina::net::wait_traits<Clock>, Executor>;

 public:
  hedge_state(const Executor& ex, const Allocator& alloc, hedging_policy&& policy, Op&& op, const caller& where,
              Self&& self)
      : ex_(ex),
        serial_(make_serial(stamina::net::get_associated_executor(self, ex))),
        alloc_(alloc),
        policy_(std::move(policy)),
        op_(std::move(op)),
        call_(policy_, &where),
        start_(Clock::now()),
        self_(std::move(self)) {}

  // Runs in the initiating function, off the strand: steps arriving meanwhile wait (performing_).
  static void begin(pointer st) {
    hedge_state& s = *st;
    // The caller's cancellation reaches every attempt. The slot handler holds a weak
    // reference: the slot may outlive this state (it lives in the caller's signal).
    s.performing_.store(true, std::memory_order_relaxed);
    auto slot = s.self_->get_cancellation_state().slot();
    if (slot.is_connected()) slot.assign(cancel_handler{st});
    const bool done = s.perform(st, s.call_.start(duration(0), s.origin()), stamina::net::cancellation_type::terminal);
    s.performing_.store(false, std::memory_order_release);
    // Nothing sent (an open breaker, or an inherited deadline that had passed): complete from a
    // fresh stack.
    if (done) s.later([st = std::move(st)]() mutable { complete(std::move(st)); });
  }

 private:
  // Completes attempt `n` into the state; its cancellation slot is the attempt's own signal.
  struct attempt_done {
    pointer st;
    unsigned attempt;

    using executor_type = strand_type;
    executor_type get_executor() const noexcept { return st->serial_; }
    using allocator_type = Allocator;
    allocator_type get_allocator() const noexcept { return st->alloc_; }
    using cancellation_slot_type = stamina::net::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return st->signals_[attempt - 1].slot(); }

    void operator()(First first, Rest... rest) {
      attempt_finished(std::move(st), attempt, std::move(first), std::move(rest)...);
    }
  };

  // The wait for a place under the concurrency limit ended (or a place was free when it was to
  // start: `at_once`). Its cancellation slot is the queue's own signal.
  struct place_done {
    pointer st;
    bool at_once;
    stamina::error_code ec{};

    using executor_type = strand_type;
    executor_type get_executor() const noexcept { return st->serial_; }
    using allocator_type = Allocator;
    allocator_type get_allocator() const noexcept { return st->alloc_; }
    using cancellation_slot_type = stamina::net::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return st->queue_signal().slot(); }

    void operator()(stamina::error_code e) {
      ec = e;
      (*this)();
    }
    void operator()() {
      hedge_state& s = *st;
      if (s.busy()) {
        s.later(std::move(*this));
        return;
      }
      // The wait's cancellation handler points into its timer, which finish() destroys: a later
      // cancellation must not reach it.
      s.queue_signal().slot().clear();
      s.waiting_for_place_ = false;
      const bool granted = at_once || s.place_->finish();
      const std::uint32_t ticket = at_once ? s.place_->claim() : s.place_->ticket();
      s.step(std::move(st), s.call_.place_wait_finished(s.elapsed(), granted, static_cast<bool>(ec), ticket),
             stamina::net::cancellation_type::terminal);
    }
  };

  enum class timer_kind : unsigned char { delay, limit };

  // The delay and the attempts' time limit: wake-ups of the context's one timer
  // (wakeup_service.hpp).
  struct timer_slot final : wakeup<Clock> {
    timer_slot(hedge_state* s, timer_kind k) noexcept : state(s), kind(k) {}
    void fire(std::shared_ptr<void> keep, unsigned generation) override {
      pointer st = std::static_pointer_cast<hedge_state>(std::move(keep));
      const strand_type serial = st->serial_;
      stamina::net::post(serial, timer_done{std::move(st), kind, generation});
    }
    hedge_state* state;
    timer_kind kind;
  };

  struct timer_done {
    pointer st;
    timer_kind kind;
    unsigned generation;

    void operator()() {
      hedge_state& s = *st;
      if (s.busy()) {
        s.later(std::move(*this));
        return;
      }
      const unsigned current = kind == timer_kind::delay ? s.delay_generation_ : s.limit_generation_;
      // Re-armed or disarmed after it had already been taken off the heap: stale.
      if (generation != current || s.call_.completed()) return;
      const hedge_step step =
          kind == timer_kind::delay ? s.call_.delay_elapsed(s.elapsed()) : s.call_.limit_reached(s.elapsed());
      s.step(std::move(st), step, stamina::net::cancellation_type::terminal);
    }
  };

  // The caller cancelled: handled on the strand, after whatever step is running (the caller
  // may be our own op or classifier, inside a step).
  struct cancel_handler {
    std::weak_ptr<hedge_state> weak;
    void operator()(stamina::net::cancellation_type type) const {
      pointer st = weak.lock();
      if (!st) return;
      const strand_type serial = st->serial_;
      stamina::net::post(serial, cancelled{std::move(st), type});
    }
  };

  struct cancelled {
    pointer st;
    stamina::net::cancellation_type type;
    void operator()() {
      hedge_state& s = *st;
      if (s.busy()) {
        s.later(std::move(*this));
        return;
      }
      if (s.call_.completed()) return;
      // The attempts get the caller's own kind of cancellation.
      s.step(std::move(st), s.call_.cancelled(s.elapsed()), type);
    }
  };

  static void attempt_finished(pointer st, unsigned n, First first, Rest... rest) {
    hedge_state& s = *st;
    if (s.busy()) {
      // It completed inside our own start or cancel (inline), or while the initiating function
      // still runs: continue from a fresh stack, so nothing nests and the caller's handler
      // never runs inside async_hedge().
      s.later([st = std::move(st), n, first = std::move(first), ... rest = std::move(rest)]() mutable {
        attempt_finished(std::move(st), n, std::move(first), std::move(rest)...);
      });
      return;
    }
    const hedge_step step = failed(first) ? s.call_.attempt_failed(n, failure(first), s.elapsed())
                                          : s.call_.attempt_succeeded(
                                                n, [&s] { return s.elapsed(); }, rest...);
    if (step.keep_result) s.result_.emplace(std::move(first), std::move(rest)...);
    s.step(std::move(st), step, stamina::net::cancellation_type::terminal);
  }

  // A step is running (inline completion) or the initiating function has not returned yet.
  bool busy() const noexcept { return performing_.load(std::memory_order_acquire); }
  // Runs `f` on the strand later, from a fresh stack.
  template <class F>
  void later(F&& f) {
    stamina::net::post(serial_, std::forward<F>(f));
  }

  // Performs a step on the strand; completes the call when it says so.
  void step(pointer st, const hedge_step& next, stamina::net::cancellation_type cancel_type) {
    performing_.store(true, std::memory_order_relaxed);
    const bool done = perform(st, next, cancel_type);
    performing_.store(false, std::memory_order_release);
    if (done) complete(std::move(st));
  }

  // Performs the step's I/O; returns whether the call must now complete.
  bool perform(const pointer& st, const hedge_step& step, stamina::net::cancellation_type cancel_type) {
    for (unsigned n = 1; n <= call_.started(); ++n)
      if ((step.cancel_mask & (1U << (n - 1))) != 0) signals_[n - 1].emit(cancel_type);
    if (step.cancel_queue && waiting_for_place_) queue_signal().emit(cancel_type);
    if (step.disarm && wakeups_ != nullptr) {
      ++delay_generation_;
      ++limit_generation_;
      wakeups_->cancel(delay_slot_);
      wakeups_->cancel(limit_slot_);
    }
    if (step.start_attempt) {
      const unsigned n = call_.started();
      const attempt_context* ctx = nullptr;
      if constexpr (op_traits<Op>::takes_context) ctx = &call_.context(n, scopes_[n - 1], elapsed(), origin());
      start_attempt(attempt_starts_[n - 1], op_, ex_, attempt_done{st, n},
                    static_cast<void (*)(First, Rest...)>(nullptr), ctx);
    }
    if (step.queue) {
      armed_once_ = true;  // the attempt's delay and time limit will count from when it is sent
      // The wait's timer lives on the I/O executor; it completes on the strand.
      if (!place_) place_ = std::make_unique<place_wait<timer_type>>();  // made by calls that queue
      if (place_->start(*call_.state().limit(), ex_, step.queue_at_most)) {
        later(place_done{st, true});  // a place came free meanwhile: continue from a fresh stack
      } else {
        waiting_for_place_ = true;
        place_->async_wait(place_done{st, false});
      }
    }
    if (step.arm_delay || step.arm_limit) {
      // The first step's times count from the call's start: no second clock read.
      const auto now = call_.started() == 1 && !armed_once_ ? start_ : Clock::now();
      armed_once_ = true;
      if (step.arm_delay) arm(st, delay_slot_, timer_kind::delay, ++delay_generation_, now, *step.arm_delay);
      if (step.arm_limit) arm(st, limit_slot_, timer_kind::limit, ++limit_generation_, now, *step.arm_limit);
    }
    return step.complete;
  }

  void arm(const pointer& st, timer_slot& slot, timer_kind kind, unsigned generation, typename Clock::time_point now,
           duration after) {
    if (!(after.count() > 0)) {  // due now (testing mode, virtual time): no timer
      later(timer_done{st, kind, generation});
      return;
    }
    if (wakeups_ == nullptr)
      wakeups_ =
          &stamina::net::use_service<wakeup_service<Clock>>(stamina::net::query(ex_, stamina::net::execution::context));
    wakeups_->schedule(slot, now + to_clock_duration<typename Clock::duration>(after), st, generation, ex_);
  }

  // Every attempt has returned. The state (and with it the attempts' signals and our copies)
  // is released before the caller's handler runs (unless a wake-up already taken off the heap is
  // on its way, and holds it until it finds itself stale). We run on the strand, on the
  // handler's executor, never in async_hedge().
  static void complete(pointer st) {
    hedge_state& s = *st;
    Self self = std::move(*s.self_);
    s.self_.reset();
    std::optional<std::tuple<First, Rest...>> result = std::move(s.result_);
    if (s.call_.outcome() == hedge_outcome::refused)
      result.emplace(error_as<First>(error::circuit_open), std::decay_t<Rest>{}...);
    else if (s.call_.outcome() == hedge_outcome::throttled)
      result.emplace(error_as<First>(error::throttled), std::decay_t<Rest>{}...);
    else if (s.call_.outcome() == hedge_outcome::aborted)
      result.emplace(error_as<First>(stamina::net::error::operation_aborted), std::decay_t<Rest>{}...);
    else if (s.call_.outcome() == hedge_outcome::expired)
      result.emplace(error_as<First>(error::deadline_exceeded), std::decay_t<Rest>{}...);
    else if (!result || s.call_.outcome() == hedge_outcome::timed_out)
      result.emplace(error_as<First>(error::attempt_timeout), std::decay_t<Rest>{}...);
    if constexpr (with_fallback<Op>) {
      if (falls_back(s.call_.gave_up())) {
        const give_up_info info{*s.call_.gave_up(), s.call_.started(), delivered_failure(std::get<0>(*result))};
        result = fallback_arguments<First, Rest...>(s.op_.get_fallback(), info);
      }
    }
    st.reset();
    self.get_cancellation_state().slot().clear();
    std::apply([&self](auto&&... args) { self.complete(std::move(args)...); }, std::move(*result));
  }

  duration elapsed() const noexcept { return duration(Clock::now() - start_); }
  // What cancels the wait for a place: the signal of the attempt that waits (it has not started;
  // the slot is cleared when the wait ends, before the attempt uses it).
  stamina::net::cancellation_signal& queue_signal() noexcept { return signals_[call_.started()]; }
  // When the call started, in seconds since its clock's epoch (where an inherited deadline falls).
  double origin() const noexcept { return std::chrono::duration<double>(start_.time_since_epoch()).count(); }

  Executor ex_;
  strand_type serial_;
  Allocator alloc_;
  hedging_policy policy_;
  Op op_;
  hedge_protocol call_;
  typename Clock::time_point start_;
  std::optional<Self> self_;
  std::atomic<bool> performing_{false};  // a step (or the initiation) runs: arriving steps are re-posted
  std::array<stamina::net::cancellation_signal, hedging_policy::max_attempts_limit> signals_;
  // Each attempt's start (start_attempt). One per attempt: an earlier attempt's handler may be
  // called or destroyed while a later one is being started, and must not take it for its own.
  std::array<start_gate, hedging_policy::max_attempts_limit> attempt_starts_;
  std::optional<std::tuple<First, Rest...>> result_;
  std::unique_ptr<place_wait<timer_type>> place_;  // the wait for a place under the concurrency limit
  // Each attempt's context, for an op that takes one (attempts run at once: one each).
  [[no_unique_address]] std::conditional_t<
      op_traits<Op>::takes_context, std::array<attempt_scope, hedging_policy::max_attempts_limit>, no_attempt_scope>
      scopes_;
  wakeup_service<Clock>* wakeups_ = nullptr;  // looked up when first armed
  timer_slot delay_slot_{this, timer_kind::delay};
  timer_slot limit_slot_{this, timer_kind::limit};
  unsigned delay_generation_ = 0;
  unsigned limit_generation_ = 0;
  bool armed_once_ = false;
  bool waiting_for_place_ = false;  // the wait for a place is pending (queue_signal() is connected)
};

template <class Clock, class Executor, class Op, class Allocator, class Signature>
class hedge_op;

template <class Clock, class Executor, class Op, class Allocator, class First, class... Rest>
class hedge_op<Clock, Executor, Op, Allocator, void(First, Rest...)> {
 public:
  hedge_op(const Executor& ex, hedging_policy&& policy, Op&& op, const caller& where, const Allocator& alloc)
      : ex_(ex), alloc_(alloc), policy_(std::move(policy)), op_(std::move(op)), where_(where) {}

  // Initiation: the state takes `self` and lives as long as an attempt or a timer refers to it.
  template <class Self>
  void operator()(Self& self) {
    // Terminal and partial cancellation reach the attempts; total is not supported (an
    // attempt may have had effects), so it is filtered out.
    self.reset_cancellation_state(stamina::net::enable_partial_cancellation());
    using state = hedge_state<Clock, Executor, Allocator, Op, Self, First, Rest...>;
    const Executor ex = ex_;
    const Allocator alloc = alloc_;
    hedging_policy policy = std::move(policy_);
    Op op = std::move(op_);
    state::begin(
        std::allocate_shared<state>(alloc, ex, alloc, std::move(policy), std::move(op), where_, std::move(self)));
  }

 private:
  Executor ex_;
  Allocator alloc_;
  hedging_policy policy_;
  Op op_;
  caller where_;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
