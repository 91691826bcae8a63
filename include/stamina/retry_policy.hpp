#ifndef STAMINA_RETRY_POLICY_HPP
#define STAMINA_RETRY_POLICY_HPP

#include <stamina/adaptive_throttle.hpp>
#include <stamina/attempt_context.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/detail/call_site.hpp>
#include <stamina/detail/call_state.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/jitter.hpp>
#include <stamina/result_typed.hpp>
#include <stamina/retry_on.hpp>

#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

STAMINA_NAMESPACE_BEGIN

class retry_budget;

namespace detail {
// What a call must do before its first attempt, worked out when a policy's settings change
// (retry_policy::shape): the plain call tests one byte of the policy's values instead of four
// settings and a flag behind the shared block's pointer.
namespace policy_shape {
inline constexpr std::uint8_t not_plain = 1;  // an attempt_timeout, an inherited deadline, or !spec.plain
inline constexpr std::uint8_t timed = 2;      // a timeout or an inherited deadline (a clock unless testing)
inline constexpr std::uint8_t clocked = 4;    // an attempt_timeout or reset_after (a clock whenever active)
}  // namespace policy_shape
}  // namespace detail

/// How a call is retried. A value type: every setter validates its argument, so an invalid
/// policy cannot exist. Setters return the policy for chaining (an lvalue for a named policy,
/// an rvalue for a temporary, so that `backoff b(retry_policy(on).attempts(3));`, which would
/// dangle, does not compile); each getter has the setter's name and no argument.
///
/// It is a class and not an aggregate on purpose: g++ 12 destroys aggregate temporaries
/// with non-trivial members twice when they are built inside a `co_await` expression.
class retry_policy {
 public:
  /// The only required part: which failures are retried. Implicit, so a `retry_on` (e.g.
  /// `stamina::on_error(...)`) can stand wherever a policy with all defaults is expected.
  /// The policy is named after the place it is created (`"client.cpp:42"`: the file's name
  /// and the line) until `name(...)` says otherwise, so unnamed call sites neither log
  /// `callable=""` nor share one metrics series or default throttle. `file` and `line` are
  /// filled in by the compiler; do not pass them.
  retry_policy(retry_on on,  // NOLINT(google-explicit-constructor): deliberate, see above
               const char* file = __builtin_FILE(), unsigned line = __builtin_LINE())
      : shared_(make_parts(std::move(on), file, line)) {
    reshape();
  }

