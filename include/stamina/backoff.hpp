#ifndef STAMINA_BACKOFF_HPP
#define STAMINA_BACKOFF_HPP

#include <stamina/decision.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/switches.hpp>
#include <stamina/duration.hpp>
#include <stamina/failure.hpp>
#include <stamina/give_up_reason.hpp>
#include <stamina/global.hpp>
#include <stamina/retry_policy.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

STAMINA_NAMESPACE_BEGIN

namespace detail {
// A fresh seed per call: thread-local generator seeded once from std::random_device.
std::uint64_t random_seed() noexcept;
class retry_protocol;
}  // namespace detail

/// The wait arithmetic of one retrying call: fed each failure (or its classification) and the
/// time elapsed since the first attempt started, it answers "give up" or "retry after d",
/// following the policy's attempts, deadline and jitter. It reads no clock, sleeps never and
/// performs no I/O, and knows nothing of throttles, budgets or hooks: `retry`, `async_retry` and
/// `retry_context` add the rest of a call's rules over it (the call state and the retry
/// protocol); a hand-written loop that wants those uses `retry_context`.
///
/// It refers to `policy`, which must outlive it, and snapshots the global switches
/// (`set_active`, `set_testing`) when constructed. Small and cheap to copy.
class backoff {
 public:
  /// What to do after a failure.
  struct step {
    bool retry;              ///< true: wait `wait`, then attempt again
    duration wait;           ///< the scheduled wait (0 when giving up)
    unsigned retry_num;      ///< the attempt that just failed, from 1
    duration waited_so_far;  ///< sum of the waits scheduled before this one
    give_up_reason reason;   ///< why we gave up; meaningful only when `!retry`
  };

  /// Draws its random seed lazily, on the first wait, so the success path costs nothing.
  explicit backoff(const retry_policy& policy) noexcept : backoff(policy, detail::load_global_config()) {}

  /// A backoff refers to its policy: binding it to a temporary would dangle.
  explicit backoff(retry_policy&&) = delete;
  backoff(retry_policy&&, std::uint64_t) = delete;

  /// Same seed, same policy and same failures give the same waits.
  backoff(const retry_policy& policy, std::uint64_t seed) noexcept : backoff(policy, detail::load_global_config()) {
    rng_ = seed;
    seeded_ = true;
  }

  /// The policy this backoff follows.
  const retry_policy& policy() const noexcept { return *policy_; }
  /// Whether retrying was active (`set_active`) when this backoff was made.
  bool active() const noexcept { return active_; }
  /// Whether testing mode (`set_testing`) was on when this backoff was made.
  bool testing() const noexcept { return testing_; }

  /// Number of failures seen so far.
  unsigned failures() const noexcept { return failures_; }
  /// Sum of all waits scheduled so far.
  duration waited_so_far() const noexcept { return duration(waited_); }
  /// The effective attempt limit after the global switches; nullopt = unlimited.
  std::optional<unsigned> max_attempts() const noexcept {
    return max_attempts_ == 0 ? std::nullopt : std::optional<unsigned>(max_attempts_);
  }
  /// The effective deadline, relative to the start of the first attempt; nullopt = none.
  std::optional<duration> deadline() const noexcept {
    return std::isinf(timeout_) ? std::nullopt : std::optional<duration>(timeout_);
  }
  /// Whether the driver must measure elapsed time (see the static form).
  bool needs_clock() const noexcept {
    return needs_clock(*policy_, {(active_ ? 0 : detail::global_config::inactive_bit) |
                                  (testing_ ? detail::global_config::testing_bit : 0)});
  }

  /// How long the next attempt may run when the policy has an `attempt_timeout`:
  /// `min(attempt_timeout, time left before the deadline)`, so the whole call ends by its
  /// deadline; nullopt = no limit (no `attempt_timeout`, or retrying is inactive).
  std::optional<duration> attempt_limit(duration elapsed) const noexcept {
    const auto per_attempt = policy_->attempt_timeout();
    if (!active_ || !per_attempt) return std::nullopt;
    if (std::isinf(timeout_)) return per_attempt;
    return duration(std::min(per_attempt->count(), std::max(0.0, timeout_ - elapsed.count())));
  }

