#ifndef STAMINA_CIRCUIT_BREAKER_HPP
#define STAMINA_CIRCUIT_BREAKER_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

namespace detail {
class call_state;
}  // namespace detail

/// A circuit breaker for one dependency (or one endpoint, shard or key of it: see
/// `circuit_breakers`), shared by the calls to it. While it is open, a call fails at once and
/// sends nothing: with the dependency's last failure if it had one, else
/// `stamina::error::circuit_open` (give-up reason `circuit_open`).
///
/// - **Closed** (the usual state): every attempt is sent. While no attempt has failed for a
///   `window`, a success costs one relaxed atomic load. The first failure starts counting the
///   answers of the next `window` (a two-window sliding estimate); when at least
///   `minimum_calls` were counted and the share of failures reaches `failure_ratio`, it opens.
/// - **Open** for `open_for`: nothing is sent. Then
/// - **Half-open**: `probes` attempts are let through; if they all succeed it closes, if one fails
///   it opens again. A probe that ends without an answer (cancelled) frees its place; probes that
///   never report back are given up after another `open_for`, so it never stays stuck.
/// - **Isolated** (`isolate()`): open until `reset()`.
///
/// What counts: an attempt the policy's `on` retries, an attempt that timed out and an overload
/// answer are failures; a success and a failure the policy does not retry (a 404 is an answer)
/// are successes. The breaker takes the adaptive throttle's place for what they both detect —
/// a dependency that is down: a policy with a breaker has no default throttle (an explicit
/// `throttle(...)` still paces overload).
///
/// Safe to share between threads (`std::shared_ptr<circuit_breaker>` in
/// `retry_policy::breaker`). Set it up (setters, `clock`, `on_transition`) before sharing it.
/// Its lock is held across `fork()`: a child may use it whatever other threads were doing.
class circuit_breaker {
 public:
  /// Seconds on a monotonic clock; injectable for tests and simulations.
  using clock_function = double (*)();
  /// Where it stands (see the class comment).
  enum class state : unsigned char { closed, open, half_open, isolated };

  /// A change of state, for hooks and metrics.
  struct transition {
    std::string_view breaker;  ///< the breaker's name
    state from;                ///< before
    state to;                  ///< after
    /// Increases with every change of state: hooks may run concurrently and see changes out of
    /// order; the highest sequence seen is the latest state.
    std::uint32_t sequence;
    /// Tells breakers of the same name apart (a breaker rebuilt under an old name): unique in
    /// the process, larger for a breaker made later.
    std::uint64_t instance = 0;
  };

  /// A closed breaker with the default settings; `name` is reported with its transitions.
  explicit circuit_breaker(std::string name = "");
  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;
  ~circuit_breaker();

  /// The share of failures among the answers counted that opens it (default 0.5; in (0, 1]).
  circuit_breaker& failure_ratio(double ratio);
  /// The fewest answers counted before it may open (default 20; in [1, 1000000]).
  circuit_breaker& minimum_calls(unsigned calls);
  /// How long answers are counted for (default 10 s; finite, in (0, 1 day]).
  circuit_breaker& window(duration length);
  /// How long it stays open before probing (default 5 s; finite, in (0, 1 day]).
  circuit_breaker& open_for(duration length);
  /// Probes let through when half-open, all of which must succeed to close (default 1; in
  /// [1, 1000]).
  circuit_breaker& probes(unsigned count);
  /// The clock (default: the monotonic clock).
  circuit_breaker& clock(clock_function now) noexcept;
  /// Called after each change of state, outside the breaker's lock (it may call the breaker), on
  /// the thread that caused it: calls on several threads may overlap and arrive out of order
  /// (`transition::sequence` orders them). An exception it throws is reported on standard error
  /// and otherwise ignored.
  circuit_breaker& on_transition(std::function<void(const transition&)> hook);

  /// Asks to send one attempt: true = send it (when half-open, it is a probe), false = the
  /// breaker is open. `ticket`, when given, receives the breaker's generation for the answer's
  /// report: an answer to an attempt allowed before a change of state (sent before it opened,
  /// a probe answered after it closed) is ignored.
  bool allow(std::uint32_t* ticket = nullptr) noexcept {
    const std::uint32_t generation = generation_.load(std::memory_order_acquire);
    if (state_.load(std::memory_order_acquire) == state::closed) [[likely]] {
      if (ticket != nullptr) *ticket = generation;
      return true;
    }
    return allow_slow(ticket);
  }
  /// An attempt allowed with `ticket` was answered: a success, or a failure the policy does not
  /// retry. Costs two relaxed atomic loads while closed with no failure in the last window.
  void on_success(std::uint32_t ticket) noexcept {
    if (state_.load(std::memory_order_acquire) == state::closed && !counting_.load(std::memory_order_relaxed))
        [[likely]]
      return;
    record(true, ticket);
  }
  /// An attempt allowed with `ticket` failed in a way the policy retries, timed out, or was
  /// answered "overloaded".
  void on_failure(std::uint32_t ticket) noexcept { record(false, ticket); }
  /// An attempt allowed with `ticket` ended without an answer (cancelled, or held back by a
  /// throttle after the breaker let it through): a probe's place is freed.
  void on_abandoned(std::uint32_t ticket) noexcept;
  /// The same, for an attempt allowed in the current state (tests, hand-written loops).
  void on_success() noexcept { on_success(generation_.load(std::memory_order_acquire)); }
  /// The same, for an attempt allowed in the current state.
  void on_failure() noexcept { on_failure(generation_.load(std::memory_order_acquire)); }
  /// The same, for an attempt allowed in the current state.
  void on_abandoned() noexcept { on_abandoned(generation_.load(std::memory_order_acquire)); }

