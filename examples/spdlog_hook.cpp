// Retries logged through spdlog (built only when spdlog is installed).

#include <stamina/spdlog.hpp>
#include <stamina/stamina.hpp>

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <iostream>
#include <sstream>

int main() {
  using namespace std::chrono_literals;
  std::ostringstream captured;
  auto logger = std::make_shared<spdlog::logger>("retries", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  stamina::instrumentation::set_on_retry_hooks({stamina::instrumentation::spdlog_hook(logger)});
  stamina::instrumentation::set_on_give_up_hooks({stamina::instrumentation::spdlog_give_up_hook(logger)});

  int calls = 0;
  const int v = stamina::retry(
      stamina::retry_policy(stamina::on_exception<std::runtime_error>()).wait_initial(1ms).wait_jitter(0s), [&] {
        if (++calls < 3) throw std::runtime_error("flaky");
        return 5;
      });
  logger->flush();
  std::cout << captured.str();
  const std::string log = captured.str();
  const bool two_lines = std::count(log.begin(), log.end(), '\n') == 2;
  return v == 5 && two_lines && log.find("stamina.retry_scheduled") != std::string::npos ? 0 : 1;
}
