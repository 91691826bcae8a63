#ifndef STAMINA_DETAIL_ASYNC_OP_TRAITS_HPP
#define STAMINA_DETAIL_ASYNC_OP_TRAITS_HPP

// What async_retry needs to know about an `op`: which of the two forms it has, the
// completion signature it produces, how to start one attempt with a given handler, and how to
// tell success from failure in its completion arguments.

#include <stamina/attempt_context.hpp>
#include <stamina/detail/call_site.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/error.hpp>
#include <stamina/failure.hpp>
#include <stamina/fallback.hpp>

#include <stamina/detail/asio.hpp>

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// A completion token used only inside decltype: its async_result reports the completion
// signatures an initiating function asks for, without initiating anything.
struct signature_probe {};
template <class... Signatures>
struct probed_signatures {};

}  // namespace detail
STAMINA_NAMESPACE_END

template <class... Signatures>
struct stamina::net::async_result<stamina::detail::signature_probe, Signatures...> {
  using return_type = stamina::detail::probed_signatures<Signatures...>;
  template <class Initiation, class... Args>
  static return_type initiate(Initiation&&, stamina::detail::signature_probe, Args&&...) {
    return {};
  }
};

STAMINA_NAMESPACE_BEGIN
namespace detail {

// The token handed to `op(token)` on the composed path. Users write
// `[&](auto token) { return sock.async_connect(ep, token); }`, passing the token as an lvalue,
// which Asio copies; our real handler is move-only. So `op` gets this copyable stand-in that
// points at the parked handler, and the initiation receives the handler itself. `op` must
// start its operation before returning, once.
template <class Handler>
class attempt_token {
 public:
  explicit attempt_token(std::optional<Handler>* parked) noexcept : parked_(parked) {}
  // The parked handler, whose associations the token shows (associator below): until the
  // operation starts and takes it. A token read after that (or after `op` returned, when the
  // handler's room is gone) is a misuse docs/semantics.md rules out.
  const Handler& handler() const noexcept {
    assert(parked_->has_value());
    return **parked_;
  }
  Handler take() {
    Handler h = std::move(**parked_);
    parked_->reset();
    return h;
  }

 private:
  std::optional<Handler>* parked_;
};

}  // namespace detail
STAMINA_NAMESPACE_END

template <class Handler, class... Signatures>
struct stamina::net::async_result<stamina::detail::attempt_token<Handler>, Signatures...> {
  using return_type = void;
  template <class Initiation, class... Args>
  static void initiate(Initiation&& initiation, stamina::detail::attempt_token<Handler> token, Args&&... args) {
    std::forward<Initiation>(initiation)(token.take(), std::forward<Args>(args)...);
  }
};

// The token shows the parked handler's associations (its cancellation slot, executor and
// allocator), as the handler itself would: an op may read them from its token when it starts,
// before the token is consumed (Boost.MySQL's connection pool and asio-grpc read the slot so).
template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct stamina::net::associator<Associator, stamina::detail::attempt_token<Handler>, DefaultCandidate> {
  using type = typename Associator<Handler, DefaultCandidate>::type;
  static type get(const stamina::detail::attempt_token<Handler>& token) noexcept {
    return Associator<Handler, DefaultCandidate>::get(token.handler());
  }
  static auto get(const stamina::detail::attempt_token<Handler>& token, const DefaultCandidate& candidate) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(token.handler(), candidate)) {
    return Associator<Handler, DefaultCandidate>::get(token.handler(), candidate);
  }
};

