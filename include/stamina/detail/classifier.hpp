#ifndef STAMINA_DETAIL_CLASSIFIER_HPP
#define STAMINA_DETAIL_CLASSIFIER_HPP

// What a predicate may return, and the type-erased predicate of retry_policy::on_result.

#include <stamina/decision.hpp>
#include <stamina/detail/namespace.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// A classifier (`on`, `on_result`) threw or returned an invalid wait: reported like a throwing
// hook (src/instrumentation.cpp).
void report_classifier_failure() noexcept;

/// The one rule of classification, for every strategy and for `backoff`: a classifier that
/// fails (throws, or returns an invalid wait) is reported, and means "do not retry", so the
/// original failure is delivered rather than the classifier's exception.
template <class Classify>
decision classify_safely(const Classify& classify) noexcept {
  try {
    return classify();
  } catch (...) {
    report_classifier_failure();
    return decision::no_retry();
  }
}

// For a static_assert that fires only when its template is instantiated.
template <class...>
inline constexpr bool always_false = false;

template <class T>
struct is_chrono_duration : std::false_type {};
template <class R, class P>
struct is_chrono_duration<std::chrono::duration<R, P>> : std::true_type {};

// The three things a predicate may return. A number is rejected: Python's `return 2.5` would
// silently mean "retry with the normal backoff", and `return 0.0` "do not retry".
template <class R>
constexpr bool is_verdict_v = std::is_same_v<R, bool> || std::is_same_v<R, decision> || is_chrono_duration<R>::value;

template <class R>
decision as_decision(R&& r) {
  using result = std::decay_t<R>;
  if constexpr (std::is_same_v<result, decision>)
    return r;
  else if constexpr (is_chrono_duration<result>::value)
    return decision::retry_after(std::chrono::duration_cast<duration>(r));
  else
    return decision(static_cast<bool>(r));
}

// The parameter types of a predicate with one fixed signature (not a generic lambda).
template <class F>
struct fixed_parameters : fixed_parameters<decltype(&F::operator())> {};
template <class R, class... A>
struct fixed_parameters<R (*)(A...)> {
  using values = std::tuple<std::decay_t<A>...>;
  using result = std::decay_t<R>;
};
template <class R, class... A>
struct fixed_parameters<R(A...)> : fixed_parameters<R (*)(A...)> {};
template <class C, class R, class... A>
struct fixed_parameters<R (C::*)(A...)> : fixed_parameters<R (*)(A...)> {};
template <class C, class R, class... A>
struct fixed_parameters<R (C::*)(A...) const> : fixed_parameters<R (*)(A...)> {};
template <class C, class R, class... A>
struct fixed_parameters<R (C::*)(A...) noexcept> : fixed_parameters<R (*)(A...)> {};
template <class C, class R, class... A>
struct fixed_parameters<R (C::*)(A...) const noexcept> : fixed_parameters<R (*)(A...)> {};
template <class R, class... A>
struct fixed_parameters<R (*)(A...) noexcept> : fixed_parameters<R (*)(A...)> {};

template <class F>
concept has_fixed_parameters = requires {
  &F::operator();
}
|| std::is_function_v<std::remove_pointer_t<F>>;

// The predicate of on_result, erased: the op's success values arrive as a tuple of pointers
// to their decayed types; the types are checked once, before the first attempt.
struct result_classifier {
  virtual ~result_classifier() = default;
  // typeid(std::tuple<decayed parameter types...>)
  virtual const std::type_info& values() const noexcept = 0;
  // `values` points at a std::tuple<const P*...> for the parameter types P.
  virtual decision classify(const void* values) const = 0;
};

template <class F>
struct result_classifier_for final : result_classifier {
  using parameters = fixed_parameters<F>;
  explicit result_classifier_for(F f) : f_(std::move(f)) {}
  const std::type_info& values() const noexcept override { return typeid(typename parameters::values); }
  decision classify(const void* values) const override {
    return call(values, std::type_identity<typename parameters::values>{});
  }

 private:
  template <class... P>
  decision call(const void* values, std::type_identity<std::tuple<P...>> /*tag*/) const {
    const auto& pointers = *static_cast<const std::tuple<const P*...>*>(values);
    return std::apply([this](const P*... v) { return as_decision(f_(*v...)); }, pointers);
  }
  F f_;
};

// The success values an on_result predicate takes (std::tuple of decayed types); void when it
// has no fixed parameters (then make_result_classifier says why).
template <class F, bool = has_fixed_parameters<F>>
struct result_values_of {
  using type = void;
};
template <class F>
struct result_values_of<F, true> {
  using type = typename fixed_parameters<F>::values;
};

// What `on_result(pred)` of either policy stores, once the predicate's shape is checked.
template <class F>
std::shared_ptr<const result_classifier> make_result_classifier(F pred) {
  static_assert(has_fixed_parameters<F>,
                "stamina: on_result: the predicate needs fixed parameter types (no auto), which are checked against "
                "the operation's success values");
  if constexpr (has_fixed_parameters<F>) {
    static_assert(is_verdict_v<typename fixed_parameters<F>::result>,
                  "an on_result predicate must return bool, stamina::decision or a chrono duration (a number is not "
                  "a wait: return std::chrono::seconds(n))");
    return std::make_shared<const result_classifier_for<F>>(std::move(pred));
  } else {
    return nullptr;
  }
}

// "(int, std::string)", for the message of a mismatch.
std::string describe_values(const std::type_info& tuple_type);

[[noreturn]] void throw_result_mismatch(const std::type_info& predicate, const std::type_info& values);

// An on_result predicate must take exactly the op's success values: checked by every driver
// before the first attempt (the policy is not typed by the op, so this is the first moment the
// two types meet).
template <class... V>
void check_result_values(const result_classifier* judge) {
  using values = std::tuple<std::decay_t<V>...>;
  if (judge != nullptr && judge->values() != typeid(values)) throw_result_mismatch(judge->values(), typeid(values));
}

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
