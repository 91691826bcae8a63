#ifndef STAMINA_INSTRUMENTATION_HPP
#define STAMINA_INSTRUMENTATION_HPP

#include <stamina/circuit_breaker.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>
#include <stamina/failure.hpp>
#include <stamina/give_up_reason.hpp>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

STAMINA_NAMESPACE_BEGIN

/// What an on-retry hook is told: a retry has been scheduled and its wait is about to begin.
/// A value: a copy kept after the hook returns stays valid (e.g. to assert on it in a test).
struct retry_details {
  std::string name;                          ///< the call's name (the policy's, or where the call is made)
  unsigned retry_num = 0;                    ///< the attempt that just failed, from 1
  duration wait_for{0};                      ///< the wait about to begin
  duration waited_so_far{0};                 ///< sum of the waits scheduled before this one
  failure caused_by{stamina::error_code()};  ///< the failure that caused this retry
  std::uint64_t call_id = 0;                 ///< the call's id in this process: tells concurrent calls apart
};

/// What an on-give-up hook is told: the call ends with its last failure. A value, like
/// `retry_details`.
struct give_up_details {
  std::string name;                                            ///< the call's name
  give_up_reason reason = give_up_reason::attempts_exhausted;  ///< why the call stopped retrying
  unsigned attempts = 0;                                       ///< attempts sent, including the last one
  duration waited_so_far{0};                                   ///< sum of all waits scheduled
  failure caused_by{stamina::error_code()};                    ///< the last failure, delivered to the caller
  unsigned held_back = 0;     ///< attempts a throttle held back (never sent; not in `attempts`)
  std::uint64_t call_id = 0;  ///< the call's id in this process (as in its retry_details)
};

/// What happened to one attempt of a hedged call (`hedging_policy::on_hedge`).
enum class hedge_event_kind : unsigned char {
  started,        ///< a hedge (an attempt after the first) was started
  won,            ///< a hedge succeeded first: its result is the call's
  cancelled,      ///< an attempt still in flight was cancelled (another won, or the call ended)
  budget_denied,  ///< a hedge was due but the budget had no token left, so it was not started
  breaker_open,   ///< a hedge was due but the policy's circuit breaker was open, so it was not started
  limit_full,     ///< a hedge was due but the policy's concurrency limit had no free place, so it was not
                  ///< started (reported once per hedge; it is tried again after a longer delay)
};

/// `"started"`, `"won"`, `"cancelled"`, `"budget_denied"`, `"breaker_open"` or `"limit_full"`.
const char* to_string(hedge_event_kind kind) noexcept;

/// One hedging event, handed to the policy's `on_hedge` hook. A value: it may be kept.
struct hedge_event {
  std::string name;       ///< the call's name
  hedge_event_kind kind;  ///< what happened
  unsigned attempt;       ///< which attempt, from 1 (the first, unhedged one)
  duration elapsed;       ///< since the call started
};

namespace instrumentation {

/// A hook called for every scheduled retry: any callable taking `const retry_details&`.
/// If it returns an object (e.g. a tracing span), the library keeps that object alive from
/// the moment the retry is scheduled until the next attempt starts or the call ends.
class on_retry_hook {
 public:
  /// Wraps any callable taking `const retry_details&`.
  template <class F>
  requires(!std::same_as<std::decay_t<F>, on_retry_hook> &&
           std::is_invocable_v<const std::decay_t<F>&, const retry_details&>)
      on_retry_hook(F&& f)  // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload): constrained
      : call_([g = std::decay_t<F>(std::forward<F>(f))](const retry_details& d) -> std::shared_ptr<void> {
          using result = std::invoke_result_t<const std::decay_t<F>&, const retry_details&>;
          if constexpr (std::is_void_v<result>) {
            g(d);
            return nullptr;
          } else {
            return std::make_shared<std::decay_t<result>>(g(d));
          }
        }) {}

  /// Runs the hook; returns the scope object it created, if any.
  std::shared_ptr<void> operator()(const retry_details& d) const { return call_(d); }

