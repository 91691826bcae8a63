#ifndef STAMINA_TEST_COMMON_POLICIES_HPP
#define STAMINA_TEST_COMMON_POLICIES_HPP

#include <stamina/retry_policy.hpp>

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

}  // namespace test

#endif
