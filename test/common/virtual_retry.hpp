#ifndef STAMINA_TEST_COMMON_VIRTUAL_RETRY_HPP
#define STAMINA_TEST_COMMON_VIRTUAL_RETRY_HPP

// The blocking retry on virtual time: its waits advance the mock clock instead of sleeping.

#include <common/mock_clock.hpp>
#include <stamina/retry.hpp>

namespace test {

struct virtual_sleeper {
  bool operator()(stamina::duration d) const {
    mock_clock::advance(d);
    return true;
  }
};

template <class F>
auto retry_virtual(const stamina::retry_policy& p, F&& f) {
  return stamina::detail::retry_with<mock_clock>(p, virtual_sleeper{}, f);
}

}  // namespace test

#endif
