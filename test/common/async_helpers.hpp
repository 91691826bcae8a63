#ifndef STAMINA_TEST_COMMON_ASYNC_HELPERS_HPP
#define STAMINA_TEST_COMMON_ASYNC_HELPERS_HPP

#include <common/mock_clock.hpp>
#include <stamina/async_retry.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>
#include <boost/test/framework.hpp>
#include <boost/test/tree/test_unit.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace test {

// async_retry on virtual time.
template <class Ex, class Op, class Token>
auto async_retry_virtual(Ex&& ex, stamina::retry_policy policy, Op op, Token&& token) {
  return stamina::detail::async_retry_with_clock<mock_clock>(std::forward<Ex>(ex), std::move(policy), std::move(op),
                                                             std::forward<Token>(token));
}

// Set while an initiating function runs, so a handler can tell it was called inline.
inline bool& initiating() {
  static thread_local bool flag = false;
  return flag;
}

template <class F>
auto initiate(F&& f) {
  initiating() = true;
  struct reset {
    ~reset() { initiating() = false; }
  } r;
  return f();
}

struct completion_record {
  int calls = 0;
  bool called_inline = false;
  bool destroyed_uncalled = false;
  // Set by tests that destroy or stop an io_context with calls pending: there, a handler
  // destroyed without being called is the correct outcome.
  bool may_be_abandoned = false;
};

// Violations of the exactly-once rule seen by any exactly_once handler, on any thread. The
// global fixture in main.cpp fails the test module when it is not zero (handlers may run on
// pool threads, where Boost.Test assertions must not be used).
inline std::atomic<int>& handler_violations() {
  static std::atomic<int> count{0};
  return count;
}

// A vector under a mutex, for violations reported from any thread.
class locked_names {
 public:
  class guard {
   public:
    explicit guard(locked_names& n) : lock_(n.mutex_), names_(n.names_) {}
    std::vector<std::string>* operator->() { return &names_; }
    std::vector<std::string>& operator*() { return names_; }

   private:
    std::lock_guard<std::mutex> lock_;
    std::vector<std::string>& names_;
  };
  guard lock() { return guard(*this); }

 private:
  std::mutex mutex_;
  std::vector<std::string> names_;
};
inline locked_names& violations_by_test_case() {
  static locked_names names;
  return names;
}

// The test cases in which violations happened, to name them when the module ends.
inline std::vector<std::string> violating_test_cases() { return *violations_by_test_case().lock(); }

// The running test case's name (violations may be seen on pool threads: a read of Boost.Test's
// current unit, no assertion).
inline std::string current_test_case_name() {
  if (!boost::unit_test::framework::test_in_progress()) return "(outside a test case)";
  return boost::unit_test::framework::current_test_case().full_name();
}

inline void report_violation(const char* what) {
  ++handler_violations();
  const std::string where = current_test_case_name();
  violations_by_test_case().lock()->push_back(where);
  std::fprintf(stderr, "exactly_once: completion handler %s (in %s)\n", what, where.c_str());
}

// A completion handler that records how often it ran, whether it ran inside the initiating
// function, and whether the last owner of it was destroyed without calling it; each of those
// (a second call, an inline call, destruction without a call) is a reported violation.
template <class F>
class exactly_once {
 public:
  exactly_once(std::shared_ptr<completion_record> rec, F f) : rec_(std::move(rec)), f_(std::move(f)) {}
  exactly_once(exactly_once&& o) noexcept : rec_(std::move(o.rec_)), f_(std::move(o.f_)) {}
  exactly_once(const exactly_once&) = delete;
  ~exactly_once() {
    if (rec_ && rec_->calls == 0) {
      rec_->destroyed_uncalled = true;
      if (!rec_->may_be_abandoned) report_violation("destroyed without being called");
    }
  }
  template <class... Args>
  void operator()(Args&&... args) {
    if (initiating()) {
      rec_->called_inline = true;
      report_violation("called inside the initiating function");
    }
    if (++rec_->calls > 1) report_violation("called more than once");
    f_(std::forward<Args>(args)...);
  }

 private:
  std::shared_ptr<completion_record> rec_;
  F f_;
};

template <class F>
exactly_once<F> once(const std::shared_ptr<completion_record>& rec, F f) {
  return exactly_once<F>(rec, std::move(f));
}

// An io_context that must have no work left when the test is done with it: a call that
// completed must leave no timer, handler or operation behind.
struct io_fixture {
  boost::asio::io_context ctx;
  io_fixture() = default;
  io_fixture(const io_fixture&) = delete;
  io_fixture& operator=(const io_fixture&) = delete;
  ~io_fixture() {
    ctx.restart();
    ctx.poll();
    if (!ctx.stopped()) report_leftover_work();
  }
  static void report_leftover_work() {
    ++handler_violations();
    const std::string where = current_test_case_name();
    violations_by_test_case().lock()->push_back(where);
    std::fprintf(stderr, "io_fixture: work left in the io_context after the test (in %s)\n", where.c_str());
  }
};

// A token op that completes (through post, never inline) with the codes a script gives.
struct scripted_op {
  boost::asio::io_context* ctx;
  std::function<boost::system::error_code(int)> script;  // attempt number (from 1) -> result
  std::shared_ptr<int> calls = std::make_shared<int>(0);

  template <class Token>
  auto operator()(Token&& token) const {
    const int n = ++*calls;
    return boost::asio::post(*ctx, boost::asio::append(std::forward<Token>(token), script(n), n * 10));
  }
};

// The error code of a completion's first argument, whichever form it takes: an error_code, or
// an exception_ptr holding a system_error (any other exception reads as `fault`, which no test
// expects, so it shows up as a mismatch).
inline boost::system::error_code code_of(const boost::system::error_code& ec) { return ec; }
inline boost::system::error_code code_of(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return se.code();
  } catch (...) {
    return boost::asio::error::fault;
  }
}

}  // namespace test

#endif
