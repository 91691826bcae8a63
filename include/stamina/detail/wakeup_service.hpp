#ifndef STAMINA_DETAIL_WAKEUP_SERVICE_HPP
#define STAMINA_DETAIL_WAKEUP_SERVICE_HPP

// One timer per execution context for every hedged call's delay and deadline. Arming and
// cancelling an Asio timer costs a reactor update (a system call when the earliest expiry
// changes) and an extra handler; a hedged call usually completes long before its delay, so it
// would pay that on every call. Here a call's wake-up is a heap entry under a mutex, and the
// one real timer is re-armed only when the earliest entry moves earlier.
//
// The timer belongs to no call: it runs on the context's own executor (untracked, no strand),
// so a busy strand or a work-tracking executor of one call never delays another call's
// wake-up or keeps run() going; each wake-up is handed to its call's own executor (fire()).

#include <stamina/detail/asio.hpp>
#include <stamina/detail/namespace.hpp>

#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

STAMINA_NAMESPACE_BEGIN
namespace detail {

// A wake-up slot inside a client's state; scheduled at most once at a time.
template <class Clock>
struct wakeup {
  virtual ~wakeup() = default;
  // The time came: `keep` is the client's state (what schedule() was given), `generation`
  // the one passed to schedule(). Runs outside the service's lock, on the timer's executor.
  virtual void fire(std::shared_ptr<void> keep, unsigned generation) = 0;

  static constexpr std::size_t unscheduled = std::numeric_limits<std::size_t>::max();
  std::size_t index = unscheduled;  // position in the heap; guarded by the service's mutex
};

template <class Clock>
class wakeup_service : public stamina::net::execution_context::service {
  using timer_type =
      stamina::net::basic_waitable_timer<Clock, stamina::net::wait_traits<Clock>, stamina::net::any_io_executor>;
  using time_point = typename Clock::time_point;

  struct entry {
    time_point when;
    wakeup<Clock>* slot;
    std::shared_ptr<void> keep;  // the client lives while it is scheduled
    unsigned generation;
  };

 public:
  static inline stamina::net::execution_context::id id;

  explicit wakeup_service(stamina::net::execution_context& ctx) : stamina::net::execution_context::service(ctx) {}

  // Schedules `slot` at `when` (replacing an earlier schedule). `ex` is an executor of this
  // context, used only if the context has no executor of its own that the timer can run on.
  template <class Executor>
  void schedule(wakeup<Clock>& slot, time_point when, std::shared_ptr<void> keep, unsigned generation,
                const Executor& ex) {
    std::shared_ptr<void> replaced;
    std::lock_guard lock(mutex_);
    if (shut_down_) return;  // the context is going away: so is the call
    if (slot.index != wakeup<Clock>::unscheduled) replaced = remove(slot.index);
    heap_.push_back(entry{when, &slot, std::move(keep), generation});
    slot.index = heap_.size() - 1;
    sift_up(slot.index);
    if (!armed_ || when < armed_until_) {
      if (!timer_) timer_.emplace(context_executor(ex));
      arm(when);
    }
  }

  // Unschedules `slot` if it is scheduled (its fire() is then not called, unless it was
  // already taken off the heap to be fired: clients check the generation).
  void cancel(wakeup<Clock>& slot) noexcept {
    std::shared_ptr<void> released;  // the client may be released only outside the lock
    std::lock_guard lock(mutex_);
    if (slot.index != wakeup<Clock>::unscheduled) released = remove(slot.index);
    if (heap_.empty() && armed_ && !idle_check_pending_ && !shut_down_) {
      // Nothing is waiting: the armed timer would keep run() from returning. Disarm it, but
      // from a posted check, so that a caller starting its next call at once (a loop) keeps
      // the timer armed instead of paying to re-arm it every call.
      idle_check_pending_ = true;
      try {
        stamina::net::post(timer_->get_executor(), [this] { disarm_if_idle(); });
      } catch (...) {
        idle_check_pending_ = false;  // out of memory: the timer fires once, for nothing
      }
    }
  }

 private:
  void shutdown() override {
    std::vector<entry> dropped;
    std::optional<timer_type> timer;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      armed_ = false;  // a call cancelled later (from a destructor) has no timer to disarm
      for (entry& e : heap_) e.slot->index = wakeup<Clock>::unscheduled;
      dropped.swap(heap_);
      timer.swap(timer_);
    }
    // Clients (and the timer) are destroyed here, outside the lock: their destructors cancel.
  }

