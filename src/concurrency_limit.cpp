#include <stamina/concurrency_limit.hpp>

#include "fork_safety.hpp"
#include "immortal.hpp"
#include "settings.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <vector>

#if defined(__unix__)
#include <pthread.h>
#endif

STAMINA_NAMESPACE_BEGIN

namespace detail {

void limit_estimator::on_sample(double rtt, double in_flight, bool dropped, bool failure) noexcept {
  if (failure && !(short_rtt_ > 0 && rtt >= long_rtt_)) return;  // a failure faster than usual
  if (dropped) {
    // No answer in time: the dependency's queue is already too long to measure.
    limit_ = std::max(s_.min, limit_ / 2);
    return;
  }
  if (!(rtt >= 0) || !std::isfinite(rtt)) return;
  if (short_rtt_ == 0) {
    short_rtt_ = long_rtt_ = std::max(rtt, 1e-9);
    return;
  }
  short_rtt_ += (rtt - short_rtt_) * 0.3;  // the last few answers
  // The usual latency: follows a fall quickly (a quieter dependency), a rise slowly (a queue
  // that lasts becomes the new usual only after about a hundred answers).
  long_rtt_ += (short_rtt_ - long_rtt_) * (short_rtt_ < long_rtt_ ? 0.1 : 0.002);
  long_rtt_ = std::max(long_rtt_, 1e-9);
  const double gradient = std::clamp(s_.tolerance * long_rtt_ / short_rtt_, 0.5, 1.0);
  if (gradient < 1) {
    // Queueing: no more than what was out, scaled down by how much slower answers come.
    limit_ = std::max(s_.min, std::min(limit_, in_flight * gradient));
  } else if (in_flight >= limit_ / 2) {
    // In use and answered in time: room to grow (not while the callers use less than half).
    limit_ = std::min(s_.max, limit_ + 0.2 * std::sqrt(limit_));
  }
}

}  // namespace detail

namespace {

template <class T>
[[noreturn]] void invalid(const char* field, const char* rule, const T& value) {
  detail::throw_invalid_setting("concurrency_limit", field, rule, value);
}

// Every live limit's lock is held across fork() (see fork_safety.hpp), and a forked child
// starts every limit afresh: the places and the queue it inherits belong to the parent's other
// threads, which the child does not have (their attempts would never give a place back, and
// waking their waiters would touch io_contexts nobody runs).
struct live_limits {
  std::mutex list;
  std::vector<concurrency_limit*> limits;
};
void lock_all() noexcept;
void unlock_all() noexcept;
void forget_other_threads() noexcept;
live_limits& live() {
  static detail::immortal<live_limits> limits;
  static const bool held = [] {
    detail::hold_across_fork(&lock_all, &unlock_all);
#if defined(__unix__)
    // After the handlers registered above (child handlers run in registration order): the locks
    // are free again when this runs in the child.
    pthread_atfork(nullptr, nullptr, &forget_other_threads);
#endif
    return true;
  }();
  (void)held;
  return limits.get();
}
[[maybe_unused]] const bool live_made_at_load = (live(), true);  // see fork_safety.hpp

}  // namespace

// The fork handlers reach the limits' private state.
struct concurrency_limit_access {
  static std::mutex& lock(concurrency_limit& l) noexcept { return l.mutex_; }
  static void forget(concurrency_limit& l) noexcept {
    const std::lock_guard guard(l.mutex_);
    for (detail::limit_waiter* w = l.head_; w != nullptr; w = w->next) w->queued = false;
    l.head_ = l.tail_ = nullptr;
    l.waiting_ = 0;
    l.in_flight_ = 0;
    ++l.generation_;
  }
};

namespace {
void lock_all() noexcept {
  live_limits& l = live();
  l.list.lock();
  for (concurrency_limit* c : l.limits) concurrency_limit_access::lock(*c).lock();
}
void unlock_all() noexcept {
  live_limits& l = live();
  for (concurrency_limit* c : l.limits) concurrency_limit_access::lock(*c).unlock();
  l.list.unlock();
}
void forget_other_threads() noexcept {
  live_limits& l = live();
  const std::lock_guard guard(l.list);
  for (concurrency_limit* c : l.limits) concurrency_limit_access::forget(*c);
}
}  // namespace

concurrency_limit::concurrency_limit(std::string name)
    : name_(std::move(name)), clock_(&detail::monotonic_seconds), estimator_(settings_) {
  live_limits& l = live();
  const std::lock_guard lock(l.list);
  l.limits.push_back(this);
}

concurrency_limit::~concurrency_limit() {
  live_limits& l = live();
  const std::lock_guard lock(l.list);
  l.limits.erase(std::find(l.limits.begin(), l.limits.end(), this));
}

concurrency_limit& concurrency_limit::initial_limit(unsigned value) {
  if (value < settings_.min || value > settings_.max) invalid("initial_limit", "in [min_limit, max_limit]", value);
  settings_.initial = value;
  estimator_ = detail::limit_estimator(settings_);
  return *this;
}

concurrency_limit& concurrency_limit::min_limit(unsigned value) {
  if (value < 1 || value > settings_.max) invalid("min_limit", "in [1, max_limit]", value);
  settings_.min = value;
  settings_.initial = std::clamp(settings_.initial, settings_.min, settings_.max);
  estimator_ = detail::limit_estimator(settings_);
  return *this;
}

