#ifndef STAMINA_SRC_IMMORTAL_HPP
#define STAMINA_SRC_IMMORTAL_HPP

#include <new>
#include <stamina/detail/namespace.hpp>
#include <utility>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// A process-wide object that is never destroyed: a retry may run in the destructor of a static
// object of the user's, after every static of the library would have been destroyed. Its
// storage is static; what it allocates stays reachable from there (no leak is reported).
template <class T>
class immortal {
 public:
  template <class... Args>
  explicit immortal(Args&&... args) {
    ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);
  }
  immortal(const immortal&) = delete;
  immortal& operator=(const immortal&) = delete;
  ~immortal() = default;  // trivial: T's destructor never runs

  T& get() noexcept { return *std::launder(reinterpret_cast<T*>(storage_)); }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