  // --- setters: throw std::invalid_argument naming the field and the value ---------------
  /// Which failures are retried.
  retry_policy& on(retry_on value) &;
  /// Which failures are retried.
  retry_policy&& on(retry_on value) && { return std::move(on(std::move(value))); }
  /// Retry a *successful* result too: `pred` takes the operation's success values (the
  /// return value of `retry`'s function; the `T` of `awaitable<T>`; the completion arguments
  /// after the first for `op(token)`) by value or const reference, and returns `bool`,
  /// `stamina::decision` or a chrono duration, like a `retry_on` predicate. When the call
  /// gives up on such a result, the result is delivered as the success it was. Its parameter
  /// types must be fixed (no `auto`); they are checked against the operation's values before
  /// the first attempt (`std::invalid_argument` naming both when they differ).
  template <class F>
  retry_policy& on_result(F pred) & {
    set_on_result(detail::make_result_classifier(std::move(pred)));
    return *this;
  }
  /// Retry a successful result (see above).
  /// On a temporary policy, the result keeps the predicate's types for a compile-time check
  /// (see `result_typed`).
  template <class F>
  result_typed<retry_policy, typename detail::result_values_of<F>::type> on_result(F pred) && {
    on_result(std::move(pred));
    return result_typed<retry_policy, typename detail::result_values_of<F>::type>(std::move(*this));
  }
  /// No retry on results (the default).
  retry_policy& on_result(std::nullptr_t) &;
  /// No retry on results (the default).
  retry_policy&& on_result(std::nullptr_t) && { return std::move(on_result(nullptr)); }
  /// Total attempts including the first; `nullopt` = unlimited; 0 is invalid.
  retry_policy& attempts(std::optional<unsigned> value) &;
  /// Total attempts including the first; `nullopt` = unlimited; 0 is invalid.
  retry_policy&& attempts(std::optional<unsigned> value) && { return std::move(attempts(value)); }
  /// Integer overload so that `attempts(-1)` is rejected instead of wrapping around;
  /// values above `unsigned`'s range saturate.
  template <std::integral I>
  requires(!std::same_as<I, bool>) retry_policy& attempts(I value) & {
    if (value <= 0) throw_invalid_attempts(static_cast<long long>(value));
    if (static_cast<unsigned long long>(value) > std::numeric_limits<unsigned>::max())
      return attempts(std::optional<unsigned>(std::numeric_limits<unsigned>::max()));
    return attempts(std::optional<unsigned>(static_cast<unsigned>(value)));
  }
  /// Integer overload (see above).
  template <std::integral I>
  requires(!std::same_as<I, bool>) retry_policy && attempts(I value) && {
    return std::move(attempts(value));
  }
  /// Total budget of the whole call, from the start of the first attempt; `nullopt` =
  /// unlimited; must be > 0.
  retry_policy& timeout(std::optional<duration> value) &;
  /// Total budget of the whole call (see above).
  retry_policy&& timeout(std::optional<duration> value) && { return std::move(timeout(value)); }
  /// Base of the first wait; >= 0 and finite (may exceed `wait_max`: then capped).
  retry_policy& wait_initial(duration value) &;
  /// Base of the first wait (see above).
  retry_policy&& wait_initial(duration value) && { return std::move(wait_initial(value)); }
  /// Cap of the exponential part; >= 0 and finite.
  retry_policy& wait_max(duration value) &;
  /// Cap of the exponential part (see above).
  retry_policy&& wait_max(duration value) && { return std::move(wait_max(value)); }
  /// Maximum random addition (additive jitter); >= 0 and finite.
  retry_policy& wait_jitter(duration value) &;
  /// Maximum random addition (see above).
  retry_policy&& wait_jitter(duration value) && { return std::move(wait_jitter(value)); }
  /// Growth factor of the exponential part; >= 1 and finite.
  retry_policy& wait_exp_base(double value) &;
  /// Growth factor of the exponential part (see above).
  retry_policy&& wait_exp_base(double value) && { return std::move(wait_exp_base(value)); }
  /// The jitter strategy.
  retry_policy& jitter(stamina::jitter value) & noexcept {
    values_.jitter = value;
    return *this;
  }
  /// The jitter strategy.
  retry_policy&& jitter(stamina::jitter value) && noexcept { return std::move(jitter(value)); }
  /// Async only: an attempt still running after this long is cancelled and counts as a
  /// retryable failure (`stamina::error::attempt_timeout`). The blocking `retry` and
  /// `retry_context` cannot interrupt an attempt and reject a policy that has one
  /// (`std::invalid_argument`).
  retry_policy& attempt_timeout(std::optional<duration> value) &;
  /// Async only: a time limit per attempt (see above).
  retry_policy&& attempt_timeout(std::optional<duration> value) && { return std::move(attempt_timeout(value)); }
  /// The longest wait a server may ask for (`decision::retry_after`, or a duration returned
  /// by a classifier, e.g. from `Retry-After`): longer ones are cut to it, so a hostile or
  /// misconfigured server cannot park the call. Default 5 minutes; >= 0 and finite;
  /// `std::nullopt` = no cap (then only the deadline bounds a server-given wait).
  retry_policy& max_server_wait(std::optional<duration> value) &;
  /// The longest server-given wait (see above).
  retry_policy&& max_server_wait(std::optional<duration> value) && { return std::move(max_server_wait(value)); }
  /// A reconnect loop's schedule restart: an attempt that ran at least this long before it
  /// failed starts the call afresh — the next wait is the first wait again, and `attempts` and
  /// `timeout` count from that failure — as gRPC resets its connection backoff once a connection
  /// was up. Meant for "retry around a session" (`retry(policy, stop, [&] { connect();
  /// serve_until_drop(); })`), whose waits would otherwise grow across healthy sessions. > 0 and
  /// finite; nullopt = never (the default).
  retry_policy& reset_after(std::optional<duration> value) &;
  /// The schedule restart (see above).
  retry_policy&& reset_after(std::optional<duration> value) && { return std::move(reset_after(value)); }
  /// For interactive paths: an attempt the throttle would hold back ends the call at once,
  /// instead of waiting (paced) until the throttle admits it or the deadline passes. The call
  /// delivers the dependency's last failure if it had one, else `stamina::error::throttled`;
  /// the give-up reason is `throttled`. Off by default (batch work waits).
  retry_policy& fail_fast(bool value = true) & noexcept {
    values_.fail_fast = value;
    return *this;
  }
  /// Fail fast instead of waiting (see above).
  retry_policy&& fail_fast(bool value = true) && noexcept { return std::move(fail_fast(value)); }
  /// An absolute deadline inherited from the caller, e.g. an incoming request's remaining time
  /// (`steady_clock::now() + *parse_grpc_timeout(header)`). A call under this policy ends by
  /// it: its `timeout` is clamped to it, every attempt of `async_retry` is cut at it (as by
  /// `attempt_timeout`; the attempts of `retry` and of a `retry_context` cannot be cut: their
  /// `attempt_context::remaining()` says how long they have), no attempt starts once it has
  /// passed (the public `backoff`, which is wait arithmetic only, does not read it), and a call
  /// that could send
  /// none fails with `stamina::error::deadline_exceeded` (reason `deadline`). On the call's
  /// clock: `steady_clock`, or the test clock a call is given. Only ever moves earlier: a later
  /// deadline than the one set is ignored. Meant to be set on a copy made for one request (a
  /// copy costs one reference count). Throws `std::invalid_argument` for a NaN time.
  template <class Clock, class Dur>
  retry_policy& deadline(std::chrono::time_point<Clock, Dur> at) & {
    set_deadline(detail::deadline_seconds(at));
    return *this;
  }
  /// The inherited deadline (see above).
  template <class Clock, class Dur>
  retry_policy&& deadline(std::chrono::time_point<Clock, Dur> at) && {
    return std::move(deadline(at));
  }
  /// No inherited deadline (the default).
  retry_policy& deadline(std::nullopt_t) & noexcept {
    values_.deadline = std::numeric_limits<double>::infinity();
    reshape();
    return *this;
  }
  /// No inherited deadline (see above).
  retry_policy&& deadline(std::nullopt_t none) && noexcept { return std::move(deadline(none)); }
  /// A call made inside an attempt of another stamina call (`outer`: that attempt's context):
  /// it inherits the outer call's deadline (as `deadline` above), and the outer call will not
  /// retry that attempt's failure: the innermost call, the one nearest the failing dependency,
  /// is the one that retries (docs/layered-retries.md). Call it during the outer attempt.
  retry_policy& within(const attempt_context& outer) &;
  /// Inside another call's attempt (see above).
  retry_policy&& within(const attempt_context& outer) && { return std::move(within(outer)); }
  /// The name reported to hooks, logs and metrics, and the key of the default throttle.
  retry_policy& name(std::string value) &;
  /// The name (see above).
  retry_policy&& name(std::string value) && { return std::move(name(std::move(value))); }
  /// A token bucket shared between calls; null = no budget.
  retry_policy& budget(std::shared_ptr<retry_budget> value) &;
  /// A token bucket shared between calls; null = no budget.
  retry_policy&& budget(std::shared_ptr<retry_budget> value) && { return std::move(budget(std::move(value))); }
  /// Client-side throttling shared between calls to one dependency. Without this setter the
  /// policy uses `stamina::default_throttle(name())`; null = no throttling at all.
  retry_policy& throttle(std::shared_ptr<adaptive_throttle> value) &;
  /// Client-side throttling (see above).
  retry_policy&& throttle(std::shared_ptr<adaptive_throttle> value) && { return std::move(throttle(std::move(value))); }
  /// A circuit breaker shared between calls to one dependency (or one key of it, from
  /// `circuit_breakers`): while it is open, calls fail at once and send nothing. A policy with
  /// a breaker has no default throttle (the breaker decides when the dependency is down; an
  /// explicit `throttle(...)` still paces overload). Null = none (default).
  retry_policy& breaker(std::shared_ptr<circuit_breaker> value) &;
  /// A circuit breaker (see above).
  retry_policy&& breaker(std::shared_ptr<circuit_breaker> value) && { return std::move(breaker(std::move(value))); }
  /// An adaptive limit on attempts in flight to the dependency, shared by the calls to it: an
  /// attempt over the limit waits for a place (in arrival order, at most until the call's
  /// deadline; `fail_fast`: fails at once). Null = none (default).
  retry_policy& limit(std::shared_ptr<concurrency_limit> value) &;
  /// An adaptive concurrency limit (see above).
  retry_policy&& limit(std::shared_ptr<concurrency_limit> value) && { return std::move(limit(std::move(value))); }
  /// A hook for this policy's calls only, called after the global on-retry hooks for every
  /// retry scheduled (same rules: a returned object lives until the next attempt starts; a
  /// hook that throws is reported on standard error and ignored). Replaces an earlier one.
  retry_policy& on_retry(instrumentation::on_retry_hook hook) &;
  /// A hook for this policy's calls only (see above).
  retry_policy&& on_retry(instrumentation::on_retry_hook hook) && { return std::move(on_retry(std::move(hook))); }
  /// A hook for this policy's calls only, called after the global on-give-up hooks when a
  /// call gives up: the way for a caller to learn its own call's reason and attempts without
  /// global state. Replaces an earlier one; an empty function removes it.
  retry_policy& on_give_up(instrumentation::on_give_up_hook hook) &;
  /// A hook for this policy's calls only (see above).
  retry_policy&& on_give_up(instrumentation::on_give_up_hook hook) && { return std::move(on_give_up(std::move(hook))); }