concurrency_limit& concurrency_limit::max_limit(unsigned value) {
  if (value < settings_.min || value > 100000) invalid("max_limit", "in [min_limit, 100000]", value);
  settings_.max = value;
  settings_.initial = std::clamp(settings_.initial, settings_.min, settings_.max);
  estimator_ = detail::limit_estimator(settings_);
  return *this;
}

concurrency_limit& concurrency_limit::tolerance(double value) {
  if (!std::isfinite(value) || value < 1.1 || value > 100) invalid("tolerance", "finite and in [1.1, 100]", value);
  settings_.tolerance = value;
  estimator_ = detail::limit_estimator(settings_);
  return *this;
}

concurrency_limit& concurrency_limit::clock(clock_function now) {
  if (now == nullptr) invalid("clock", "a function", "null");
  clock_ = now;
  return *this;
}

unsigned concurrency_limit::limit() const {
  const std::lock_guard lock(mutex_);
  return static_cast<unsigned>(estimator_.limit());
}

unsigned concurrency_limit::in_flight() const {
  const std::lock_guard lock(mutex_);
  return in_flight_;
}

std::size_t concurrency_limit::waiting() const {
  const std::lock_guard lock(mutex_);
  return waiting_;
}

bool concurrency_limit::try_acquire(std::uint32_t* ticket) noexcept {
  const std::lock_guard lock(mutex_);
  if (head_ != nullptr || in_flight_ >= static_cast<unsigned>(estimator_.limit())) return false;
  ++in_flight_;
  if (ticket != nullptr) *ticket = generation_;
  return true;
}

bool concurrency_limit::acquire_or_wait(detail::limit_waiter& w) noexcept {
  const std::lock_guard lock(mutex_);
  w.granted = false;
  if (head_ == nullptr && in_flight_ < static_cast<unsigned>(estimator_.limit())) {
    ++in_flight_;
    w.granted = true;
    w.ticket = generation_;
    return true;
  }
  w.next = nullptr;
  w.prev = tail_;
  (tail_ != nullptr ? tail_->next : head_) = &w;
  tail_ = &w;
  w.queued = true;
  ++waiting_;
  return false;
}

bool concurrency_limit::withdraw(detail::limit_waiter& w) noexcept {
  const std::lock_guard lock(mutex_);
  if (!w.queued) return false;
  (w.prev != nullptr ? w.prev->next : head_) = w.next;
  (w.next != nullptr ? w.next->prev : tail_) = w.prev;
  w.queued = false;
  --waiting_;
  // Leaving the head of the queue may let the next one in (a place freed while it waited).
  grant_waiters();
  return true;
}

void concurrency_limit::release(std::uint32_t ticket, std::optional<double> sent_at,
                                detail::limit_sample kind) noexcept {
  const bool sampled = sent_at && kind != detail::limit_sample::none;
  const double now = sampled ? clock_() : 0;
  const std::lock_guard lock(mutex_);
  if (ticket != generation_) return;  // a place of the parent's, given back in a forked child
  if (sampled)
    estimator_.on_sample(now - *sent_at, in_flight_, kind == detail::limit_sample::drop,
                         kind == detail::limit_sample::failure);
  if (in_flight_ > 0) --in_flight_;
  grant_waiters();
}

void concurrency_limit::release(std::optional<double> sent_at, bool dropped) noexcept {
  std::uint32_t current = 0;
  {
    const std::lock_guard lock(mutex_);
    current = generation_;
  }
  release(current, sent_at, dropped ? detail::limit_sample::drop : detail::limit_sample::success);
}

void concurrency_limit::grant_waiters() noexcept {
  while (head_ != nullptr && in_flight_ < static_cast<unsigned>(estimator_.limit())) {
    detail::limit_waiter& w = *head_;
    head_ = w.next;
    (head_ != nullptr ? head_->prev : tail_) = nullptr;
    w.queued = false;
    w.granted = true;
    w.ticket = generation_;
    --waiting_;
    ++in_flight_;
    w.wake(w);
  }
}

namespace {
// A blocked thread's place in the queue.
struct blocking_waiter : detail::limit_waiter {
  std::condition_variable_any cv;
  static void wake_thread(detail::limit_waiter& w) { static_cast<blocking_waiter&>(w).cv.notify_one(); }
};
}  // namespace

bool concurrency_limit::wait(std::optional<duration> max, const std::stop_token* stop, std::uint32_t* ticket) {
  blocking_waiter w;
  w.wake = &blocking_waiter::wake_thread;
  const bool granted = wait_granted(w, max, stop);
  if (granted && ticket != nullptr) *ticket = w.ticket;
  return granted;
}

bool concurrency_limit::wait_granted(detail::limit_waiter& waiter, std::optional<duration> max,
                                     const std::stop_token* stop) {
  auto& w = static_cast<blocking_waiter&>(waiter);
  if (acquire_or_wait(w)) return true;
  {
    std::unique_lock lock(mutex_);
    const auto granted = [&] { return w.granted; };
    const std::stop_token none;
    const std::stop_token& token = stop != nullptr ? *stop : none;
    if (max) {
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                 std::chrono::duration<double>(std::min(max->count(), 1e9)));
      w.cv.wait_until(lock, token, until, granted);
    } else {
      w.cv.wait(lock, token, granted);
    }
    if (w.granted) return true;
  }
  // Not granted (yet): leave the queue, unless a place came in the meantime.
  withdraw(w);
  return w.granted;
}

STAMINA_NAMESPACE_END
