#ifndef STAMINA_TEST_COMMON_FORK_CHILDREN_HPP
#define STAMINA_TEST_COMMON_FORK_CHILDREN_HPP

// Forks `count` children, each running `child(n)` (true: it did its work) under a 10 s alarm, and
// counts those that hung (killed by the alarm: a lock nobody will release) and those that failed.
// For tests that fork while other threads hold the library's locks.

#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

namespace test {

struct forked_children {
  int hung = 0;
  int failed = 0;
};

template <class Child>
forked_children fork_children(int count, Child child) {
  forked_children seen;
  for (int n = 0; n < count; ++n) {
    const pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      alarm(10);
      _exit(child(n) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
      ++seen.hung;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      ++seen.failed;
  }
  return seen;
}

}  // namespace test

#endif