 private:
  std::function<std::shared_ptr<void>(const retry_details&)> call_;
};

/// A hook called once when a call gives up (any reason but success).
using on_give_up_hook = std::function<void(const give_up_details&)>;

/// Replaces the on-retry hooks (thread-safe; calls in flight keep the snapshot they read).
/// An empty vector disables on-retry instrumentation.
void set_on_retry_hooks(std::vector<on_retry_hook> hooks);
/// Back to the defaults: the logging hook (standard error) and the default metrics.
void reset_on_retry_hooks();
/// The on-retry hooks now installed.
std::vector<on_retry_hook> get_on_retry_hooks();

/// Replaces the on-give-up hooks, like set_on_retry_hooks.
void set_on_give_up_hooks(std::vector<on_give_up_hook> hooks);
/// Back to the defaults: the give-up logging hook (standard error; only calls that retried)
/// and the default metrics.
void reset_on_give_up_hooks();
/// The on-give-up hooks now installed.
std::vector<on_give_up_hook> get_on_give_up_hooks();

/// A hook called for every hedging event of every hedged call (hedges started, won, cancelled,
/// denied by the budget), besides the policy's own `on_hedge`.
using on_hedge_hook = std::function<void(const hedge_event&)>;
/// Replaces the on-hedge hooks, like set_on_retry_hooks.
void set_on_hedge_hooks(std::vector<on_hedge_hook> hooks);
/// Back to the defaults: the default metrics (no log line: hedges are routine).
void reset_on_hedge_hooks();
/// The on-hedge hooks now installed.
std::vector<on_hedge_hook> get_on_hedge_hooks();

/// A hook called for every change of state of every circuit breaker (opened, half-open, closed,
/// isolated), besides the breaker's own `on_transition`; on the thread that caused it, outside
/// the breaker's lock, possibly concurrently and out of order (`transition::sequence` orders them).
using on_breaker_hook = std::function<void(const circuit_breaker::transition&)>;
/// Replaces the on-breaker hooks, like set_on_retry_hooks.
void set_on_breaker_hooks(std::vector<on_breaker_hook> hooks);
/// Back to the defaults: the breaker logging hook (standard error) and the default metrics.
void reset_on_breaker_hooks();
/// The on-breaker hooks now installed.
std::vector<on_breaker_hook> get_on_breaker_hooks();

/// Installs hooks for a block and restores the ones it replaced when it ends (tests, or a part
/// of a program that reports elsewhere). The default scope installs none: quiet.
class hooks_scope {
 public:
  /// No on-retry, on-give-up, on-hedge or on-breaker hook while the scope lives.
  hooks_scope();
  /// These hooks while the scope lives (no on-hedge or on-breaker hook).
  hooks_scope(std::vector<on_retry_hook> retry, std::vector<on_give_up_hook> give_up);
  ~hooks_scope();
  hooks_scope(const hooks_scope&) = delete;
  hooks_scope& operator=(const hooks_scope&) = delete;

 private:
  std::vector<on_retry_hook> retry_;
  std::vector<on_give_up_hook> give_up_;
  std::vector<on_hedge_hook> hedge_;
  std::vector<on_breaker_hook> breaker_;
};

/// Severity of a log record, as in Python's logging.
enum class log_level : unsigned char { debug, info, warning, error };

/// One field of a log record, e.g. `retry_num` = `"2"`.
struct log_field {
  std::string_view key;  ///< the field's name
  std::string value;     ///< its value as text (seconds for durations)
  bool text = false;     ///< quoted in a line (names, descriptions); numbers are not
};

/// What the logging hooks hand to a sink: a level, an event name and fields, so that a
/// structured logger (spdlog, syslog, JSON) can keep them apart.
struct log_record {
  log_level level = log_level::warning;  ///< `warning` for a retry, `error` for a give-up
  std::string_view event;                ///< `stamina.retry_scheduled` or `stamina.gave_up`
  std::vector<log_field> fields;         ///< in a fixed order, see the hooks below
  /// `event key=value ...`, as the stream hooks write it (without a newline).
  std::string line() const;
};

/// A receiver of log records (e.g. an adapter to a logging library).
using log_sink = std::function<void(const log_record&)>;

/// Logs like Python stamina: one line per scheduled retry, at `warning`:
/// `stamina.retry_scheduled callable="..." retry_num=... wait_for=... waited_so_far=... caused_by="..."`.
/// The stream must outlive the hook; lines from different threads are not interleaved.
on_retry_hook logging_hook(std::ostream& out);
/// Same record, handed to `sink`.
on_retry_hook logging_hook(log_sink sink);
/// Same line, handed to `sink` without the trailing newline.
on_retry_hook logging_hook(std::function<void(std::string_view)> sink);
/// Logs a give-up at `error`, only for calls that retried (made more than one attempt): a
/// first-attempt failure that was never going to be retried (a 404) is the caller's news,
/// not the retry library's.
/// `stamina.gave_up callable="..." reason=... attempts=... waited_so_far=... caused_by="..."`
on_give_up_hook give_up_logging_hook(std::ostream& out);
/// Same record, handed to `sink`.
on_give_up_hook give_up_logging_hook(log_sink sink);
/// Same line, handed to `sink` without the trailing newline.
on_give_up_hook give_up_logging_hook(std::function<void(std::string_view)> sink);

/// In-process counters, rendered in the Prometheus text exposition format:
/// `stamina_retries_total{callable,retry_num,error_type}`,
/// `stamina_give_ups_total{callable,reason}`, `stamina_hedges_total{callable,event}`,
/// `stamina_circuit_breaker_transitions_total{breaker,to}` and
/// `stamina_circuit_breaker_state{breaker,state}` (1 for the latest state reported, else 0; named
/// breakers only: one series per name, so per-key breakers add one per key).
/// Thread-safe.
class metrics {
 public:
  metrics();
  ~metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  /// Counts one scheduled retry.
  void record_retry(const retry_details& d);
  /// Counts one give-up.
  void record_give_up(const give_up_details& d);
  /// Counts one hedging event.
  void record_hedge(const hedge_event& e);
  /// Counts one change of state of a circuit breaker and keeps the latest state (by sequence).
  void record_breaker(const circuit_breaker::transition& t);
  /// Counter value, 0 if never incremented.
  double retries(std::string_view callable, unsigned retry_num, std::string_view error_type) const;
  /// Give-up counter value, 0 if never incremented.
  double give_ups(std::string_view callable, give_up_reason reason) const;
  /// Hedging event counter value, 0 if never incremented.
  double hedges(std::string_view callable, hedge_event_kind kind) const;
  /// Transitions of breaker `breaker` into state `to`, 0 if none.
  double breaker_transitions(std::string_view breaker, circuit_breaker::state to) const;
  /// The Prometheus text format (HELP, TYPE and one sample per label set).
  std::string render_prometheus() const;
  /// Resets every counter.
  void clear();

