#ifndef STAMINA_SRC_FORK_SAFETY_HPP
#define STAMINA_SRC_FORK_SAFETY_HPP

#include <mutex>
#include <stamina/detail/namespace.hpp>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// The locks a child process's first retry may take (the hook registries, the log stream, the
// default metrics, the throttle registry and its throttles) are held across fork(): no other
// thread can hold one when the child is made, so the child, which has only the forking thread,
// never waits for a lock nobody will release (pthread_atfork).
//
// Each object that holds such a lock is made when the library is loaded (a namespace-scope
// `made_at_load` beside the function that makes it), not at its first use: a fork while another
// thread is inside that first use would leave the child waiting on the object's initialisation
// guard forever (a child retried in 1 of 40 forks hung so, under TSan).
void hold_across_fork(std::mutex& m) noexcept;
// Same, for a set of locks taken and released by functions (e.g. every registered throttle's).
void hold_across_fork(void (*lock)() noexcept, void (*unlock)() noexcept) noexcept;

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
