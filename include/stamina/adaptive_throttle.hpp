#ifndef STAMINA_ADAPTIVE_THROTTLE_HPP
#define STAMINA_ADAPTIVE_THROTTLE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stamina/detail/namespace.hpp>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

namespace detail {
class throttle_registry;
}  // namespace detail

/// Client-side throttling shared by the calls to one dependency. It tells a dependency that is
/// overloaded or down from one that merely fails some attempts, and paces attempts only for the
/// first: retries are what a flaky dependency with capacity to spare needs, and pacing it would
/// turn its failures into an outage.
///
/// Every attempt it admits ends in one of four ways, which the drivers report:
/// - **accepted** (`on_accepted`): a success, or a failure the policy does not retry (a 404 is
///   an answer);
/// - **failed** (`on_failed`): a failure the policy retries, answered with no sign of overload
///   (a refused connection, a 500);
/// - **overloaded** (`on_overloaded`): the attempt timed out (`attempt_timeout`), or the policy's
///   classifier said the dependency is overloaded: `decision::retry_after(d)` (a server's
///   `Retry-After`) or `decision::overloaded()` (a 429 or 503 without one);
/// - still outstanding: not answered yet.
///
/// - **Healthy** (the usual state): every attempt is sent, and a success costs one relaxed
///   atomic load — nothing is written, so calls on many threads do not contend.
/// - **Watching** starts at a retryable failure or an overload. The throttle then counts attempts
///   sent, answered (accepted or failed) and accepted, forgetting half of each every `window`
///   attempts; after a window without trouble it is healthy again.
/// - **Pacing** starts (after at least one `interval` of watching, with `min_sent` attempts
///   counted) when the dependency is
///   - *overloaded*: `sent > k * answered` — Google SRE's condition for shedding, where time-outs,
///     overload answers and answers still outstanding are not answers (a queue building up
///     shows as answers lagging what was sent, before anything times out); or
///   - *down*: over a whole `window` of attempts, fewer than 1 in 50 accepted (an outage that
///     answers every attempt at once with a failure).
///   Attempts, first attempts included, are then admitted by a token bucket at `rate` per
///   second, starting from the accepted rate seen while watching. Every `interval` the rate
///   follows what happened: overload in more than 10 % of the answers, or fewer than 1 in 50
///   accepted → halve it (a pace that fails right after a good interval becomes the ceiling);
///   answers lag behind what was sent (a queue is building) → 0.9 × the answered rate, also the
///   new ceiling; all fine but attempts were held back → double up to the ceiling, then +25 %
///   per interval; all fine and nothing held back → healthy again.
///
/// A dependency that fails attempts at random with capacity to spare is never paced, however
/// many of them fail, as long as 1 in 50 is accepted: every answer is an answer.
///
/// An attempt that is not admitted never reaches the dependency: it fails locally and, like any
/// retryable failure, waits its backoff before the next attempt, which asks again, so callers
/// are paced rather than dropped. It costs nothing from a `retry_budget`, and when the policy
/// has a deadline (`timeout`) it does not use up one of the policy's `attempts`: the deadline
/// bounds how long a call is paced.
///
/// Safe to share between threads (`std::shared_ptr<adaptive_throttle>` in
/// `retry_policy::throttle`); while watching it costs two relaxed atomic additions per
/// attempt, while pacing admission takes a mutex.
class adaptive_throttle {
 public:
  /// Seconds on a monotonic clock; injectable for tests and simulations.
  using clock_function = double (*)();

  /// Throws `std::invalid_argument` naming the parameter unless `k` is finite and in
  /// [1, 100], `window` in [10, 100000] and `min_sent` in [1, 2 * window].
  explicit adaptive_throttle(double k = 2.0, unsigned window = 100, unsigned min_sent = 20);

  adaptive_throttle(const adaptive_throttle&) = delete;
  adaptive_throttle& operator=(const adaptive_throttle&) = delete;
  ~adaptive_throttle();

  /// The lowest pacing rate, attempts per second (default 1; finite, > 0).
  adaptive_throttle& min_rate(double per_second);
  /// How often the pacing rate is revised (default 0.5 s; finite, > 0).
  adaptive_throttle& interval(double seconds);
  /// The clock (default: the monotonic clock). Set it before sharing the throttle.
  adaptive_throttle& clock(clock_function now) noexcept;