 private:
  friend metrics& default_metrics();
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The process-wide metrics the default hooks record into.
metrics& default_metrics();
on_retry_hook metrics_hook(metrics& m = default_metrics());
on_give_up_hook give_up_metrics_hook(metrics& m = default_metrics());
on_hedge_hook hedge_metrics_hook(metrics& m = default_metrics());
on_breaker_hook breaker_metrics_hook(metrics& m = default_metrics());
/// Logs a change of state of a circuit breaker: at `error` when it opens or is isolated, at
/// `warning` otherwise.
/// `stamina.circuit_breaker breaker="..." from=closed to=open sequence=...`
on_breaker_hook breaker_logging_hook(std::ostream& out);
/// Same record (its level and fields), handed to `sink`.
on_breaker_hook breaker_logging_hook(log_sink sink);

}  // namespace instrumentation

namespace detail {

// Keeps the objects returned by on-retry hooks alive until the next attempt starts. One pointer
// (a call's state sits in every pending call's frame); the list is made when a hook first
// returns an object.
class retry_scope {
 public:
  void hold(std::shared_ptr<void> object) {
    if (!held_) held_ = std::make_unique<std::vector<std::shared_ptr<void>>>();
    held_->push_back(std::move(object));
  }
  // The objects go; the list stays for the next retry's.
  void clear() noexcept {
    if (held_) held_->clear();
  }

 private:
  std::unique_ptr<std::vector<std::shared_ptr<void>>> held_;
};

// Fast checks so that drivers skip the registry (and its lock) when no hook is installed.
bool has_on_retry_hooks() noexcept;
bool has_on_give_up_hooks() noexcept;
bool has_on_hedge_hooks() noexcept;
bool has_on_breaker_hooks() noexcept;

// Calls every on-retry hook with a snapshot of the registry, then the policy's own hook
// (`own`, may be null); a hook that throws is contained (reported on standard error) and the
// others still run.
void notify_retry(const retry_details& d, retry_scope& scope, const instrumentation::on_retry_hook* own) noexcept;
void notify_give_up(const give_up_details& d, const instrumentation::on_give_up_hook* own) noexcept;
// Calls every on-hedge hook (the policy's own is called by the strategy).
void notify_hedge(const hedge_event& e) noexcept;
// Calls every on-breaker hook (the breaker's own is called by the breaker).
void notify_breaker(const circuit_breaker::transition& t) noexcept;

// A hedging policy's on_hedge hook threw (call inside the catch block).
void report_hedge_hook_failure() noexcept;

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