STAMINA_NAMESPACE_BEGIN
namespace detail {

template <class T>
struct awaitable_parts : std::false_type {};
template <class T, class Executor>
struct awaitable_parts<stamina::net::awaitable<T, Executor>> : std::true_type {
  using value_type = T;
  using executor_type = Executor;
};

template <class Op>
concept awaitable_op = std::is_invocable_v<Op&> && awaitable_parts<std::invoke_result_t<Op&>>::value;

template <class T>
struct is_use_awaitable : std::false_type {};
template <class Executor>
struct is_use_awaitable<stamina::net::use_awaitable_t<Executor>> : std::true_type {
  using executor_type = Executor;
};

// Whether a call with this token returns an awaitable (use_awaitable, or an adapter of it such as
// as_tuple(use_awaitable)): the form that is co_awaited.
template <class Token>
constexpr bool token_returns_awaitable() {
  using token_type = std::decay_t<Token>;
  if constexpr (requires { typename stamina::net::async_result<token_type, void(stamina::error_code)>::return_type; })
    return awaitable_parts<
        typename stamina::net::async_result<token_type, void(stamina::error_code)>::return_type>::value;
  else
    return false;
}

// g++ 12 destroys a temporary twice when it is made inside a `co_await` expression (fixed in
// g++ 13), so `co_await stamina::async_retry(ex, policy, [s = std::string()] { ... })` frees `s`
// twice. What the library can see of it: an rvalue op (or fallback) that owns something, passed
// to a form that returns an awaitable (the one that is co_awaited), compiled by g++ < 13.
template <class Op, class Token>
inline constexpr bool temporary_op_in_co_await =
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
    !std::is_lvalue_reference_v<Op> && !std::is_trivially_destructible_v<std::remove_cvref_t<Op>> &&
    token_returns_awaitable<Token>();
#else
    false;
#endif

template <class Op>
concept token_op = !awaitable_op<Op> && std::is_invocable_v<Op&, signature_probe> &&
                   !awaitable_parts<std::invoke_result_t<Op&, signature_probe>>::value;

// The forms that take the attempt's context first: op(ctx) returning an awaitable, and
// op(ctx, token). A form without the context, when the op has one, wins.
template <class Op>
concept context_awaitable_op = !awaitable_op<Op> && !token_op<Op> && std::is_invocable_v<Op&, const attempt_context&> &&
                               awaitable_parts<std::invoke_result_t<Op&, const attempt_context&>>::value;
template <class Op>
concept context_token_op = !awaitable_op<Op> && !token_op<Op> && !context_awaitable_op<Op> &&
                           std::is_invocable_v<Op&, const attempt_context&, signature_probe>;

template <class Probed>
struct single_signature {
  static_assert(!std::is_void_v<Probed>,
                "stamina: op(token) returned nothing: return what the Asio operation returns, e.g. "
                "[&](auto token) { return socket.async_connect(endpoint, token); }");
  static_assert(std::is_void_v<Probed> || always_false<Probed>,
                "op(token) must start an operation with exactly one completion signature");
};
template <class Signature>
struct single_signature<probed_signatures<Signature>> {
  using type = Signature;
};

template <class Signature>
struct decayed_signature;
template <class... Args>
struct decayed_signature<void(Args...)> {
  using type = void(std::decay_t<Args>...);
};

template <class Signature>
struct signature_head {
  static_assert(always_false<Signature>, "unsupported completion signature");
};
template <class First, class... Rest>
struct signature_head<void(First, Rest...)> {
  using first = std::decay_t<First>;
  static_assert(std::is_same_v<first, stamina::error_code> || std::is_same_v<first, std::exception_ptr>,
                "async_retry: the operation's completion signature must begin with "
                "stamina::error_code or std::exception_ptr");
};

template <class T>
struct awaitable_signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct awaitable_signature<void> {
  using type = void(std::exception_ptr);
};

template <class Op, class = void>
struct op_traits;

// op() returns asio::awaitable<T, E>: failures are exceptions.
template <class Awaitable, bool TakesContext>
struct awaitable_op_traits {
  using awaitable_type = Awaitable;
  using value_type = typename awaitable_parts<awaitable_type>::value_type;
  using awaitable_executor = typename awaitable_parts<awaitable_type>::executor_type;
  using signature = typename awaitable_signature<value_type>::type;
  static constexpr bool is_awaitable = true;
  static constexpr bool takes_context = TakesContext;
};
template <awaitable_op Op>
struct op_traits<Op> : awaitable_op_traits<std::invoke_result_t<Op&>, false> {};
template <context_awaitable_op Op>
struct op_traits<Op> : awaitable_op_traits<std::invoke_result_t<Op&, const attempt_context&>, true> {};

// op(token) starts an Asio operation; async_retry completes with its exact signature.
template <token_op Op>
struct op_traits<Op> {
  using signature = typename single_signature<std::invoke_result_t<Op&, signature_probe>>::type;
  static constexpr bool is_awaitable = false;
  static constexpr bool takes_context = false;
};
template <context_token_op Op>
struct op_traits<Op> {
  using signature = typename single_signature<std::invoke_result_t<Op&, const attempt_context&, signature_probe>>::type;
  static constexpr bool is_awaitable = false;
  static constexpr bool takes_context = true;
};

// Calls `op` for one attempt: with the attempt's context first when it takes one.
template <class Op, class... Args>
decltype(auto) call_op(Op& op, const attempt_context* ctx, Args&&... args) {
  if constexpr (op_traits<Op>::takes_context)
    return op(*ctx, std::forward<Args>(args)...);
  else
    return op(std::forward<Args>(args)...);
}

// What a driver keeps per attempt for an op: the context's scope, or nothing.
struct no_attempt_scope {};
template <class Op>
using attempt_scope_for = std::conditional_t<op_traits<Op>::takes_context, attempt_scope, no_attempt_scope>;

// The context of the attempt a driver is starting (null for an op without one).
template <class Protocol, class Stopwatch>
const attempt_context* attempt_context_of(Protocol& call, attempt_scope& scope, const Stopwatch& clock) {
  return &call.context(scope, clock.elapsed(), clock.origin());
}
// A driver that makes its machine only when needed: an op that takes a context has it made.
template <class Protocol, class Stopwatch>
requires requires(Protocol& call) { call.operator->(); }
const attempt_context* attempt_context_of(Protocol& call, attempt_scope& scope, const Stopwatch& clock) {
  return &call->context(scope, clock.elapsed(), clock.origin());
}
template <class Protocol, class Stopwatch>
const attempt_context* attempt_context_of(Protocol& /*call*/, no_attempt_scope& /*scope*/, const Stopwatch& /*clock*/) {
  return nullptr;
}

inline bool failed(const stamina::error_code& ec) noexcept { return code_failed(ec); }
inline bool failed(const std::exception_ptr& e) noexcept { return e != nullptr; }

// The first completion argument that stands for `ec` (operation_aborted, attempt_timeout).
template <class First>
First error_as(const stamina::error_code& ec) {
  if constexpr (std::is_same_v<First, std::exception_ptr>)
    return std::make_exception_ptr(stamina::system_error(ec));
  else
    return ec;
}

// The first completion argument that stands for an exception thrown by `op` itself when it
// was called: the exception for exception_ptr signatures; for error_code signatures the code
// of a system_error, otherwise stamina::error::op_threw.
template <class First>
First thrown_as(const std::exception_ptr& e) {
  if constexpr (std::is_same_v<First, std::exception_ptr>) {
    return e;
  } else {
    try {
      std::rethrow_exception(e);
    } catch (const stamina::system_error& se) {
      return se.code();
    } catch (...) {
      return make_error_code(error::op_threw);
    }
  }
}

// Every cancellation type that reaches a coroutine thread of an attempt's own goes on to the
// attempt: what the caller's filter let through (or the composed operation's), or a time limit's
// terminal, as an attempt awaited in the caller's own chain gets it. (A co_spawned thread keeps
// only terminal by default.)
template <class AwaitableExecutor>
stamina::net::awaitable<void, AwaitableExecutor> pass_every_cancellation() {
  co_await stamina::net::this_coro::reset_cancellation_state([](stamina::net::cancellation_type type) { return type; });
}

// An awaitable op's attempt, for the coroutine thread co_spawned for it (by either driver). Once
// the attempt has ended, the thread stops throwing on cancellation: Boost 1.81's co_spawn awaits
// one more post after a coroutine that never left its first executor turn, and a cancelled
// thread would throw there, out of io_context::run(), losing the attempt's outcome and the
// call's completion. Until then the op's own code runs with Asio's default.
template <class AwaitableExecutor, class T>
stamina::net::awaitable<T, AwaitableExecutor> awaitable_attempt(stamina::net::awaitable<T, AwaitableExecutor> attempt) {
  co_await pass_every_cancellation<AwaitableExecutor>();
  std::exception_ptr failed;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(attempt);
      co_await stamina::net::this_coro::throw_if_cancelled(false);
      co_return;
    } else {
      T value = co_await std::move(attempt);
      co_await stamina::net::this_coro::throw_if_cancelled(false);
      co_return std::move(value);
    }
  } catch (...) {
    failed = std::current_exception();  // no co_await in a handler: after it
  }
  co_await stamina::net::this_coro::throw_if_cancelled(false);
  std::rethrow_exception(failed);
}

