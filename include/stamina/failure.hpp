#ifndef STAMINA_FAILURE_HPP
#define STAMINA_FAILURE_HPP

#include <stamina/detail/namespace.hpp>
#include <stamina/detail/system.hpp>

#include <exception>
#include <string>

STAMINA_NAMESPACE_BEGIN

/// One failed attempt: either an exception or a non-success error code.
///
/// A `failure` is cheap to copy (an `exception_ptr` and an `error_code`) and keeps the
/// exception object alive, so classifiers and hooks can inspect it after the attempt ended.
class failure {
 public:
  /// A failure carried by an exception. `e` must not be null.
  explicit failure(std::exception_ptr e) noexcept : exception_(std::move(e)) {}

  /// A failure carried by an error code. `ec` should be non-success.
  explicit failure(stamina::error_code ec) noexcept : error_(ec) {}

  /// True when the failure is an exception, false when it is an error code.
  bool is_exception() const noexcept { return exception_ != nullptr; }

  /// The exception, or null when the failure is an error code.
  std::exception_ptr exception() const noexcept { return exception_; }

  /// The error code. For an exception of type `stamina::system_error` (what
  /// `use_awaitable` throws for a failed operation) this is the exception's code, so
  /// `on_error(...)` matches both forms; for any other exception it is empty.
  stamina::error_code error() const noexcept;

  /// The exception object if it is an `E` (or derived from `E`), else null.
  template <class E>
  const E* get() const noexcept {
    if (!exception_) return nullptr;
    try {
      std::rethrow_exception(exception_);
    } catch (const E& e) {
      return &e;  // the object lives as long as exception_ does
    } catch (...) {
      return nullptr;
    }
  }

  /// One readable line: `type: what()` for exceptions, `category:value message` for codes.
  std::string describe() const;

  /// A short readable type name for metrics labels: the exception's dynamic type, or
  /// `category:value` for an error code.
  std::string type_name() const;

 private:
  std::exception_ptr exception_;
  stamina::error_code error_;
};

STAMINA_NAMESPACE_END

#endif