  /// Whether an attempt asked for now would be refused (open, isolated, or half-open with every
  /// probe out), without asking for one.
  bool refusing() const noexcept;

  /// Opens it until reset(), whatever happens.
  void isolate();
  /// Closes it and forgets what it counted.
  void reset();

  /// Where it stands now (an open breaker whose `open_for` has passed turns half-open at the
  /// next `allow`).
  state current() const noexcept { return state_.load(std::memory_order_acquire); }
  /// The name given when it was made.
  const std::string& name() const noexcept { return name_; }

  /// What it did so far.
  struct stats_type {
    std::uint64_t opened = 0;   ///< times it opened (from closed or half-open)
    std::uint64_t refused = 0;  ///< attempts refused (open, isolated, or half-open with every probe out)
  };
  /// What it did so far.
  stats_type stats() const noexcept;

 private:
  // allow()'s closed case alone, with no side effect when it is not closed: a call whose first
  // attempt goes as a plain one asks this (call_state::closed_breaker_admits), and leaves any
  // other case (a probe, a refusal and its count) to allow(), asked once, the long way.
  friend class detail::call_state;
  bool allow_if_closed(std::uint32_t& ticket) const noexcept {
    const std::uint32_t generation = generation_.load(std::memory_order_acquire);
    if (state_.load(std::memory_order_acquire) != state::closed) return false;
    ticket = generation;
    return true;
  }
  bool allow_slow(std::uint32_t* ticket) noexcept;
  void record(bool success, std::uint32_t ticket) noexcept;
  double now_locked() const noexcept;  // the clock, made finite and monotonic
  // Under the lock: the answers of the current window, with the previous window's share.
  void roll(double now) noexcept;
  void move_to(state to, double now) noexcept;  // under the lock; the transition is reported later
  void report(state from, state to, std::uint32_t sequence) noexcept;  // outside the lock

  const std::string name_;
  const std::uint64_t instance_;
  double failure_ratio_ = 0.5;
  unsigned minimum_calls_ = 20;
  double window_ = 10;
  double open_for_ = 5;
  unsigned probes_ = 1;
  clock_function clock_;
  std::function<void(const transition&)> on_transition_;

  std::atomic<state> state_{state::closed};
  std::atomic<std::uint32_t> generation_{0};  // + 1 at every change of state
  std::atomic<bool> counting_{false};         // closed and counting answers since a failure
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> refused_{0};
  mutable std::mutex mutex_;
  // Under mutex_:
  double window_start_ = 0;
  double successes_ = 0, failures_ = 0;                              // in the current window
  double prev_successes_ = 0, prev_failures_ = 0;                    // in the window before it
  double changed_at_ = 0;                                            // when it last opened or became half-open
  mutable double last_now_ = std::numeric_limits<double>::lowest();  // the latest good clock reading
  unsigned probes_out_ = 0;                                          // probes let through, not reported yet
  unsigned probes_ok_ = 0;                                           // probes that succeeded
};

/// The state's name, as logs and metrics show it: `closed`, `open`, `half_open`, `isolated`.
constexpr std::string_view to_string(circuit_breaker::state s) noexcept {
  switch (s) {
    case circuit_breaker::state::closed:
      return "closed";
    case circuit_breaker::state::open:
      return "open";
    case circuit_breaker::state::half_open:
      return "half_open";
    case circuit_breaker::state::isolated:
      return "isolated";
  }
  return "unknown";
}

/// A circuit breaker per key (endpoint, shard, tenant), made on first use with the settings of
/// `prototype`, so that one bad shard does not fail calls to the others. Named
/// `<name>/<key>`. Safe to share between threads; breakers live as long as the set.
class circuit_breakers {
 public:
  /// `configure` is applied to every breaker made (its settings, clock and hook) before it is
  /// shared, outside the set's lock; when two threads ask for a new key at once it may run for a
  /// breaker that is then dropped (the first one made is the key's).
  explicit circuit_breakers(std::string name, std::function<void(circuit_breaker&)> configure = {});
  circuit_breakers(const circuit_breakers&) = delete;
  circuit_breakers& operator=(const circuit_breakers&) = delete;
  ~circuit_breakers();

  /// The breaker of `key`, made if there is none.
  std::shared_ptr<circuit_breaker> operator[](std::string_view key);
  /// How many breakers it holds.
  std::size_t size() const;

 private:
  const std::string name_;
  const std::function<void(circuit_breaker&)> configure_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<circuit_breaker>, std::less<>> breakers_;
};

STAMINA_NAMESPACE_END

#endif