  // --- getters -------------------------------------------------------------------------
  /// Which failures are retried.
  const retry_on& on() const noexcept { return shared_->on; }
  /// Whether `on_result` was set.
  bool has_on_result() const noexcept { return shared_->on_result != nullptr; }
  /// Total attempts (default 10); nullopt = unlimited.
  std::optional<unsigned> attempts() const noexcept {
    return values_.attempts != 0 ? std::optional<unsigned>(values_.attempts) : std::nullopt;
  }
  /// Budget of the whole call (default 45 s); nullopt = unlimited.
  std::optional<duration> timeout() const noexcept { return unless_none(values_.timeout); }
  /// Base of the first wait (default 100 ms).
  duration wait_initial() const noexcept { return values_.wait_initial; }
  /// Cap of the exponential part (default 5 s).
  duration wait_max() const noexcept { return values_.wait_max; }
  /// Maximum random addition (default 1 s).
  duration wait_jitter() const noexcept { return values_.wait_jitter; }
  /// Growth factor (default 2).
  double wait_exp_base() const noexcept { return values_.wait_exp_base; }
  /// The jitter strategy (default additive).
  stamina::jitter jitter() const noexcept { return values_.jitter; }
  /// Per-attempt time limit of async calls; nullopt = none (default).
  std::optional<duration> attempt_timeout() const noexcept { return unless_none(values_.attempt_timeout); }
  /// The schedule restart after a long healthy attempt; nullopt = never (default).
  std::optional<duration> reset_after() const noexcept { return unless_none(values_.reset_after); }
  /// Whether a held-back attempt ends the call at once (default false).
  bool fail_fast() const noexcept { return values_.fail_fast; }
  /// The inherited deadline, in seconds since the epoch of the call's clock; nullopt = none.
  std::optional<double> deadline_since_epoch() const noexcept {
    return values_.deadline < std::numeric_limits<double>::infinity() ? std::optional<double>(values_.deadline)
                                                                      : std::nullopt;
  }
  /// The longest server-given wait (default 5 minutes); nullopt = uncapped.
  std::optional<duration> max_server_wait() const noexcept { return shared_->max_server_wait; }
  /// The name reported to hooks and metrics (default: where the policy was created).
  const std::string& name() const noexcept { return shared_->named ? shared_->name : shared_->site->name; }
  /// The shared retry budget; null = none (default).
  const std::shared_ptr<retry_budget>& budget() const noexcept { return shared_->budget; }
  /// The throttle given to `throttle(...)`; null when none was given (then the name's default
  /// throttle applies, `stamina::default_throttle(name())`) or when throttling was turned off.
  const std::shared_ptr<adaptive_throttle>& throttle() const noexcept { return shared_->throttle; }
  /// The circuit breaker; null = none (default).
  const std::shared_ptr<circuit_breaker>& breaker() const noexcept { return shared_->breaker; }
  /// The concurrency limit; null = none (default).
  const std::shared_ptr<concurrency_limit>& limit() const noexcept { return shared_->limit; }
  /// This policy's own on-retry hook, or null.
  const instrumentation::on_retry_hook* own_on_retry() const noexcept {
    return shared_->own_on_retry ? &*shared_->own_on_retry : nullptr;
  }
  /// This policy's own on-give-up hook, or null.
  const instrumentation::on_give_up_hook* own_on_give_up() const noexcept {
    return shared_->own_on_give_up ? &shared_->own_on_give_up : nullptr;
  }