// What a driver keeps, in memory the attempt's handler owns (the call's state, the caller's
// frame), for start_attempt: whether an attempt is being started, and where that start keeps a
// handler that comes back, in one word: the start's room (start_room, aligned) with the phase in
// its two low bits. One word, because the caller coroutine's frame has no room to spare, and not
// in the handler, because an attempt's operation keeps the handler and Asio's allocator recycles
// that operation's block for the backoff wait (16 B there showed in every pending call). A gate
// serves one attempt at a time, and a handler reads its gate's room as its own type: so the next
// start on a gate must come after the last attempt's handler was called (the retry drivers start
// it from that completion); the hedge, whose attempts overlap, keeps one gate per attempt.
struct start_gate {
  enum phase : unsigned { idle = 0, starting = 1, catching = 2, caught = 3 };
  std::atomic<char*> word{nullptr};  // the room's address plus the phase (null: idle)

  static unsigned phase_of(const char* word) noexcept {
    return static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(word) & 3U);
  }
  static char* room_of(char* word) noexcept { return word - phase_of(word); }
  bool starting_now() const noexcept { return phase_of(word.load(std::memory_order_acquire)) == starting; }
};

// Where start_attempt keeps the handler (`Stored`: the driver's, wrapped in gated_handler unless
// it watches its start itself): until the op takes it, and again if it comes back while the op
// is still being started, with its completion arguments when it was called.
template <class Stored, class First, class... Rest>
struct start_room {
  std::optional<Stored> parked;
  std::optional<std::tuple<First, std::decay_t<Rest>...>> args;
};

