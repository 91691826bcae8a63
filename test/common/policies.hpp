#ifndef STAMINA_TEST_COMMON_POLICIES_HPP
#define STAMINA_TEST_COMMON_POLICIES_HPP

#include <stamina/failure.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>

namespace test {

// A failure type the tests retry on, and one they do not.
struct transient_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct derived_transient_error : transient_error {
  using transient_error::transient_error;
};
struct fatal_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline stamina::retry_policy retry_transient() {
  return stamina::retry_policy(stamina::on_exception<transient_error>());
}

// For the protocol stepped by hand: a refusal the policy below retries, a reset it does not.
inline const stamina::failure refused_failure{boost::system::error_code(boost::asio::error::connection_refused)};
inline const stamina::failure reset_failure{boost::system::error_code(boost::asio::error::connection_reset)};

// Retries refusals; waits 1 s, 2 s, 4 s ... exactly (no jitter); no deadline.
inline stamina::retry_policy refused_every_second() {
  return stamina::retry_policy(stamina::on_error(boost::asio::error::connection_refused))
      .wait_initial(std::chrono::seconds(1))
      .wait_jitter(std::chrono::seconds(0))
      .timeout(std::nullopt);
}

}  // namespace test

#endif
