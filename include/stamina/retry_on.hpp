#ifndef STAMINA_RETRY_ON_HPP
#define STAMINA_RETRY_ON_HPP

#include <stamina/decision.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/failure.hpp>

#include <stamina/detail/system.hpp>

#include <chrono>
#include <concepts>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// Type-erased, immutable classifier; shared between copies of a policy so that copying a
// policy into an async operation never allocates.
struct classifier {
  virtual ~classifier() = default;
  virtual decision classify(const failure& f) const = 0;
};

template <class F>
struct classifier_for final : classifier {
  explicit classifier_for(F f) : f_(std::move(f)) {}
  decision classify(const failure& f) const override {
    using result = std::decay_t<std::invoke_result_t<const F&, const failure&>>;
    static_assert(is_verdict_v<result>,
                  "a retry_on predicate must return bool, stamina::decision or a chrono duration "
                  "(a number is not a wait: return std::chrono::seconds(n))");
    return as_decision(f_(f));
  }
  F f_;
};

}  // namespace detail

/// Which failures are retried. Built from a predicate `f(const failure&)` returning `bool`,
/// `decision`, or a chrono duration (meaning `decision::retry_after(d)`).
class retry_on {
 public:
  /// Wraps a predicate `f(const failure&)` returning `bool`, `decision` or a chrono duration.
  template <class F>
  requires(!std::same_as<std::decay_t<F>, retry_on> && std::is_invocable_v<const std::decay_t<F>&, const failure&>)
      retry_on(F&& f)  // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload): constrained
      : impl_(std::make_shared<detail::classifier_for<std::decay_t<F>>>(std::forward<F>(f))) {}

  /// Classifies one failure.
  decision operator()(const failure& f) const { return impl_->classify(f); }

  /// Either classifier: `a` is asked first; if it says "do not retry", `b` decides. So the
  /// first part that says "retry" (and its wait) wins, e.g.
  /// `on_error(errc::timed_out) || on_exception<std::runtime_error>()`.
  friend retry_on operator||(retry_on a, retry_on b) {
    return retry_on([a = std::move(a), b = std::move(b)](const failure& f) {
      const decision first = a(f);
      return first.should_retry() ? first : b(f);
    });
  }

 private:
  std::shared_ptr<const detail::classifier> impl_;
};

/// Retry exceptions of any of the types `E...` (or derived from them).
template <class... E>
retry_on on_exception() {
  static_assert(sizeof...(E) > 0, "name at least one exception type");
  return retry_on([](const failure& f) { return f.is_exception() && ((f.get<E>() != nullptr) || ...); });
}

/// Retry failures whose error code compares equal (`==`) to one of `codes`: error codes,
/// error conditions (e.g. `boost::system::errc::timed_out`) or error enums (e.g.
/// `stamina::net::error::connection_refused`). Also matches a `stamina::system_error`
/// exception carrying such a code.
template <class... C>
retry_on on_error(C... codes) {
  static_assert(sizeof...(C) > 0, "name at least one error code");
  return retry_on([... codes = std::move(codes)](const failure& f) {
    const stamina::error_code ec = f.error();
    return detail::code_failed(ec) && ((ec == codes) || ...);
  });
}

STAMINA_NAMESPACE_END

#endif