// Moves a handler that came back while its op is being started (and the arguments it was called
// with) into the start's room, unless the start ended meanwhile: then it returns false, and the
// caller goes on as after the start.
template <class First, class... Rest, class Stored, class... Args>
[[gnu::noinline]] bool hand_back_to_start(start_gate* gate, Stored& handler, Args&&... args) {
  char* word = gate->word.load(std::memory_order_acquire);
  if (start_gate::phase_of(word) != start_gate::starting) return false;
  char* const room_bytes = start_gate::room_of(word);
  if (!gate->word.compare_exchange_strong(word, room_bytes + start_gate::catching, std::memory_order_acq_rel))
    return false;                                                                   // the start ended meanwhile
  auto& room = *reinterpret_cast<start_room<Stored, First, Rest...>*>(room_bytes);  // alive: the start runs
  try {
    room.parked.emplace(std::move(handler));
    if constexpr (sizeof...(Args) > 0) room.args.emplace(std::forward<Args>(args)...);
  } catch (...) {
    // The start must not wait for ever: it delivers the attempt's failure if the handler was
    // kept, and nothing if it could not be moved (then it is lost, as Asio loses one whose move
    // throws).
    gate->word.store(room_bytes + start_gate::caught, std::memory_order_release);
    throw;
  }
  gate->word.store(room_bytes + start_gate::caught, std::memory_order_release);
  return true;
}

