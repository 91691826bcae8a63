#ifndef STAMINA_RESULT_TYPED_HPP
#define STAMINA_RESULT_TYPED_HPP

#include <stamina/detail/namespace.hpp>

#include <utility>

STAMINA_NAMESPACE_BEGIN

/// A policy whose `on_result` predicate's parameter types the compiler still knows: what
/// `on_result(pred)` returns when called on a temporary policy, e.g.
/// `auto policy = stamina::retry_policy(on).attempts(3).on_result([](int status) { ... });`.
/// It is the policy (it derives from it, and converts to it). Passed as such to `retry`,
/// `async_retry` or `async_hedge`, the predicate's types are checked against the operation's
/// success values at compile time; a plain policy with `on_result` is checked before the first
/// attempt (`std::invalid_argument`). A setter called after `on_result` returns the plain policy.
template <class Policy, class Values>
class result_typed : public Policy {
 public:
  /// The predicate's parameter types, decayed, as a `std::tuple`.
  using values = Values;
  /// Takes over `policy`.
  explicit result_typed(Policy&& policy) noexcept : Policy(std::move(policy)) {}
};

STAMINA_NAMESPACE_END

#endif
