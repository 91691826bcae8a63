#include <stamina/circuit_breaker.hpp>
#include <stamina/instrumentation.hpp>

#include "fork_safety.hpp"
#include "immortal.hpp"
#include "settings.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

STAMINA_NAMESPACE_BEGIN

namespace {

using detail::monotonic_seconds;

template <class T>
[[noreturn]] void invalid(const char* field, const char* rule, const T& value) {
  detail::throw_invalid_setting("circuit_breaker", field, rule, value);
}

constexpr double one_day = 86400;

}  // namespace

namespace {

// Every live breaker and set, so that their locks are held across fork(): a child made while
// another thread was inside a breaker (or a set) can still use it. Lock order, on every path:
// the sets' list, each set, the breakers' list, each breaker (a set makes breakers under its lock).
struct live_objects {
  std::mutex sets_list;
  std::vector<std::mutex*> sets;
  std::mutex breakers_list;
  std::vector<std::mutex*> breakers;
};

void lock_all() noexcept;
void unlock_all() noexcept;

live_objects& live() {
  static detail::immortal<live_objects> objects;
  static const bool held = (detail::hold_across_fork(&lock_all, &unlock_all), true);
  (void)held;
  return objects.get();
}
[[maybe_unused]] const bool live_made_at_load = (live(), true);  // see fork_safety.hpp

void lock_all() noexcept {
  live_objects& l = live();
  l.sets_list.lock();
  for (std::mutex* m : l.sets) m->lock();
  l.breakers_list.lock();
  for (std::mutex* m : l.breakers) m->lock();
}

void unlock_all() noexcept {
  live_objects& l = live();
  for (auto it = l.breakers.rbegin(); it != l.breakers.rend(); ++it) (*it)->unlock();
  l.breakers_list.unlock();
  for (auto it = l.sets.rbegin(); it != l.sets.rend(); ++it) (*it)->unlock();
  l.sets_list.unlock();
}

void enroll(std::mutex& list, std::vector<std::mutex*>& members, std::mutex& m) {
  const std::lock_guard guard(list);
  members.push_back(&m);
}

void leave(std::mutex& list, std::vector<std::mutex*>& members, std::mutex& m) noexcept {
  const std::lock_guard guard(list);
  members.erase(std::remove(members.begin(), members.end(), &m), members.end());
}

std::uint64_t next_instance() noexcept {
  static std::atomic<std::uint64_t> made{0};
  return made.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace

circuit_breaker::circuit_breaker(std::string name)
    : name_(std::move(name)), instance_(next_instance()), clock_(&monotonic_seconds) {
  live_objects& l = live();
  enroll(l.breakers_list, l.breakers, mutex_);
}

circuit_breaker::~circuit_breaker() {
  live_objects& l = live();
  leave(l.breakers_list, l.breakers, mutex_);
}

circuit_breaker& circuit_breaker::failure_ratio(double ratio) {
  if (!(ratio > 0 && ratio <= 1)) invalid("failure_ratio", "in (0, 1]", ratio);
  failure_ratio_ = ratio;
  return *this;
}

circuit_breaker& circuit_breaker::minimum_calls(unsigned calls) {
  if (calls < 1 || calls > 1000000) invalid("minimum_calls", "in [1, 1000000]", calls);
  minimum_calls_ = calls;
  return *this;
}

circuit_breaker& circuit_breaker::window(duration length) {
  if (!(length.count() > 0 && length.count() <= one_day)) invalid("window", "in (0, 86400] seconds", length.count());
  window_ = length.count();
  return *this;
}

circuit_breaker& circuit_breaker::open_for(duration length) {
  if (!(length.count() > 0 && length.count() <= one_day)) invalid("open_for", "in (0, 86400] seconds", length.count());
  open_for_ = length.count();
  return *this;
}

circuit_breaker& circuit_breaker::probes(unsigned count) {
  if (count < 1 || count > 1000) invalid("probes", "in [1, 1000]", count);
  probes_ = count;
  return *this;
}

circuit_breaker& circuit_breaker::clock(clock_function now) noexcept {
  clock_ = now != nullptr ? now : &monotonic_seconds;
  return *this;
}

circuit_breaker& circuit_breaker::on_transition(std::function<void(const transition&)> hook) {
  on_transition_ = std::move(hook);
  return *this;
}

double circuit_breaker::now_locked() const noexcept {
  // A clock reading that is not finite, or that goes back, would stop time for the breaker
  // (an open breaker would never probe): the latest good reading stands in.
  const double now = clock_();
  if (std::isfinite(now) && now > last_now_) last_now_ = now;
  return last_now_;
}

bool circuit_breaker::allow_slow(std::uint32_t* ticket) noexcept {
  state from = state::closed;
  state to = state::closed;
  std::uint32_t sequence = 0;
  bool allowed = false;
  {
    const std::lock_guard lock(mutex_);
    const double now = now_locked();
    from = state_.load(std::memory_order_relaxed);
    switch (from) {
      case state::closed:
        allowed = true;
        break;
      case state::isolated:
        break;
      case state::open:
        if (now - changed_at_ >= open_for_) {
          move_to(state::half_open, now);
          probes_out_ = 1;
          allowed = true;
        }
        break;
      case state::half_open:
        // Probes that never reported back for another open_for are given up: probe afresh
        // (a new generation: their late answers are ignored).
        if (probes_out_ + probes_ok_ >= probes_ && now - changed_at_ >= open_for_) move_to(state::half_open, now);
        if (probes_out_ + probes_ok_ < probes_) {
          ++probes_out_;
          allowed = true;
        }
        break;
    }
    to = state_.load(std::memory_order_relaxed);
    sequence = generation_.load(std::memory_order_relaxed);
    if (ticket != nullptr) *ticket = sequence;
  }
  if (!allowed) refused_.fetch_add(1, std::memory_order_relaxed);
  if (to != from) report(from, to, sequence);
  return allowed;
}

void circuit_breaker::roll(double now) noexcept {
  const double age = now - window_start_;
  if (age < window_) return;
  if (age < 2 * window_) {  // the current window becomes the previous one
    prev_successes_ = successes_;
    prev_failures_ = failures_;
    window_start_ += window_;
  } else {
    prev_successes_ = prev_failures_ = 0;
    window_start_ = now;
  }
  successes_ = failures_ = 0;
}

void circuit_breaker::record(bool success, std::uint32_t ticket) noexcept {
  state from = state::closed;
  state to = state::closed;
  std::uint32_t sequence = 0;
  {
    const std::lock_guard lock(mutex_);
    // An answer to an attempt allowed before the last change of state says nothing about now.
    if (ticket != generation_.load(std::memory_order_relaxed)) return;
    const double now = now_locked();
    from = state_.load(std::memory_order_relaxed);
    switch (from) {
      case state::closed: {
        if (!counting_.load(std::memory_order_relaxed)) {
          if (success) break;  // healthy: nothing to count
          counting_.store(true, std::memory_order_relaxed);
          window_start_ = now;
          successes_ = failures_ = prev_successes_ = prev_failures_ = 0;
        }
        roll(now);
        (success ? successes_ : failures_) += 1;
        // The previous window counts for the part of it still inside a window back from now.
        const double weight = std::clamp(1.0 - (now - window_start_) / window_, 0.0, 1.0);
        const double failed = failures_ + prev_failures_ * weight;
        const double counted = failed + successes_ + prev_successes_ * weight;
        if (counted >= minimum_calls_ && failed >= failure_ratio_ * counted) {
          move_to(state::open, now);
        } else if (failures_ == 0 && prev_failures_ == 0) {
          counting_.store(false, std::memory_order_relaxed);  // a whole window without a failure
        }
        break;
      }
      case state::half_open:
        if (probes_out_ > 0) --probes_out_;
        if (!success) {
          move_to(state::open, now);
        } else if (++probes_ok_ >= probes_) {
          move_to(state::closed, now);
        }
        break;
      case state::open:
      case state::isolated:
        break;
    }
    to = state_.load(std::memory_order_relaxed);
    sequence = generation_.load(std::memory_order_relaxed);
  }
  if (to != from) report(from, to, sequence);
}

void circuit_breaker::on_abandoned(std::uint32_t ticket) noexcept {
  if (state_.load(std::memory_order_acquire) == state::closed) [[likely]]
    return;
  const std::lock_guard lock(mutex_);
  if (ticket == generation_.load(std::memory_order_relaxed) &&
      state_.load(std::memory_order_relaxed) == state::half_open && probes_out_ > 0)
    --probes_out_;
}

bool circuit_breaker::refusing() const noexcept {
  const state s = state_.load(std::memory_order_acquire);
  if (s == state::closed) return false;
  if (s == state::isolated) return true;
  const std::lock_guard lock(mutex_);
  const double waited = now_locked() - changed_at_;
  switch (state_.load(std::memory_order_relaxed)) {
    case state::open:
      return waited < open_for_;
    case state::half_open:
      return probes_out_ + probes_ok_ >= probes_ && waited < open_for_;
    case state::isolated:
      return true;
    case state::closed:
      break;
  }
  return false;
}

void circuit_breaker::move_to(state to, double now) noexcept {
  if (to == state::open) opened_.fetch_add(1, std::memory_order_relaxed);
  if (to == state::closed) {
    successes_ = failures_ = prev_successes_ = prev_failures_ = 0;
    counting_.store(false, std::memory_order_relaxed);
  }
  changed_at_ = now;
  probes_out_ = 0;
  probes_ok_ = 0;
  generation_.fetch_add(1, std::memory_order_release);
  state_.store(to, std::memory_order_release);
}

void circuit_breaker::report(state from, state to, std::uint32_t sequence) noexcept {
  const transition t{name_, from, to, sequence, instance_};
  detail::notify_breaker(t);  // the global hooks: logs and metrics by default
  if (!on_transition_) return;
  try {
    on_transition_(t);
  } catch (...) {
    try {
      std::cerr << "stamina: the on-transition hook of circuit breaker '" << name_ << "' threw and was ignored\n";
    } catch (...) {
    }
  }
}

void circuit_breaker::isolate() {
  state from = state::closed;
  std::uint32_t sequence = 0;
  {
    const std::lock_guard lock(mutex_);
    from = state_.load(std::memory_order_relaxed);
    if (from == state::isolated) return;
    move_to(state::isolated, now_locked());
    sequence = generation_.load(std::memory_order_relaxed);
  }
  report(from, state::isolated, sequence);
}

void circuit_breaker::reset() {
  state from = state::closed;
  std::uint32_t sequence = 0;
  {
    const std::lock_guard lock(mutex_);
    from = state_.load(std::memory_order_relaxed);
    move_to(state::closed, now_locked());
    sequence = generation_.load(std::memory_order_relaxed);
  }
  if (from != state::closed) report(from, state::closed, sequence);
}

circuit_breaker::stats_type circuit_breaker::stats() const noexcept {
  return {opened_.load(std::memory_order_relaxed), refused_.load(std::memory_order_relaxed)};
}

circuit_breakers::circuit_breakers(std::string name, std::function<void(circuit_breaker&)> configure)
    : name_(std::move(name)), configure_(std::move(configure)) {
  live_objects& l = live();
  enroll(l.sets_list, l.sets, mutex_);
}

circuit_breakers::~circuit_breakers() {
  live_objects& l = live();
  leave(l.sets_list, l.sets, mutex_);
}

std::shared_ptr<circuit_breaker> circuit_breakers::operator[](std::string_view key) {
  {
    const std::lock_guard lock(mutex_);
    if (const auto it = breakers_.find(key); it != breakers_.end()) return it->second;
  }
  // Made and configured outside the set's lock: `configure` is user code, which may take other
  // locks (a breaker's hooks, another set).
  auto made = std::make_shared<circuit_breaker>(name_ + "/" + std::string(key));
  if (configure_) configure_(*made);
  const std::lock_guard lock(mutex_);
  // Another thread may have made one meanwhile: the first one in is the key's.
  return breakers_.try_emplace(std::string(key), std::move(made)).first->second;
}

std::size_t circuit_breakers::size() const {
  const std::lock_guard lock(mutex_);
  return breakers_.size();
}

STAMINA_NAMESPACE_END