// The two tests every handler watched by a start_gate makes (gated_handler, and the caller
// coroutine's attempt_end_handler, which watches its own): called while its op is being started,
// it hands itself back with its arguments, and returns true if the start took it; destroyed
// uncalled meanwhile, it hands itself back without (a destructor does not throw: a handler whose
// move throws is lost).
template <class First, class... Rest, class Handler, class... Args>
[[gnu::always_inline]] inline bool handed_back_to_start(start_gate* gate, Handler& handler, Args&&... args) {
  if (!gate->starting_now()) [[likely]]
    return false;
  return hand_back_to_start<First, Rest...>(gate, handler, std::forward<Args>(args)...);
}
template <class First, class... Rest, class Handler>
[[gnu::noinline]] void hand_back_destroyed_handler(start_gate* gate, Handler& handler) noexcept {
  try {
    if (gate->starting_now()) hand_back_to_start<First, Rest...>(gate, handler);
  } catch (...) {
  }
}

// A handler that watches its start itself (the caller coroutine's attempt_end_handler, which
// reaches the gate through the outcome it points to), so that start_attempt adds nothing to it.
template <class Handler>
concept watches_its_start = Handler::watches_its_start;

// The deprecated handler hooks of the handler a wrapper holds (`handler`), forwarded as Asio's
// own wrappers forward them: a composed operation forwards its final handler's (a strand's
// wrap(), say). A wrapper derives from it; its friends are found through the wrapper's pointer.
template <class Wrapper>
struct forwards_handler_hooks {
  friend bool asio_handler_is_continuation(Wrapper* self) {
    using stamina::net::asio_handler_is_continuation;
    return asio_handler_is_continuation(std::addressof(self->handler));
  }
#if STAMINA_DETAIL_HANDLER_HOOKS
  friend stamina::net::asio_handler_allocate_is_deprecated asio_handler_allocate(std::size_t size, Wrapper* self) {
    return asio_compat::hook_alloc::allocate(size, self->handler);
  }
  friend stamina::net::asio_handler_deallocate_is_deprecated asio_handler_deallocate(void* pointer, std::size_t size,
                                                                                     Wrapper* self) {
    asio_compat::hook_alloc::deallocate(pointer, size, self->handler);
  }
  template <class Function>
  friend stamina::net::asio_handler_invoke_is_deprecated asio_handler_invoke(Function& function, Wrapper* self) {
    asio_compat::hook_invoke::invoke(function, self->handler);
  }
  template <class Function>
  friend stamina::net::asio_handler_invoke_is_deprecated asio_handler_invoke(const Function& function, Wrapper* self) {
    asio_compat::hook_invoke::invoke(function, self->handler);
  }
#endif
};

// An attempt's handler bound to a cancellation slot (the composed driver's, to its own or to a
// time limit's): Asio's cancellation_slot_binder, but forwarding the hooks, which Boost 1.81's
// binder does not. The other associations are the handler's.
template <class Handler>
struct slot_bound_handler : forwards_handler_hooks<slot_bound_handler<Handler>> {
  using cancellation_slot_type = stamina::net::cancellation_slot;

  slot_bound_handler(Handler&& h, cancellation_slot_type s) noexcept(std::is_nothrow_move_constructible_v<Handler>)
      : handler(std::move(h)), slot(s) {}

  template <class... Args>
  void operator()(Args&&... args) {
    std::move(handler)(std::forward<Args>(args)...);
  }
  cancellation_slot_type get_cancellation_slot() const noexcept { return slot; }

  Handler handler;
  cancellation_slot_type slot;
};

// A handler called with values bound to it, before (`prepend_to`) or after (`append_to`) the
// arguments of its call: what Asio's prepend and append make of a handler, with the hooks and
// every association forwarded. Boost 1.81's and Asio 1.22's declare their hooks for a wrapper
// without values only, so that a driver step through them left a strand's wrap().
template <bool Before, class Handler, class... Values>
struct values_bound_handler : forwards_handler_hooks<values_bound_handler<Before, Handler, Values...>> {
  template <class H, class... V>
  values_bound_handler(std::in_place_t /*made by its function*/, H&& h, V&&... v)
      : handler(std::forward<H>(h)), values(std::forward<V>(v)...) {}

