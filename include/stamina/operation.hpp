#ifndef STAMINA_OPERATION_HPP
#define STAMINA_OPERATION_HPP

#include <stamina/detail/async_op_traits.hpp>
#include <stamina/detail/namespace.hpp>

STAMINA_NAMESPACE_BEGIN

/// The first form of operation `async_retry` and `async_hedge` accept: `op()` returning
/// `asio::awaitable<T>`; failures are exceptions. Also `op(ctx)` with a
/// `const stamina::attempt_context&` (the attempt's context, see attempt_context.hpp).
template <class Op>
concept awaitable_operation = detail::awaitable_op<Op> || detail::context_awaitable_op<Op>;

/// The second form: `op(token)` starting one Asio operation with `token`, whose completion
/// signature begins with `error_code` or `std::exception_ptr`; failures are that argument.
/// Also `op(ctx, token)` with a `const stamina::attempt_context&` (as above).
template <class Op>
concept token_operation = detail::token_op<Op> || detail::context_token_op<Op>;

STAMINA_NAMESPACE_END

#endif