  /// Asks the policy's `on` about `f`. A classifier that throws (or returns an invalid wait)
  /// is reported on standard error, like a throwing hook, and counts as "do not retry", so
  /// the original failure is delivered rather than the classifier's exception.
  decision classify(const failure& f) const noexcept {
    return detail::classify_safely([&] { return policy_->on()(f); });
  }

  /// The wait the next retryable failure will draw (ignoring the deadline, the attempt
  /// limit and server-given waits), without drawing it: the same number `on_failure` will
  /// then schedule. 0 in testing mode.
  duration peek_wait() noexcept {
    if (testing_) return duration(0);
    if (!seeded_) {
      rng_ = detail::random_seed();
      seeded_ = true;
    }
    backoff copy = *this;
    return copy.draw_wait(failures_ + 1);
  }

  /// Records a failure (classified by the policy) that happened `elapsed` after the first
  /// attempt started, and says what to do next.
  step on_failure(const failure& f, duration elapsed) { return on_failure(classify(f), elapsed); }

  /// Same, with the classification already made (e.g. an attempt timeout, always retryable).
  /// `other_attempts`: attempts of the call that count against `attempts` but were no failure
  /// seen here (attempts a throttle held back, when the call has no deadline).
  step on_failure(decision d, duration elapsed, unsigned other_attempts = 0) {
    if (failures_ != std::numeric_limits<unsigned>::max()) ++failures_;
    if (!active_) return give_up(give_up_reason::attempts_exhausted);
    if (!d.should_retry())
      return give_up(d.what() == decision::kind::pushback ? give_up_reason::pushback : give_up_reason::not_retryable);
    const unsigned used =
        failures_ > std::numeric_limits<unsigned>::max() - other_attempts ? failures_ : failures_ + other_attempts;
    if (max_attempts_ != 0 && used >= max_attempts_) return give_up(give_up_reason::attempts_exhausted);
    double wait = 0;
    if (!testing_) {
      if (d.what() == decision::kind::retry_after) {
        // A server-given wait, capped (a hostile Retry-After must not park the call), then
        // spread; the spread stays short of the deadline (ends strictly before it).
        const double asked = std::min(d.wait().count(), server_wait_cap());
        wait = spread_after(duration(asked), 0.999 * (timeout_ - elapsed.count() - asked)).count();
      } else {
        wait = draw_wait(failures_).count();
      }
    }
    if (!std::isinf(timeout_) && elapsed.count() + wait >= timeout_) return give_up(give_up_reason::deadline);
    const step s{true, duration(wait), failures_, duration(waited_), give_up_reason::attempts_exhausted};
    waited_ = std::min(waited_ + wait, std::numeric_limits<double>::max());  // saturates
    return s;
  }

  /// The wait after a server-given minimum `d` (a `retry_after` decision): `d + U(0, min(d,
  /// wait_jitter))`. Never earlier than asked, and spread after it, so clients that were
  /// turned away together do not all come back in the same instant. `room`: how much later
  /// than `d` the wait may end (the deadline); the spread is kept inside it.
  duration spread_after(duration d, double room = std::numeric_limits<double>::infinity()) noexcept {
    const double spread = std::min({d.count(), policy_->wait_jitter().count(), room});
    if (!(spread > 0) || std::isinf(spread)) return d;
    return duration(d.count() + uniform() * spread);
  }

  /// The exponential part for retry `retry_num`: `min(wait_max, wait_initial *
  /// wait_exp_base^(retry_num-1))`, saturating (never overflows, whatever `retry_num`).
  duration capped_exponential(unsigned retry_num) const noexcept {
    const double initial = policy_->wait_initial().count();
    const double cap = policy_->wait_max().count();
    if (initial <= 0) return duration(0);
    const double base = policy_->wait_exp_base();
    double e = initial;
    if (retry_num > 1 && base > 1) {
      // The default base, 2: 2^n is the double whose exponent field is 1023 + n (+inf from
      // 2^1024, as pow's in the default rounding mode), made in three instructions where glibc's
      // pow costs about a hundred per wait after the first. Below 2^1024 it is exact: the same
      // double as pow's in the default rounding mode (rounding down, glibc's pow is one ulp low).
      const unsigned n = retry_num - 1;
      if (base == 2.0)
        e = initial * (n < 1024 ? std::bit_cast<double>(std::uint64_t{1023u + n} << 52)
                                : std::numeric_limits<double>::infinity());
      else
        e = initial * std::pow(base, static_cast<double>(n));  // may be +inf
    }
    return duration(std::min(e, cap));
  }

