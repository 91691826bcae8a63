#ifndef STAMINA_DETAIL_ASYNC_RETRY_OP_HPP
#define STAMINA_DETAIL_ASYNC_RETRY_OP_HPP

// The composed-operation driver: async_retry for every completion token except
// `use_awaitable` (see caller_coroutine.hpp). It performs the retry protocol's actions with
// Asio: attempts through start_attempt, waits on a timer, attempt limits through
// attempt_limiter.

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/attempt_limiter.hpp>
#include <stamina/detail/clock.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/place_wait.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/error.hpp>
#include <stamina/retry_policy.hpp>

#include <stamina/detail/asio.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

struct wait_done {};      // tags the completion of a backoff wait; an attempt's is untagged
struct place_done {};     // tags the completion of a wait for a place under the concurrency limit
struct place_granted {};  // tags a place granted at once, continued from a fresh stack

template <class Clock, class Executor, class Op, class Allocator, class Signature>
class retry_op;

template <class Clock, class Executor, class Op, class Allocator, class First, class... Rest>
class retry_op<Clock, Executor, Op, Allocator, void(First, Rest...)> {
  using timer_type = stamina::net::basic_waitable_timer<Clock, stamina::net::wait_traits<Clock>, Executor>;

  // Everything that must stay at one address while inner operations are pending (the
  // protocol refers to the policy; timers must not move while waiting).
  struct state {
    state(retry_policy&& p, Op&& o, const caller& where)
        : policy(std::move(p)),
          op(std::move(o)),
          call(policy, where, !op_traits<Op>::takes_context),
          clock(retry_protocol::needs_clock(policy, call.switches()), retry_protocol::precise_clock(policy)) {}
    retry_policy policy;
    Op op;
    deferred_protocol call;  // a plain call's is made when its first attempt fails
    stopwatch<Clock> clock;
    std::optional<std::tuple<First, Rest...>> last;        // the last result retried, for a later give-up
    std::optional<timer_type> wait_timer;                  // created on the first real wait only
    std::unique_ptr<attempt_limiter<timer_type>> limiter;  // created on the first limited attempt
    std::optional<place_wait<timer_type>> place;           // a queued attempt's wait, made by the first
    [[no_unique_address]] attempt_scope_for<Op> scope;     // the attempt's context, for an op taking one
    start_gate gate;                                       // the attempt's start (start_attempt)
  };
  using state_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<state>;
  using state_alloc_traits = std::allocator_traits<state_allocator>;

 public:
  retry_op(const Executor& ex, retry_policy&& policy, Op&& op, const caller& where, const Allocator& alloc)
      : ex_(ex), alloc_(alloc), state_(make_state(alloc_, std::move(policy), std::move(op), where)) {}
  // Asio moves the operation along with its handler at every step (about ten times per call):
  // a moved-from operation's destructor is one inline test.
  retry_op(retry_op&& other) noexcept
      : ex_(std::move(other.ex_)), alloc_(other.alloc_), state_(std::exchange(other.state_, nullptr)) {}
  retry_op(const retry_op&) = delete;
  retry_op& operator=(const retry_op&) = delete;
  retry_op& operator=(retry_op&&) = delete;
  ~retry_op() {
    if (state_ != nullptr) [[unlikely]]
      free_state();
  }

  // Initiation.
  template <class Self>
  void operator()(Self& self) {
    // Terminal and partial cancellation are supported; total is not (earlier attempts may
    // have had effects that cannot be undone), so it is filtered out.
    self.reset_cancellation_state(stamina::net::enable_partial_cancellation());
    const action first = state_->call.start(state_->clock);
    if (first.kind == action_kind::give_up) {
      // Shed before anything started: complete from a fresh stack, never inside async_retry().
      const Executor ex = ex_;
      stamina::net::post(ex, detail::prepend_to(std::move(self), first));
      return;
    }
    perform(self, first);
  }

  // The call ended in its initiating function (posted).
  template <class Self>
  void operator()(Self& self, action next) {
    perform(self, next);
  }

  // An attempt finished.
  template <class Self>
  void operator()(Self& self, First first, Rest... rest) {
    state& s = *state_;
    if (!s.call) [[likely]] {  // a plain first attempt
      if (!failed(first)) {
        s.call.plain_attempt_succeeded();
        complete(self, std::move(first), std::move(rest)...);
        return;
      }
      s.call.make_after_first_attempt();
    }
    const bool timed_out = s.limiter && s.limiter->engaged() && s.limiter->finish();
    action next;
    const bool cancelled = cancel_requested(self.get_cancellation_state());
    if (!failed(first)) {
      next = s.call->attempt_succeeded([&s] { return s.clock.elapsed(); }, cancelled, rest...);
    } else {
      next = timed_out ? s.call->attempt_timed_out(s.clock.elapsed(), cancelled)
                       : s.call->attempt_failed(failure(first), s.clock.elapsed(), cancelled);
    }
    if (next.kind == action_kind::deliver ||
        (next.kind == action_kind::give_up && next.result == give_up_result::last_attempt)) {
      complete(self, std::move(first), std::move(rest)...);
      return;
    }
    // Retried: kept, for a give-up that comes later without a new result (a held-back attempt).
    s.last.emplace(std::move(first), std::move(rest)...);
    perform(self, next);
  }

