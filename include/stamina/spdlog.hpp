#ifndef STAMINA_SPDLOG_HPP
#define STAMINA_SPDLOG_HPP

// Optional adapter: log scheduled retries and give-ups through spdlog. Header-only; include
// it only if your project uses spdlog (Debian: libspdlog-dev). Not part of stamina.hpp.

#include <stamina/detail/namespace.hpp>
#include <stamina/instrumentation.hpp>

#include <spdlog/logger.h>

#include <memory>
#include <string_view>

STAMINA_NAMESPACE_BEGIN
namespace instrumentation {

/// An on-retry hook writing the `stamina.retry_scheduled ...` line to `logger` at `level`.
inline on_retry_hook spdlog_hook(std::shared_ptr<spdlog::logger> logger,
                                 spdlog::level::level_enum level = spdlog::level::warn) {
  return logging_hook([logger = std::move(logger), level](std::string_view line) { logger->log(level, "{}", line); });
}

/// An on-give-up hook writing the `stamina.gave_up ...` line to `logger` at `level`.
inline on_give_up_hook spdlog_give_up_hook(std::shared_ptr<spdlog::logger> logger,
                                           spdlog::level::level_enum level = spdlog::level::err) {
  return give_up_logging_hook(
      [logger = std::move(logger), level](std::string_view line) { logger->log(level, "{}", line); });
}

}  // namespace instrumentation
STAMINA_NAMESPACE_END

#endif