  /// Asks to send one attempt: true = send it, false = held back.
  bool admit() noexcept {
    const mode m = mode_.load(std::memory_order_acquire);
    if (m == mode::healthy) [[likely]]
      return true;
    touched_.store(true, std::memory_order_relaxed);
    if (m == mode::pacing) return admit_paced();
    const std::uint64_t after = state_.fetch_add(one_sent, std::memory_order_relaxed) + one_sent;
    if (sent_of(after) >= 2 * window_) forget_half();
    if (sent_of(after) >= min_sent_ && in_trouble(after)) start_pacing();
    return true;
  }

  /// The dependency answered an admitted attempt: a success, or a failure the policy does not retry.
  void on_accepted() noexcept {
    const mode m = mode_.load(std::memory_order_relaxed);
    if (m == mode::healthy) [[likely]]
      return;
    touched_.store(true, std::memory_order_relaxed);
    state_.fetch_add(one_answered | one_accepted, std::memory_order_relaxed);
    if (m == mode::pacing) interval_accepted_.fetch_add(1, std::memory_order_relaxed);
  }

  /// An admitted attempt failed in a way the policy retries, and the dependency showed no sign
  /// of overload: it answered.
  void on_failed() noexcept {
    const mode m = mode_.load(std::memory_order_relaxed);
    if (m == mode::healthy) {
      start_watching(one_sent | one_answered);  // the attempt that just failed
      return;
    }
    touched_.store(true, std::memory_order_relaxed);
    state_.fetch_add(one_answered, std::memory_order_relaxed);
    if (m == mode::pacing) interval_failed_.fetch_add(1, std::memory_order_relaxed);
  }

  /// An admitted attempt timed out, or the dependency said it is overloaded (a retry_after or
  /// overloaded decision).
  void on_overloaded() noexcept {
    const mode m = mode_.load(std::memory_order_relaxed);
    if (m == mode::healthy) {
      start_watching(one_sent);  // the attempt that just timed out or was turned away
      return;
    }
    touched_.store(true, std::memory_order_relaxed);
    if (m == mode::pacing) interval_overloaded_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Whether attempts are being paced now.
  bool pacing() const noexcept { return mode_.load(std::memory_order_relaxed) == mode::pacing; }
  /// Whether failures are being watched (or attempts paced): the dependency had trouble lately.
  bool watching() const noexcept { return mode_.load(std::memory_order_relaxed) != mode::healthy; }
  /// The pacing rate, attempts per second (meaningful while pacing).
  double rate() const;
  /// Attempts held back since the throttle was made (they are not reported to on-retry hooks).
  std::uint64_t held_back() const noexcept { return held_back_.load(std::memory_order_relaxed); }
  /// Attempts counted as sent while watching.
  std::uint32_t sent() const noexcept { return sent_of(state_.load(std::memory_order_relaxed)); }
  /// Attempts counted as answered (accepted or failed, not overloaded) while watching.
  std::uint32_t answered() const noexcept { return answered_of(state_.load(std::memory_order_relaxed)); }
  /// Attempts counted as accepted (a success, or an answer not retried) while watching.
  std::uint32_t accepted() const noexcept { return accepted_of(state_.load(std::memory_order_relaxed)); }

  /// Pacing for overload starts when `sent > k * answered`.
  double k() const noexcept { return k_; }
  /// The counts are halved every `window` attempts.
  unsigned window() const noexcept { return window_; }
  /// Pacing needs at least this many attempts counted.
  unsigned min_sent() const noexcept { return min_sent_; }

  /// A dependency that accepts fewer than one attempt in this many is down.
  static constexpr unsigned down_ratio = 50;

 private:
  friend class detail::throttle_registry;

  // Three counts in one atomic word, so a reader never sees one halved and another not:
  // sent (bits 42-63), answered (21-41), accepted (0-20). A window is at most 100000, so
  // no count passes 2^21 before it is halved.
  static constexpr unsigned field_bits = 21;
  static constexpr std::uint64_t field_mask = (std::uint64_t{1} << field_bits) - 1;
  static constexpr std::uint64_t one_accepted = 1;
  static constexpr std::uint64_t one_answered = std::uint64_t{1} << field_bits;
  static constexpr std::uint64_t one_sent = std::uint64_t{1} << (2 * field_bits);
  static std::uint32_t sent_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> (2 * field_bits)); }
  static std::uint32_t answered_of(std::uint64_t s) noexcept {
    return static_cast<std::uint32_t>((s >> field_bits) & field_mask);
  }
  static std::uint32_t accepted_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s & field_mask); }

  // The conditions for pacing, on one snapshot of the counts.
  bool overloaded(std::uint64_t s) const noexcept { return sent_of(s) > k_ * answered_of(s); }
  bool down(std::uint64_t s) const noexcept {
    return sent_of(s) >= window_ && std::uint64_t{accepted_of(s)} * down_ratio < sent_of(s);
  }
  bool in_trouble(std::uint64_t s) const noexcept { return overloaded(s) || down(s); }

  enum class mode : unsigned char { healthy, watching, pacing };

  void start_watching(std::uint64_t first) noexcept;
  void forget_half() noexcept;
  void start_pacing() noexcept;
  bool admit_paced() noexcept;
  bool failing_more(double accepted, double failed) const noexcept;
  bool overloaded_at_pace(double accepted, double failed, double overloaded) const noexcept;
  void set_mode(mode m) noexcept;  // under mutex_: keeps the registry's count of unhealthy throttles

  double k_;
  unsigned window_;
  unsigned min_sent_;
  double min_rate_ = 1.0;
  double interval_ = 0.5;
  clock_function now_;
  std::atomic<std::uint64_t> state_{0};
  std::atomic<mode> mode_{mode::healthy};
  std::atomic<std::uint32_t> interval_accepted_{0};
  std::atomic<std::uint32_t> interval_failed_{0};
  std::atomic<std::uint32_t> interval_overloaded_{0};
  std::atomic<std::uint64_t> held_back_{0};
  std::atomic<bool> touched_{false};  // activity outside the healthy state since the registry last looked

  std::mutex own_mutex_;
  std::mutex* mutex_ = &own_mutex_;  // guards what follows; a default throttle's is one of the registry's

  double watching_since_ = 0;          // when watching started
  std::uint32_t accepted_before_ = 0;  // counts forgotten since then
  std::uint32_t sent_before_ = 0;
  double rate_ = 0;
  double ceiling_ = 0;     // the last pace that proved too much, or the healthy accepted rate
  bool last_good_ = true;  // the last interval had no overload
  double tokens_ = 0;
  double refilled_at_ = 0;
  double interval_start_ = 0;
  std::uint32_t interval_admitted_ = 0;
  std::uint32_t interval_held_ = 0;
  double least_failing_ = 1;          // the lowest fraction of plain failures seen while pacing
  double least_failing_answers_ = 1;  // and how many answers it was measured on
  int registry_bucket_ = -1;          // set by the default-throttle registry: where it counts as unhealthy
  bool counted_unhealthy_ = false;    // counted there now
};

