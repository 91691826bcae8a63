#ifndef STAMINA_DECISION_HPP
#define STAMINA_DECISION_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/duration.hpp>

STAMINA_NAMESPACE_BEGIN

/// What a classifier says about one failure.
class decision {
 public:
  /// The three answers a classifier can give.
  enum class kind : unsigned char {
    no_retry,     ///< deliver the failure now
    retry,        ///< retry with the policy's backoff
    retry_after,  ///< retry after at least `wait()`, spread after it
    overloaded,   ///< retry with the policy's backoff; the dependency said it is overloaded
    pushback      ///< deliver the failure now: the layer below retried already, or is overloaded
  };

  /// `true` = retry with the policy's backoff, `false` = deliver the failure now.
  decision(bool retry) noexcept  // NOLINT(google-explicit-constructor): predicates return bool
      : kind_(retry ? kind::retry : kind::no_retry) {}

  /// Deliver the failure now.
  static decision no_retry() noexcept { return decision(false); }
  /// Retry with the policy's backoff.
  static decision retry() noexcept { return decision(true); }

  /// Retry after at least `wait`, e.g. a server's `Retry-After`: never earlier, and spread
  /// after it by `U(0, min(wait, wait_jitter))` so that clients turned away together do not
  /// return together (the spread stays inside the deadline). A server-given wait is first capped
  /// by the policy's `max_server_wait` (5 minutes by default), so an absurd or hostile value
  /// (`+inf` included) does not park the call; the wait never extends past the policy's
  /// deadline: if it would, the call gives up (reason `deadline`). Only with
  /// `max_server_wait(std::nullopt)` and no deadline is `+inf` kept: the call then waits
  /// "forever" (the drivers saturate the wait at about a century).
  /// A default throttle counts such an answer as overload. Throws `std::invalid_argument` for
  /// a negative or NaN wait.
  static decision retry_after(duration wait);

  /// Retry with the policy's backoff, and tell the throttle the dependency is overloaded: for
  /// an answer that says so without a wait (a 429 or 503 without `Retry-After`). A plain
  /// `retry()` is a failure the dependency answered, which a throttle does not count as overload.
  static decision overloaded() noexcept { return decision(kind::overloaded, duration(0)); }

  /// Deliver the failure now, because the layer below said not to retry it: it carries a
  /// pushback marker (`parse_pushback`), or it already retried and gave up. The call gives up
  /// with `give_up_reason::pushback`, and a throttle counts the answer as overload (the layers
  /// below are failing), where a plain `no_retry()` is an answer like a 404.
  static decision pushback() noexcept { return decision(kind::pushback, duration(0)); }
  /// Which answer this is.
  kind what() const noexcept { return kind_; }
  /// True for `retry`, `retry_after` and `overloaded`.
  bool should_retry() const noexcept { return kind_ != kind::no_retry && kind_ != kind::pushback; }
  /// True for `retry_after`, `overloaded` and `pushback`: the dependency said it is overloaded.
  bool overload() const noexcept {
    return kind_ == kind::retry_after || kind_ == kind::overloaded || kind_ == kind::pushback;
  }
  /// The requested wait; meaningful only for `kind::retry_after`.
  duration wait() const noexcept { return wait_; }

 private:
  decision(kind k, duration w) noexcept : kind_(k), wait_(w) {}
  kind kind_;
  duration wait_{0};
};

STAMINA_NAMESPACE_END

#endif
