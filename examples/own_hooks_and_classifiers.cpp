// A caller that learns how its own call ended, classifiers composed with ||, the default name,
// and the log records a structured logger receives.

#include <stamina/stamina.hpp>

#include <boost/asio/error.hpp>

#include <cstdio>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace inst = stamina::instrumentation;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

struct lock_timeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Fails with a refused connection, then a lock timeout, then a reset (not retried).
int calls = 0;
int query() {
  ++calls;
  if (calls == 1) throw boost::system::system_error(asio::error::connection_refused);
  if (calls == 2) throw lock_timeout("lock wait timeout exceeded");
  throw boost::system::system_error(asio::error::connection_reset);
}

}  // namespace

int main() {
  // [log-sink]
  // A structured logger gets the level, the event and the fields, not a preformatted line
  // (JSON escaping left out for brevity).
  const inst::log_sink to_json = [](const inst::log_record& r) {
    std::string json =
        "{\"level\":" + std::to_string(static_cast<int>(r.level)) + ",\"event\":\"" + std::string(r.event) + "\"";
    for (const inst::log_field& f : r.fields) json += ",\"" + std::string(f.key) + "\":\"" + f.value + "\"";
    std::cout << json << "}\n";
  };
  inst::set_on_retry_hooks({inst::logging_hook(to_json), inst::metrics_hook()});
  inst::set_on_give_up_hooks({inst::give_up_logging_hook(to_json), inst::give_up_metrics_hook()});
  // [log-sink]

  // [own-hooks]
  // Codes and exception types in one classifier: the first part that says "retry" decides.
  const stamina::retry_on transient =
      stamina::on_error(asio::error::connection_refused) || stamina::on_exception<lock_timeout>();
  std::optional<stamina::give_up_details> ended;        // a value: safe to keep after the call
  const auto policy = stamina::retry_policy(transient)  // named "own_hooks_and_classifiers.cpp:<line>"
                          .wait_initial(10ms)
                          .wait_jitter(0s)
                          .on_give_up([&](const stamina::give_up_details& d) { ended = d; });
  try {
    stamina::retry(policy, query);
  } catch (const boost::system::system_error& e) {
    std::printf("%s after %u attempts: %s (%s)\n", policy.name().c_str(), ended->attempts,
                std::string(stamina::to_string(ended->reason)).c_str(), e.code().message().c_str());
  }
  // [own-hooks]
  inst::reset_on_retry_hooks();
  inst::reset_on_give_up_hooks();
  return calls == 3 && ended && ended->reason == stamina::give_up_reason::not_retryable && ended->attempts == 3 &&
                 policy.name().rfind("own_hooks_and_classifiers.cpp:", 0) == 0
             ? 0
             : 1;
}
