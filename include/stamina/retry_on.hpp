#ifndef STAMINA_RETRY_ON_HPP
#define STAMINA_RETRY_ON_HPP

#include <stamina/decision.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/failure.hpp>

#include <stamina/detail/system.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
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
decision classify_with(const F& f, const failure& what) {
  using result = std::decay_t<std::invoke_result_t<const F&, const failure&>>;
  static_assert(is_verdict_v<result>,
                "a retry_on predicate must return bool, stamina::decision or a chrono duration "
                "(a number is not a wait: return std::chrono::seconds(n))");
  return as_decision(f(what));
}

template <class F>
struct classifier_for final : classifier {
  explicit classifier_for(F f) : f_(std::move(f)) {}
  decision classify(const failure& f) const override { return classify_with(f_, f); }
  F f_;
};

// A predicate small and trivially copyable enough to live inside the retry_on itself (a
// stateless lambda, or one that captures a few error codes): no allocation, copies are a memcpy.
inline constexpr std::size_t inline_predicate_size = 24;
template <class F>
constexpr bool fits_inline() noexcept {
  constexpr bool fits = sizeof(F) <= inline_predicate_size;
  constexpr bool aligned = alignof(F) <= alignof(void*);
  constexpr bool small = fits && aligned;
  return small && std::is_trivially_copyable_v<F>;
}
template <class F>
inline constexpr bool is_inline_predicate = fits_inline<F>();

}  // namespace detail

/// Which failures are retried. Built from a predicate `f(const failure&)` returning `bool`,
/// `decision`, or a chrono duration (meaning `decision::retry_after(d)`). A small predicate
/// (stateless, or capturing a few error codes) is kept inside the object: making and copying a
/// `retry_on` allocates nothing; a larger one is shared between copies.
class retry_on {
 public:
  /// Wraps a predicate `f(const failure&)` returning `bool`, `decision` or a chrono duration.
  template <class F>
  requires(!std::same_as<std::decay_t<F>, retry_on> && std::is_invocable_v<const std::decay_t<F>&, const failure&>)
      retry_on(F&& f) {  // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload): constrained
    using predicate = std::decay_t<F>;
    if constexpr (detail::is_inline_predicate<predicate>) {
      ::new (static_cast<void*>(storage_)) predicate(std::forward<F>(f));
      call_ = [](const void* p, const failure& what) {
        return detail::classify_with(*static_cast<const predicate*>(p), what);
      };
      stateless_ = std::is_empty_v<predicate>;
    } else {
      ::new (static_cast<void*>(storage_))
          shared_type(std::make_shared<detail::classifier_for<predicate>>(std::forward<F>(f)));
    }
  }

  /// @cond
  // Copies and moves relocate the bytes: a small predicate is trivially copyable, and a shared
  // one is a shared_ptr, whose count a copy increments (the bits are the same either way).
  retry_on(const retry_on& other) noexcept : call_(other.call_), stateless_(other.stateless_) {
    std::memcpy(storage_, other.storage_, sizeof storage_);
    if (call_ == nullptr) ::new (static_cast<void*>(storage_)) shared_type(other.shared());
  }
  retry_on(retry_on&& other) noexcept : call_(other.call_), stateless_(other.stateless_) {
    std::memcpy(storage_, other.storage_, sizeof storage_);
    if (call_ == nullptr) ::new (static_cast<void*>(other.storage_)) shared_type();  // `other` gave its count
  }
  retry_on& operator=(const retry_on& other) noexcept {
    if (this != &other) {
      this->~retry_on();
      ::new (static_cast<void*>(this)) retry_on(other);
    }
    return *this;
  }
  retry_on& operator=(retry_on&& other) noexcept {
    if (this != &other) {
      this->~retry_on();
      ::new (static_cast<void*>(this)) retry_on(std::move(other));
    }
    return *this;
  }
  ~retry_on() {
    if (call_ == nullptr) shared().~shared_type();
  }
  /// @endcond

  /// Classifies one failure.
  decision operator()(const failure& f) const { return call_ != nullptr ? call_(storage_, f) : shared()->classify(f); }

  /// @cond
  // For a predicate without state (e.g. on_exception<E>()), what identifies it: two such
  // retry_on with the same identity classify alike. Null for any other predicate.
  const void* stateless_identity() const noexcept {
    return stateless_ ? reinterpret_cast<const void*>(call_) : nullptr;
  }
  /// @endcond

  /// Either classifier: `a` is asked first; if it says "do not retry", `b` decides. So the
  /// first part that says "retry" (and its wait) wins, e.g.
  /// `on_error(errc::timed_out) || on_exception<std::runtime_error>()`. A `pushback` from `a`
  /// wins too: the layer below said not to retry, whatever `b` would say.
  friend retry_on operator||(retry_on a, retry_on b) {
    return retry_on([a = std::move(a), b = std::move(b)](const failure& f) {
      const decision first = a(f);
      return first.should_retry() || first.what() == decision::kind::pushback ? first : b(f);
    });
  }

 private:
  using shared_type = std::shared_ptr<const detail::classifier>;
  shared_type& shared() noexcept { return *std::launder(reinterpret_cast<shared_type*>(storage_)); }
  const shared_type& shared() const noexcept { return *std::launder(reinterpret_cast<const shared_type*>(storage_)); }

  // Either a small predicate (call_ set) or a shared one (call_ null): one or the other in storage_.
  decision (*call_)(const void*, const failure&) = nullptr;
  alignas(void*) unsigned char storage_[detail::inline_predicate_size];
  bool stateless_ = false;  // a small predicate without state
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