  // An executor of the context itself for the timer: untracked, and without the strand of the
  // call that happens to arm the timer first. Known kinds are unwrapped (strands, io_context's
  // and thread_pool's executors, also inside any_io_executor); another executor is only made
  // untracked.
  template <class Executor>
  static stamina::net::any_io_executor context_executor(const Executor& ex) {
    using io_executor = stamina::net::io_context::executor_type;
    using pool_executor = stamina::net::thread_pool::executor_type;
    if constexpr (requires { ex.get_inner_executor(); }) {  // a strand
      return context_executor(ex.get_inner_executor());
    } else if constexpr (std::is_same_v<Executor, stamina::net::any_io_executor>) {
      if (const auto* io = ex.template target<io_executor>()) return context_executor(*io);
      if (const auto* s = ex.template target<stamina::net::strand<io_executor>>()) return context_executor(*s);
      if (const auto* s = ex.template target<stamina::net::strand<stamina::net::any_io_executor>>())
        return context_executor(*s);
      if (const auto* pool = ex.template target<pool_executor>()) return context_executor(*pool);
      if (const auto* s = ex.template target<stamina::net::strand<pool_executor>>()) return context_executor(*s);
      return stamina::net::prefer(ex, stamina::net::execution::outstanding_work.untracked);
    } else {
      return stamina::net::prefer(ex, stamina::net::execution::outstanding_work.untracked);
    }
  }

  void disarm_if_idle() {
    std::lock_guard lock(mutex_);
    idle_check_pending_ = false;
    if (!heap_.empty() || !armed_ || shut_down_) return;
    armed_ = false;
    ++arm_generation_;
    timer_->cancel();
  }

  void arm(time_point when) {
    armed_ = true;
    armed_until_ = when;
    timer_->expires_at(when);
    timer_->async_wait([this, generation = ++arm_generation_](const stamina::error_code& ec) {
      if (ec != stamina::net::error::operation_aborted) expired(generation);
    });
  }

  void expired(unsigned generation) {
    std::vector<entry> due;
    {
      std::lock_guard lock(mutex_);
      if (generation != arm_generation_ || shut_down_) return;  // re-armed since
      armed_ = false;
      const time_point now = Clock::now();
      while (!heap_.empty() && !(now < heap_.front().when)) {
        const std::size_t last = heap_.size() - 1;
        heap_.front().slot->index = wakeup<Clock>::unscheduled;
        due.push_back(std::move(heap_.front()));
        if (last != 0) {
          heap_.front() = std::move(heap_[last]);
          heap_.front().slot->index = 0;
        }
        heap_.pop_back();
        if (!heap_.empty()) sift_down(0);
      }
      if (!heap_.empty()) arm(heap_.front().when);
    }
    for (entry& e : due) e.slot->fire(std::move(e.keep), e.generation);
  }

  // Removes heap_[i]; returns the client reference it held.
  std::shared_ptr<void> remove(std::size_t i) noexcept {
    std::shared_ptr<void> keep = std::move(heap_[i].keep);
    heap_[i].slot->index = wakeup<Clock>::unscheduled;
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = std::move(heap_[last]);
      heap_[i].slot->index = i;
      heap_.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap_.pop_back();
    }
    return keep;
  }

  void swap_entries(std::size_t a, std::size_t b) noexcept {
    std::swap(heap_[a], heap_[b]);
    heap_[a].slot->index = a;
    heap_[b].slot->index = b;
  }
  void sift_up(std::size_t i) noexcept {
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!(heap_[i].when < heap_[parent].when)) return;
      swap_entries(i, parent);
      i = parent;
    }
  }
  void sift_down(std::size_t i) noexcept {
    for (;;) {
      std::size_t smallest = i;
      for (std::size_t child : {2 * i + 1, 2 * i + 2})
        if (child < heap_.size() && heap_[child].when < heap_[smallest].when) smallest = child;
      if (smallest == i) return;
      swap_entries(i, smallest);
      i = smallest;
    }
  }

  std::mutex mutex_;
  std::vector<entry> heap_;  // a binary min-heap on `when`
  std::optional<timer_type> timer_;
  bool armed_ = false;
  time_point armed_until_{};
  unsigned arm_generation_ = 0;
  bool shut_down_ = false;
  bool idle_check_pending_ = false;
};

}  // namespace detail
STAMINA_NAMESPACE_END

#endif
