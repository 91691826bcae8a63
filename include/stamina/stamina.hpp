#ifndef STAMINA_STAMINA_HPP
#define STAMINA_STAMINA_HPP

// Umbrella header: everything in stamina.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/async_hedge.hpp>
#include <stamina/async_retry.hpp>
#include <stamina/attempt_context.hpp>
#include <stamina/backoff.hpp>
#include <stamina/circuit_breaker.hpp>
#include <stamina/concurrency_limit.hpp>
#include <stamina/decision.hpp>
#include <stamina/duration.hpp>
#include <stamina/error.hpp>
#include <stamina/failure.hpp>
#include <stamina/fallback.hpp>
#include <stamina/give_up_reason.hpp>
#include <stamina/global.hpp>
#include <stamina/hedge_budget.hpp>
#include <stamina/hedging_policy.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/jitter.hpp>
#include <stamina/layer_headers.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_after.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>
#include <stamina/retry_on.hpp>
#include <stamina/retry_policy.hpp>
#include <stamina/version.hpp>

#endif