/// The process-wide throttle of the calls named `name` (`retry_policy::name`), made on first
/// use. Every policy that was given no throttle of its own uses its name's throttle while
/// default throttling is on (`set_default_throttling`): calls to one dependency share what they
/// learn about it, and a policy opts out with `throttle(nullptr)`.
///
/// A call looks its name's throttle up only when it needs one: at its first retryable failure,
/// or when that throttle is not healthy. A healthy call costs no lookup and no lock, and names
/// that never fail are never registered. Throttles nobody holds are forgotten once they are
/// healthy, or idle (no attempt or answer) for a while: a healthy or idle throttle carries no
/// state worth keeping, so names made per request do not accumulate. The returned pointer
/// keeps the throttle (e.g. to set its clock or read its state).
std::shared_ptr<adaptive_throttle> default_throttle(std::string_view name);

namespace detail {

// Counts of unhealthy default throttles by a hash of their names: a call whose name's count is
// zero knows its throttle is healthy (or absent) without a lookup. The total is read first, with
// one relaxed load.
inline constexpr std::size_t throttle_buckets = 256;
inline std::atomic<std::uint32_t> unhealthy_default_throttles{0};
// Default throttles registered so far (a look-up that found none stays valid until it changes).
inline std::atomic<std::uint64_t> default_throttle_registrations{1};
inline bool any_default_throttle_unhealthy() noexcept {
  return unhealthy_default_throttles.load(std::memory_order_relaxed) != 0;
}

// The registry: the throttle of a name, made if there is none; the throttle of a name if it may
// be unhealthy, else null (no lock taken when its bucket counts nothing unhealthy).
std::shared_ptr<adaptive_throttle> acquire_default_throttle(std::string_view name);
std::shared_ptr<adaptive_throttle> find_unhealthy_default_throttle(std::string_view name);

// The registry's size and how many lookups it served (tests check both).
std::size_t default_throttle_registry_size();
std::uint64_t default_throttle_lookups();

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
