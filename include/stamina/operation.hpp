#ifndef STAMINA_OPERATION_HPP
#define STAMINA_OPERATION_HPP

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/namespace.hpp>

STAMINA_NAMESPACE_BEGIN

/// The first form of operation `async_retry` and `async_hedge` accept: `op()` returning
/// `asio::awaitable<T>`; failures are exceptions.
template <class Op>
concept awaitable_operation = detail::awaitable_op<Op>;

/// The second form: `op(token)` starting one Asio operation with `token`, whose completion
/// signature begins with `error_code` or `std::exception_ptr`; failures are that argument.
template <class Op>
concept token_operation = detail::token_op<Op>;

STAMINA_NAMESPACE_END

#endif
