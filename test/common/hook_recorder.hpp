#ifndef STAMINA_TEST_COMMON_HOOK_RECORDER_HPP
#define STAMINA_TEST_COMMON_HOOK_RECORDER_HPP

#include <stamina/instrumentation.hpp>

#include <mutex>
#include <string>
#include <vector>

namespace test {

// Installs hooks that record every call, and restores "no hooks" on destruction.
class hook_recorder {
 public:
  struct retry_call {
    std::string name;
    unsigned retry_num;
    double wait_for;
    double waited_so_far;
    std::string caused_by;
  };
  struct give_up_call {
    std::string name;
    stamina::give_up_reason reason;
    unsigned attempts;
    unsigned held_back = 0;
    std::string caused_by{};
  };

  hook_recorder() {
    stamina::instrumentation::set_on_retry_hooks({[this](const stamina::retry_details& d) {
      std::lock_guard lock(mutex_);
      retries_.push_back(
          {std::string(d.name), d.retry_num, d.wait_for.count(), d.waited_so_far.count(), d.caused_by.describe()});
    }});
    stamina::instrumentation::set_on_give_up_hooks({[this](const stamina::give_up_details& d) {
      std::lock_guard lock(mutex_);
      give_ups_.push_back({std::string(d.name), d.reason, d.attempts, d.held_back, d.caused_by.describe()});
    }});
  }
  ~hook_recorder() {
    stamina::instrumentation::set_on_retry_hooks({});
    stamina::instrumentation::set_on_give_up_hooks({});
  }
  hook_recorder(const hook_recorder&) = delete;
  hook_recorder& operator=(const hook_recorder&) = delete;

  std::vector<retry_call> retries() const {
    std::lock_guard lock(mutex_);
    return retries_;
  }
  std::vector<give_up_call> give_ups() const {
    std::lock_guard lock(mutex_);
    return give_ups_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<retry_call> retries_;
  std::vector<give_up_call> give_ups_;
};

}  // namespace test

#endif