  /// @cond
  // What a call under this policy needs to know (call_state.hpp). An unnamed policy's call is
  // named after `caller`, the call's place in the code, when given; else after where the policy
  // was made.
  detail::call_state_spec const& call_spec() const noexcept { return shared_->spec; }
  // Used by the drivers: the erased on_result predicate, or null.
  const detail::result_classifier* result_classifier() const noexcept { return shared_->on_result.get(); }
  // detail::policy_shape's bits for the current settings.
  std::uint8_t shape() const noexcept { return values_.shape; }
  /// @endcond

 private:
  [[noreturn]] static void throw_invalid_attempts(long long value);
  void set_deadline(double seconds_since_epoch);
  void set_on_result(std::shared_ptr<const detail::result_classifier> value);

  // The parts that are not plain numbers: one immutable block shared by copies (a copy costs
  // one reference count), replaced by setters. A policy made from a predicate without state
  // (e.g. on_exception<E>()) and nothing else shares a block interned for its call site and
  // predicate, never destroyed and never counted: making one per call allocates nothing.
  struct shared_parts {
    shared_parts(retry_on o, const detail::call_site* s) : on(std::move(o)), site(s) { refresh(); }
    retry_on on;
    const detail::call_site* site;  // where the policy was made: its default name
    bool named = false;             // name(...) was called
    std::string name;
    std::shared_ptr<retry_budget> budget;
    std::shared_ptr<adaptive_throttle> throttle;
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<concurrency_limit> limit;
    std::shared_ptr<const detail::result_classifier> on_result;
    std::optional<instrumentation::on_retry_hook> own_on_retry;
    instrumentation::on_give_up_hook own_on_give_up;
    std::optional<duration> max_server_wait{duration(300.0)};
    mutable detail::throttle_slot name_throttle;  // default_throttle(name), for a named policy
    bool throttle_set = false;                    // throttle(...) was called
    detail::call_state_spec spec;                 // what a call needs, pointing into this block
    // Points `spec` into this block: after it was made, and after a copy was changed.
    void refresh() noexcept {
      spec.on = &on;
      spec.on_result = on_result.get();
      spec.explicit_name = named ? &name : nullptr;
      spec.name_throttle = named ? &name_throttle : nullptr;
      spec.site = site;
      spec.own_throttle = throttle.get();
      spec.own_throttle_set = throttle_set;
      spec.budget = budget.get();
      spec.breaker = breaker.get();
      spec.limit = limit.get();
      spec.own_on_retry = own_on_retry ? &*own_on_retry : nullptr;
      spec.own_on_give_up = own_on_give_up ? &own_on_give_up : nullptr;
      spec.made_plain();
    }
  };
  template <class Change>
  void change_shared(Change&& change);
  static std::shared_ptr<const shared_parts> make_parts(retry_on&& on, const char* file, unsigned line);
  // make_parts but for its per-thread cache's hit: the table's lookup, or a block of its own.
  [[gnu::noinline]] static std::shared_ptr<const shared_parts> make_parts_slowly(retry_on&& on, const char* file,
                                                                                 unsigned line, void* cache_entry);
  // The process-wide table of interned blocks (core.cpp), made when the library is loaded.
  struct interned_table;
  static interned_table& interned_parts();
  static const bool interned_made_at_load_;