  // A backoff wait finished.
  template <class Self>
  void operator()(Self& self, wait_done, stamina::error_code ec) {
    state& s = *state_;
    const bool interrupted = ec || cancel_requested(self.get_cancellation_state());
    perform(self, s.call->wait_finished(s.clock.elapsed(), interrupted));
  }

  // A place was granted as the attempt was queued (posted).
  template <class Self>
  void operator()(Self& self, place_granted) {
    state& s = *state_;
    const std::uint32_t ticket = s.place->claim();
    const bool cancelled = cancel_requested(self.get_cancellation_state());
    perform(self, s.call->place_wait_finished(s.clock.elapsed(), true, cancelled, ticket));
  }

  // A wait for a place under the concurrency limit finished.
  template <class Self>
  void operator()(Self& self, place_done, stamina::error_code ec) {
    state& s = *state_;
    const bool granted = s.place->finish();
    const bool interrupted = cancel_requested(self.get_cancellation_state()) || (ec && !granted);
    perform(self, s.call->place_wait_finished(s.clock.elapsed(), granted, interrupted, s.place->ticket()));
  }

 private:
  // Performs an action that needs no attempt result.
  template <class Self>
  void perform(Self& self, const action& next) {
    state& s = *state_;
    switch (next.kind) {
      case action_kind::attempt:
        start(self, next.limit());
        return;
      case action_kind::wait:
        if (!s.wait_timer) s.wait_timer.emplace(ex_);
        s.wait_timer->expires_after(to_clock_duration<typename Clock::duration>(next.wait()));
        s.wait_timer->async_wait(detail::prepend_to(std::move(self), wait_done{}));
        return;
      case action_kind::queue:
        if (!s.place) s.place.emplace();
        if (s.place->start(*s.call->state().limit(), ex_, next.limit())) {
          // A place came free meanwhile. Continue from a fresh stack: this may be the initiating
          // function, and what follows may be a give-up (the breaker opened).
          const Executor ex = ex_;
          stamina::net::post(ex, detail::prepend_to(std::move(self), place_granted{}));
          return;
        }
        s.place->async_wait(detail::prepend_to(std::move(self), place_done{}));
        return;
      case action_kind::give_up:
        if (next.result == give_up_result::last_attempt && s.last) {  // the last result the dependency produced
          std::tuple<First, Rest...> last = std::move(*s.last);       // out of the state, which completing frees
          std::apply([&](auto&&... args) { complete(self, std::move(args)...); }, std::move(last));
          return;
        }
        [[fallthrough]];
      case action_kind::deliver:
        complete(self, error_as<First>(give_up_code(next.result)), std::decay_t<Rest>{}...);
        return;
    }
  }

  template <class Self>
  void start(Self& self, const std::optional<duration>& limit) {
    state& s = *state_;
    const Executor ex = ex_;
    const attempt_context* ctx = attempt_context_of(s.call, s.scope, s.clock);
    // One handler type with or without a time limit, so that the op is instantiated once per
    // call: bound to the limit's slot, or to the operation's own (what it shows unbound).
    stamina::net::cancellation_slot slot = self.get_cancellation_state().slot();
    if (limit) {
      if (!s.limiter) s.limiter = std::make_unique<attempt_limiter<timer_type>>(ex);
      slot = s.limiter->arm(*limit, slot, stamina::net::get_associated_executor(self, ex));
    }
    start_attempt(s.gate, s.op, ex, slot_bound_handler<Self>(std::move(self), slot),
                  static_cast<void (*)(First, Rest...)>(nullptr), ctx);
    // `self` has moved, and with it the state: a completion that came during the start (inline
    // or on another thread) was posted by start_attempt, so the call never ends in here.
  }

  template <class Self, class... Args>
  void complete(Self& self, Args&&... args) {
    if constexpr (with_fallback<Op>) {
      state& s = *state_;
      if (s.call && falls_back(s.call->gave_up())) {
        const auto& first = std::get<0>(std::forward_as_tuple(args...));
        const give_up_info info{*s.call->gave_up(), s.call->sent(), delivered_failure(first)};
        std::tuple<First, Rest...> substitute = fallback_arguments<First, Rest...>(s.op.get_fallback(), info);
        free_state();
        std::apply([&](auto&&... values) { self.complete(std::move(values)...); }, std::move(substitute));
        return;
      }
    }
    free_state();  // timers, copies and hook scopes go before the handler runs
    self.complete(std::forward<Args>(args)...);
  }

  using error_code_type = stamina::error_code;

  // The state comes from the handler's allocator (an allocator need not be default-constructible).
  static state* make_state(state_allocator& a, retry_policy&& policy, Op&& op, const caller& where) {
    state* p = state_alloc_traits::allocate(a, 1);
    try {
      state_alloc_traits::construct(a, p, std::move(policy), std::move(op), where);
    } catch (...) {
      state_alloc_traits::deallocate(a, p, 1);
      throw;
    }
    return p;
  }
  void free_state() noexcept {
    state_alloc_traits::destroy(alloc_, state_);
    state_alloc_traits::deallocate(alloc_, state_, 1);
    state_ = nullptr;
  }

  Executor ex_;
  [[no_unique_address]] state_allocator alloc_;
  state* state_;  // null once completed (or moved from)
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
