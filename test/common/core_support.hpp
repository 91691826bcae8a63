#ifndef STAMINA_TEST_COMMON_CORE_SUPPORT_HPP
#define STAMINA_TEST_COMMON_CORE_SUPPORT_HPP

// The vocabulary of the tests of the value types and of the blocking API (retry_policy,
// retry_on, backoff, the switches, retry_budget, instrumentation, retry, retry_context): what they
// include, the names they use unqualified, and their small helpers.

#include <common/hook_recorder.hpp>
#include <common/policies.hpp>
#include <common/print.hpp>
#include <stamina/backoff.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/system_error.hpp>
#if !defined(STAMINA_STANDALONE_ASIO)
#include <boost/system/result.hpp>
#endif

#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using boost::system::error_code;
using stamina::backoff;
using stamina::duration;
using stamina::failure;
using stamina::give_up_reason;
using stamina::retry_policy;
namespace asio = boost::asio;
namespace inst = stamina::instrumentation;

namespace test {

inline failure transient() { return failure(std::make_exception_ptr(transient_error("boom"))); }

// The attempt limit a backoff computes for `p` under the current global switches.
inline std::optional<unsigned> effective_attempts(const retry_policy& p) {
  const backoff b(p, 1);
  return b.max_attempts();
}

inline const retry_policy& default_policy() {
  static const retry_policy p = retry_transient();
  return p;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no exception>";
}

// Captures standard error for the lifetime of the object.
class captured_stderr {
 public:
  captured_stderr() : old_(std::cerr.rdbuf(text_.rdbuf())) {}
  ~captured_stderr() { std::cerr.rdbuf(old_); }
  captured_stderr(const captured_stderr&) = delete;
  captured_stderr& operator=(const captured_stderr&) = delete;
  std::string str() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::streambuf* old_;
};

// Policies that fail fast in real time: tiny waits, no jitter.
inline stamina::retry_policy quick(stamina::retry_policy p) { return p.wait_initial(0s).wait_jitter(0s).wait_max(0s); }

inline auto fail_n_times(int& calls, int failures) {
  return [&calls, failures]() -> int {
    if (++calls <= failures) throw transient_error("down #" + std::to_string(calls));
    return calls;
  };
}

}  // namespace test

using namespace test;  // NOLINT(google-build-using-namespace): the helpers above, unqualified

#endif