  // The optional settings are stored without std::optional's flag (a policy is copied into
  // every call's coroutine frame and operation state): a duration of 0 (never valid: they must be
  // > 0) and 0 attempts (never valid) stand for nullopt.
  static std::optional<duration> unless_none(duration d) noexcept {
    // +0.0 is all zero bits: an integer test, cheaper than a floating-point compare.
    return std::bit_cast<std::uint64_t>(d.count()) != 0 ? std::optional<duration>(d) : std::nullopt;
  }
  static duration or_none(const std::optional<duration>& d) noexcept { return d.value_or(duration(0)); }
  // Works out `values_.shape` again: after any setter of the settings it reads. A moved-from
  // policy (no block) still takes the setters of plain values, as it did before the byte existed.
  void reshape() noexcept {
    namespace bit = detail::policy_shape;
    const bool inherited = deadline_since_epoch().has_value();
    const bool attempt_limit = attempt_timeout().has_value();
    const bool plain = shared_ != nullptr && shared_->spec.plain;
    values_.shape = static_cast<std::uint8_t>((!plain || attempt_limit || inherited ? bit::not_plain : 0) |
                                              (timeout() || inherited ? bit::timed : 0) |
                                              (attempt_limit || reset_after() ? bit::clocked : 0));
  }

  // The settings, plain values in one trivially copyable block: a policy is copied into every
  // call (its coroutine frame, its operation state), and g++ copies a block as a block (23
  // fewer instructions per co_await call, counted by callgrind, than the fields one by one).
  struct values {
    duration timeout{45.0};  // 0: none
    duration wait_initial{0.1};
    duration wait_max{5.0};
    duration wait_jitter{1.0};
    double wait_exp_base{2.0};
    double deadline = std::numeric_limits<double>::infinity();  // since the call clock's epoch
    duration attempt_timeout{0};                                // 0: none
    duration reset_after{0};                                    // 0: never
    unsigned attempts = 10;                                     // 0: unlimited
    stamina::jitter jitter{stamina::jitter::additive};
    bool fail_fast = false;
    std::uint8_t shape = 0;  // detail::policy_shape, from the fields above (reshape)
  };

  std::shared_ptr<const shared_parts> shared_;  // never null
  values values_;
};

STAMINA_NAMESPACE_END

#endif