  template <class... Args>
  void operator()(Args&&... args) {
    std::apply(
        [&](Values&... bound) {
          if constexpr (Before)
            std::move(handler)(std::move(bound)..., std::forward<Args>(args)...);
          else
            std::move(handler)(std::forward<Args>(args)..., std::move(bound)...);
        },
        values);
  }

  Handler handler;
  std::tuple<Values...> values;
};
template <class Handler, class... Values>
values_bound_handler<true, std::decay_t<Handler>, std::decay_t<Values>...> prepend_to(Handler&& h, Values&&... values) {
  return {std::in_place, std::forward<Handler>(h), std::forward<Values>(values)...};
}
template <class Handler, class... Values>
values_bound_handler<false, std::decay_t<Handler>, std::decay_t<Values>...> append_to(Handler&& h, Values&&... values) {
  return {std::in_place, std::forward<Handler>(h), std::forward<Values>(values)...};
}

// The handler an attempt is started with. The driver's handler owns the driver's memory (the
// call's state, a coroutine frame), so while the op is being started neither a call nor a
// destruction of it may run the driver's code or free that memory under the op, which may still
// be running, nor under start_attempt, which reads the gate afterwards. Either one, inline or on
// another thread, hands the handler back to the start instead, which posts it once the op has
// returned: called, with its arguments; destroyed uncalled (an initiation that threw after taking
// it), with the attempt's failure. After the start it is the driver's handler plus one test.
template <class Handler, class First, class... Rest>
class gated_handler : public forwards_handler_hooks<gated_handler<Handler, First, Rest...>> {
 public:
  gated_handler(Handler&& h, start_gate* gate) noexcept(std::is_nothrow_move_constructible_v<Handler>)
      : handler(std::move(h)), gate_(gate) {}
  // As the wrapped handler's (Asio's own handlers do not declare theirs noexcept).
  gated_handler(gated_handler&& other) noexcept(
      std::is_nothrow_move_constructible_v<Handler>)  // NOLINT(performance-noexcept-move-constructor)
      : handler(std::move(other.handler)), gate_(std::exchange(other.gate_, nullptr)) {}
  gated_handler(const gated_handler&) = delete;
  gated_handler& operator=(const gated_handler&) = delete;
  gated_handler& operator=(gated_handler&&) = delete;
  // Asio moves a handler several times per operation: a moved-from one's destructor is one
  // inline test.
  ~gated_handler() {
    if (gate_ != nullptr) [[unlikely]]
      hand_back_destroyed_handler<First, Rest...>(gate_, *this);
  }

  template <class... Args>
  void operator()(Args&&... args) {
    start_gate* gate = std::exchange(gate_, nullptr);
    if (gate != nullptr && handed_back_to_start<First, Rest...>(gate, *this, std::forward<Args>(args)...)) return;
    std::move(handler)(std::forward<Args>(args)...);
  }

  // The driver's handler, no longer watched by the gate (start_attempt posts it).
  Handler release() && {
    gate_ = nullptr;
    return std::move(handler);
  }

  Handler handler;

 private:
  start_gate* gate_;  // null once called, moved from or released
};

// A handler wrapping another (`handler`) shows the wrapped one's associations.
template <template <class, class> class Associator, class Outer, class Handler, class Default>
struct inner_handler_associator : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(const Outer& h) noexcept {
    return Associator<Handler, Default>::get(h.handler);
  }
  static auto get(const Outer& h, const Default& d) noexcept
      -> decltype(Associator<Handler, Default>::get(h.handler, d)) {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};

}  // namespace detail
STAMINA_NAMESPACE_END