  /// Draws the policy strategy's wait for retry `retry_num` (ignores deadline and attempts).
  /// Advances the random state and, for `decorrelated`, the previous wait.
  duration draw_wait(unsigned retry_num) noexcept {
    const double e = capped_exponential(retry_num).count();
    switch (policy_->jitter()) {
      case jitter::additive: {
        // Two huge but valid settings (wait_max, wait_jitter near the double's maximum) must
        // saturate, not overflow to infinity.
        // No jitter, nothing to draw (nor a seed to read for it).
        const double spread = policy_->wait_jitter().count();
        const double w = spread > 0 ? e + uniform() * spread : e;
        return duration(std::isfinite(w) ? w : std::numeric_limits<double>::max());
      }
      case jitter::full:
        return duration(uniform() * e);
      case jitter::equal:
        return duration(e / 2 + uniform() * (e / 2));
      case jitter::decorrelated: {
        const double lo = policy_->wait_initial().count();
        const double hi = std::max(lo, 3 * prev_wait_);
        prev_wait_ = std::min(policy_->wait_max().count(), lo + uniform() * (hi - lo));
        return duration(prev_wait_);
      }
    }
    return duration(e);
  }

 private:
  friend class detail::retry_protocol;  // builds it with the switches its call read once

  // With the global switches as they were when the call started (`detail::load_global_config`).
  backoff(const retry_policy& policy, detail::global_config switches) noexcept
      : policy_(&policy), rng_(0), prev_wait_(policy.wait_initial().count()) {
    active_ = switches.active();
    testing_ = switches.testing();
    const unsigned configured = policy.attempts().value_or(0);  // 0 = unlimited
    max_attempts_ = configured;
    if (testing_) {
      const unsigned forced = std::max(1u, switches.testing_attempts());
      max_attempts_ = switches.cap() && configured != 0 ? std::min(configured, forced) : forced;
    }
    if (!active_) max_attempts_ = 1;
    if (policy.timeout() && !testing_ && active_) timeout_ = policy.timeout()->count();
  }
  backoff(retry_policy&&, detail::global_config) = delete;

  // Both: the given switches and a fixed seed (0 = draw one lazily, as without a seed).
  backoff(const retry_policy& policy, detail::global_config switches, std::uint64_t seed) noexcept
      : backoff(policy, switches) {
    rng_ = seed;
    seeded_ = seed != 0;
  }
  backoff(retry_policy&&, detail::global_config, std::uint64_t) = delete;

  // Whether a call under `switches` must measure elapsed time: a deadline, an attempt time
  // limit or a schedule restart (`reset_after`) applies. The one rule for every driver.
  [[gnu::always_inline]] static bool needs_clock(const retry_policy& policy, detail::global_config switches) noexcept {
    // A timeout or an inherited deadline (timed) needs it unless in testing mode; an
    // attempt_timeout or reset_after (clocked) always.
    namespace bit = detail::policy_shape;
    const std::uint8_t shape = policy.shape();
    return (shape & (bit::timed | bit::clocked)) != 0 && switches.active() &&
           ((shape & bit::clocked) != 0 || !switches.testing());
  }
  // An inherited deadline, `left` seconds of the call's time after its start: the deadline is
  // the earlier of it and the policy's timeout (none in testing mode or when inactive).
  void clamp_deadline(double left) noexcept {
    if (active_ && !testing_) timeout_ = std::min(timeout_, left);
  }

  double server_wait_cap() const noexcept {
    const auto cap = policy_->max_server_wait();
    return cap ? cap->count() : std::numeric_limits<double>::infinity();
  }

  step give_up(give_up_reason r) const noexcept { return {false, duration(0), failures_, duration(waited_), r}; }

  // splitmix64: tiny state, good enough statistical quality for jitter, trivially copyable.
  double uniform() noexcept {
    if (!seeded_) {
      rng_ = detail::random_seed();
      seeded_ = true;
    }
    std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
  }

  const retry_policy* policy_;
  std::uint64_t rng_;
  double waited_ = 0;
  double prev_wait_;
  double timeout_ = std::numeric_limits<double>::infinity();
  unsigned failures_ = 0;
  unsigned max_attempts_ = 0;
  bool active_ = true;
  bool testing_ = false;
  bool seeded_ = false;
};

STAMINA_NAMESPACE_END

#endif
