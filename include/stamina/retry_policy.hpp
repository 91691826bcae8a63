#ifndef STAMINA_RETRY_POLICY_HPP
#define STAMINA_RETRY_POLICY_HPP

#include <stamina/duration.hpp>
#include <stamina/global.hpp>
#include <stamina/jitter.hpp>
#include <stamina/retry_on.hpp>

#include <concepts>
#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace stamina {

class retry_budget;
class adaptive_throttle;
namespace detail {
// default_throttle(""), looked up once.
adaptive_throttle* unnamed_default_throttle() noexcept;
}  // namespace detail

/// How a call is retried. A value type: every setter validates its argument, so an invalid
/// policy cannot exist. Setters return `*this` for chaining; each getter has the setter's
/// name and no argument.
///
/// It is a class and not an aggregate on purpose: g++ 12 destroys aggregate temporaries
/// with non-trivial members twice when they are built inside a `co_await` expression.
class retry_policy {
 public:
  /// The only required part: which failures are retried. Implicit, so a `retry_on` (e.g.
  /// `stamina::on_error(...)`) can stand wherever a policy with all defaults is expected.
  retry_policy(retry_on on)  // NOLINT(google-explicit-constructor): deliberate, see above
      : shared_(std::make_shared<const shared_parts>(
            shared_parts{std::move(on), {}, {}, {}, detail::unnamed_default_throttle(), false})) {}

  // --- setters: throw std::invalid_argument naming the field and the value ---------------
  /// Which failures are retried.
  retry_policy& on(retry_on value);
  /// Total attempts including the first; `nullopt` = unlimited; 0 is invalid.
  retry_policy& attempts(std::optional<unsigned> value);
  /// Integer overload so that `attempts(-1)` is rejected instead of wrapping around;
  /// values above `unsigned`'s range saturate.
  template <std::integral I>
  requires(!std::same_as<I, bool>) retry_policy& attempts(I value) {
    if (value <= 0) throw_invalid_attempts(static_cast<long long>(value));
    if (static_cast<unsigned long long>(value) > std::numeric_limits<unsigned>::max())
      return attempts(std::optional<unsigned>(std::numeric_limits<unsigned>::max()));
    return attempts(std::optional<unsigned>(static_cast<unsigned>(value)));
  }
  /// Total budget of the whole call, from the start of the first attempt; `nullopt` =
  /// unlimited; must be > 0.
  retry_policy& timeout(std::optional<duration> value);
  /// Base of the first wait; >= 0 and finite (may exceed `wait_max`: then capped).
  retry_policy& wait_initial(duration value);
  /// Cap of the exponential part; >= 0 and finite.
  retry_policy& wait_max(duration value);
  /// Maximum random addition (additive jitter); >= 0 and finite.
  retry_policy& wait_jitter(duration value);
  /// Growth factor of the exponential part; >= 1 and finite.
  retry_policy& wait_exp_base(double value);
  /// The jitter strategy.
  retry_policy& jitter(stamina::jitter value) noexcept {
    jitter_ = value;
    return *this;
  }
  /// Async only: an attempt still running after this long is cancelled and counts as a
  /// retryable failure (`stamina::error::attempt_timeout`).
  retry_policy& attempt_timeout(std::optional<duration> value);
  /// The name reported to hooks and metrics.
  retry_policy& name(std::string value);
  /// A token bucket shared between calls; null = no budget.
  retry_policy& budget(std::shared_ptr<retry_budget> value);
  /// Client-side throttling shared between calls to one dependency. Without this setter the
  /// policy uses `stamina::default_throttle(name())`; null = no throttling at all.
  retry_policy& throttle(std::shared_ptr<adaptive_throttle> value);

  // --- getters -------------------------------------------------------------------------
  /// Which failures are retried.
  const retry_on& on() const noexcept { return shared_->on; }
  /// Total attempts (default 10); nullopt = unlimited.
  std::optional<unsigned> attempts() const noexcept { return attempts_; }
  /// Budget of the whole call (default 45 s); nullopt = unlimited.
  std::optional<duration> timeout() const noexcept { return timeout_; }
  /// Base of the first wait (default 100 ms).
  duration wait_initial() const noexcept { return wait_initial_; }
  /// Cap of the exponential part (default 5 s).
  duration wait_max() const noexcept { return wait_max_; }
  /// Maximum random addition (default 1 s).
  duration wait_jitter() const noexcept { return wait_jitter_; }
  /// Growth factor (default 2).
  double wait_exp_base() const noexcept { return wait_exp_base_; }
  /// The jitter strategy (default additive).
  stamina::jitter jitter() const noexcept { return jitter_; }
  /// Per-attempt time limit of async calls; nullopt = none (default).
  std::optional<duration> attempt_timeout() const noexcept { return attempt_timeout_; }
  /// The name reported to hooks and metrics (default empty).
  const std::string& name() const noexcept { return shared_->name; }
  /// The shared retry budget; null = none (default).
  const std::shared_ptr<retry_budget>& budget() const noexcept { return shared_->budget; }
  /// The throttle given to `throttle(...)`; null when none was given (then the name's default
  /// throttle applies, see throttle_in_effect) or when throttling was turned off.
  const std::shared_ptr<adaptive_throttle>& throttle() const noexcept { return shared_->throttle; }
  /// The throttle a call under `switches` uses: the one given to `throttle(...)`, else (unless
  /// `throttle(nullptr)` turned throttling off) the name's default throttle while default
  /// throttling is on.
  adaptive_throttle* throttle_in_effect(detail::global_config switches) const noexcept {
    const shared_parts& p = *shared_;
    if (p.throttle_set) return p.throttle.get();
    return switches.default_throttling() ? p.name_throttle : nullptr;
  }

 private:
  [[noreturn]] static void throw_invalid_attempts(long long value);

  // The parts that are not plain numbers live in one immutable block shared by copies, so a
  // policy copies with one reference-count increment and moves for free; setters replace it.
  struct shared_parts {
    retry_on on;
    std::string name;
    std::shared_ptr<retry_budget> budget;
    std::shared_ptr<adaptive_throttle> throttle;
    adaptive_throttle* name_throttle;  // default_throttle(name): lives until the process ends
    bool throttle_set;                 // throttle(...) was called
  };
  template <class Change>
  void change_shared(Change&& change);

  std::shared_ptr<const shared_parts> shared_;
  std::optional<unsigned> attempts_{10};
  std::optional<duration> timeout_{duration(45.0)};
  duration wait_initial_{0.1};
  duration wait_max_{5.0};
  duration wait_jitter_{1.0};
  double wait_exp_base_{2.0};
  stamina::jitter jitter_{jitter::additive};
  std::optional<duration> attempt_timeout_;
};

}  // namespace stamina

#endif