// Every association but the slot (a member of its own, which Asio asks first).
template <template <class, class> class Associator, class Handler, class Default>
struct stamina::net::associator<Associator, stamina::detail::slot_bound_handler<Handler>, Default>
    : stamina::detail::inner_handler_associator<Associator, stamina::detail::slot_bound_handler<Handler>, Handler,
                                                Default> {};
template <template <class, class> class Associator, bool Before, class Handler, class... Values, class Default>
struct stamina::net::associator<Associator, stamina::detail::values_bound_handler<Before, Handler, Values...>, Default>
    : stamina::detail::inner_handler_associator<
          Associator, stamina::detail::values_bound_handler<Before, Handler, Values...>, Handler, Default> {};
template <template <class, class> class Associator, class Handler, class First, class... Rest, class Default>
struct stamina::net::associator<Associator, stamina::detail::gated_handler<Handler, First, Rest...>, Default>
    : stamina::detail::inner_handler_associator<Associator, stamina::detail::gated_handler<Handler, First, Rest...>,
                                                Handler, Default> {};

STAMINA_NAMESPACE_BEGIN
namespace detail {

// Starts one attempt of `op` that completes into `handler`. Whatever `op` does, the handler
// is called exactly once and never inside this function: if `op` throws before starting its
// operation, or returns without starting one (for op(): an awaitable that holds no coroutine),
// or its initiation destroys the handler uncalled, the handler is posted to `ex` with a failure
// (the exception as above; invalid_argument for an operation never started); a completion that
// comes while `op` is being started (inline, or on another thread) is posted once it has
// returned. `gate` is the driver's, in memory the handler owns; nothing here touches that memory
// once the handler may have run.
template <class Op, class Executor, class Handler, class First, class... Rest>
void start_attempt(start_gate& gate, Op& op, const Executor& ex, Handler&& handler, void (*)(First, Rest...),
                   const attempt_context* ctx = nullptr) {
  using handler_type = std::decay_t<Handler>;
  constexpr bool watched_by_itself = watches_its_start<handler_type>;
  using gated_type = std::conditional_t<watched_by_itself, handler_type, gated_handler<handler_type, First, Rest...>>;
  start_room<gated_type, First, Rest...> room;
  if constexpr (watched_by_itself)
    room.parked.emplace(std::forward<Handler>(handler));
  else
    room.parked.emplace(std::forward<Handler>(handler), &gate);
  // The handler to post: the driver's (a watching handler posted as it is: the gate is idle then).
  const auto posted = [&room]() -> handler_type {
    if constexpr (watched_by_itself)
      return std::move(*room.parked);
    else
      return std::move(*room.parked).release();
  };
  static_assert(alignof(decltype(room)) > start_gate::caught, "the room's address leaves the phase's bits free");
  char* const started = reinterpret_cast<char*>(&room) + start_gate::starting;
  gate.word.store(started, std::memory_order_release);
  std::exception_ptr thrown;
  try {
    if constexpr (op_traits<Op>::is_awaitable) {
      auto attempt = call_op(op, ctx);
      if (attempt.valid()) {  // an awaitable without a coroutine started nothing
        // Out of the room first: a completion on another thread may hand it back into the room
        // before co_spawn returns.
        gated_type spawned(std::move(*room.parked));
        room.parked.reset();
        stamina::net::co_spawn(ex, awaitable_attempt(std::move(attempt)), std::move(spawned));
      }
    } else {
      call_op(op, ctx, attempt_token<gated_type>(&room.parked));
    }
  } catch (...) {
    thrown = std::current_exception();
  }
  char* expected = started;
  if (gate.word.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel)) {
    // Started, and nothing came back: its completion will come (an exception thrown after the
    // operation started is the op's own business).
    if (!room.parked) return;
  } else {
    while (start_gate::phase_of(gate.word.load(std::memory_order_acquire)) != start_gate::caught)
      std::this_thread::yield();
    if (!room.parked) return;  // it could not be moved back: lost (see hand_back_to_start), and the gate with it
    gate.word.store(nullptr, std::memory_order_relaxed);  // the handler is in the room: the gate lives
    if (room.args) {
      std::apply([&](auto&&... values) { stamina::net::post(ex, detail::append_to(posted(), std::move(values)...)); },
                 std::move(*room.args));
      return;
    }
  }
  First failure_value = thrown ? thrown_as<First>(thrown) : error_as<First>(stamina::net::error::invalid_argument);
  stamina::net::post(ex, detail::append_to(posted(), std::move(failure_value), std::decay_t<Rest>{}...));
}

// The failure a call that gives up with these completion arguments would deliver: the
// attempt's, or (a result `on_result` retried) `retried_result`.
template <class First>
failure delivered_failure(const First& first) {
  return failed(first) ? failure(first) : failure(make_error_code(error::retried_result));
}

// What `co_await` of a call with completion values `Rest...` returns: nothing, the value, or a
// tuple of them (use_awaitable's rule; a fallback returns the same).
template <class... Rest>
struct awaited_values {
  using type = std::tuple<Rest...>;
};
template <>
struct awaited_values<> {
  using type = void;
};
template <class Value>
struct awaited_values<Value> {
  using type = Value;
};

// The completion arguments a fallback stands in with: success and its values; if it throws,
// the exception as the call's failure (as `op` throwing when called is).
template <class First, class... Rest, class Fn>
std::tuple<First, Rest...> fallback_arguments(fallback<Fn>& fb, const give_up_info& info) {
  try {
    using values = typename awaited_values<Rest...>::type;
    if constexpr (sizeof...(Rest) == 0) {
      fb.template substitute<void>(info);
      return std::tuple<First>(First());
    } else if constexpr (sizeof...(Rest) == 1) {
      return std::tuple<First, Rest...>(First(), fb.template substitute<values>(info));
    } else {
      return std::tuple_cat(std::tuple<First>(First()), fb.template substitute<values>(info));
    }
  } catch (...) {
    return std::tuple<First, Rest...>(thrown_as<First>(std::current_exception()), Rest()...);
  }
}

// The executor of an executor or execution context argument.
template <class T>
decltype(auto) executor_of(T& ex_or_context) {
  if constexpr (std::is_convertible_v<T&, stamina::net::execution_context&>)
    return ex_or_context.get_executor();
  else
    return (ex_or_context);
}

template <class Signature>
struct rest_default_constructible;
template <class First, class... Rest>
struct rest_default_constructible<void(First, Rest...)>
    : std::bool_constant<(std::is_default_constructible_v<Rest> && ...)> {};

// The on_result check of an async call: its values are the completion arguments after the first.
template <class First, class... Rest>
void check_values_of(const result_classifier* judge, void (*)(First, Rest...)) {
  check_result_values<Rest...>(judge);
}

// The success values of an op: its completion arguments after the first, decayed.
template <class Signature>
struct values_after_first;
template <class First, class... Rest>
struct values_after_first<void(First, Rest...)> {
  using type = std::tuple<std::decay_t<Rest>...>;
};
template <class Op>
using op_success_values = typename values_after_first<typename op_traits<Op>::signature>::type;

// The one initiation of the composed-operation drivers (async_retry's retry_op, async_hedge's
// hedge_op): the state comes from the handler's allocator (Asio's recycling allocator unless the
// handler names one: a call then costs no malloc in steady state), then async_compose.
template <template <class, class, class, class, class> class Impl, class Clock, class Executor, class Signature>
struct initiate_composed {
  Executor ex;
  caller where;

  template <class Handler, class Policy, class Op>
  void operator()(Handler&& handler, Policy policy, Op op) const {
    auto alloc = stamina::net::get_associated_allocator(handler, stamina::net::recycling_allocator<void>());
    using impl = Impl<Clock, Executor, Op, decltype(alloc), Signature>;
    stamina::net::async_compose<Handler, Signature>(impl(ex, std::move(policy), std::move(op), where, alloc), handler,
                                                    ex);
  }
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
