// adaptive_throttle's pacing, and the registry of default throttles (one per policy name).

#include <stamina/adaptive_throttle.hpp>
#include <stamina/detail/call_site.hpp>
#include <stamina/detail/namespace.hpp>

#include "fork_safety.hpp"
#include "immortal.hpp"
#include "settings.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>

STAMINA_NAMESPACE_BEGIN

namespace {

using detail::monotonic_seconds;

template <class T>
[[noreturn]] void invalid(const char* field, const char* rule, const T& value) {
  detail::throw_invalid_setting("adaptive_throttle", field, rule, value);
}

// Unhealthy default throttles, by the hash of their names (see detail::unhealthy_default_throttles).
std::array<std::atomic<std::uint32_t>, detail::throttle_buckets> unhealthy_by_bucket{};

}  // namespace

adaptive_throttle::adaptive_throttle(double k, unsigned window, unsigned min_sent)
    : k_(k), window_(window), min_sent_(min_sent), now_(&monotonic_seconds) {
  if (!std::isfinite(k) || k < 1 || k > 100) invalid("k", "finite and in [1, 100]", k);
  if (window < 10 || window > 100000) invalid("window", "in [10, 100000]", window);
  if (min_sent < 1 || min_sent > 2 * window) invalid("min_sent", "in [1, 2 * window]", min_sent);
}

adaptive_throttle::~adaptive_throttle() {
  std::lock_guard lock(*mutex_);
  if (counted_unhealthy_) set_mode(mode::healthy);  // leaves the registry's count
}

adaptive_throttle& adaptive_throttle::min_rate(double per_second) {
  if (!std::isfinite(per_second) || per_second <= 0) invalid("min_rate", "finite and > 0", per_second);
  std::lock_guard lock(*mutex_);
  min_rate_ = per_second;
  return *this;
}

adaptive_throttle& adaptive_throttle::interval(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) invalid("interval", "finite and > 0", seconds);
  std::lock_guard lock(*mutex_);
  interval_ = seconds;
  return *this;
}

adaptive_throttle& adaptive_throttle::clock(clock_function now) noexcept {
  std::lock_guard lock(*mutex_);
  now_ = now != nullptr ? now : &monotonic_seconds;
  return *this;
}

double adaptive_throttle::rate() const {
  std::lock_guard lock(*mutex_);
  return rate_;
}

void adaptive_throttle::set_mode(mode m) noexcept {
  mode_.store(m, std::memory_order_release);
  const bool unhealthy = m != mode::healthy;
  if (registry_bucket_ < 0 || unhealthy == counted_unhealthy_) return;
  counted_unhealthy_ = unhealthy;
  auto& bucket = unhealthy_by_bucket[static_cast<std::size_t>(registry_bucket_)];
  if (unhealthy) {
    bucket.fetch_add(1, std::memory_order_relaxed);
    detail::unhealthy_default_throttles.fetch_add(1, std::memory_order_relaxed);
  } else {
    bucket.fetch_sub(1, std::memory_order_relaxed);
    detail::unhealthy_default_throttles.fetch_sub(1, std::memory_order_relaxed);
  }
}

void adaptive_throttle::start_watching(std::uint64_t first) noexcept {
  std::lock_guard lock(*mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::healthy) return;
  state_.store(first, std::memory_order_relaxed);
  watching_since_ = now_();
  accepted_before_ = sent_before_ = 0;
  touched_.store(true, std::memory_order_relaxed);
  set_mode(mode::watching);
}

void adaptive_throttle::forget_half() noexcept {
  std::uint64_t now = state_.load(std::memory_order_relaxed);
  while (sent_of(now) >= 2 * window_) {
    const std::uint64_t next = (std::uint64_t{sent_of(now) / 2u} << (2 * field_bits)) |
                               (std::uint64_t{answered_of(now) / 2u} << field_bits) | (accepted_of(now) / 2u);
    if (state_.compare_exchange_weak(now, next, std::memory_order_relaxed)) {
      std::lock_guard lock(*mutex_);
      if (mode_.load(std::memory_order_relaxed) != mode::watching) return;
      if (!in_trouble(now)) {
        // A whole window without trouble: healthy again.
        set_mode(mode::healthy);
        return;
      }
      accepted_before_ += accepted_of(now) - accepted_of(next);
      sent_before_ += sent_of(now) - sent_of(next);
      return;
    }
  }
}

void adaptive_throttle::start_pacing() noexcept {
  std::lock_guard lock(*mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::watching) return;
  const double t = now_();
  // Watch for one interval at least, so that the paces below are measured, not guessed.
  if (t - watching_since_ < interval_) return;
  // Start from the pace the dependency accepted at while it was watched; the pace the calls
  // asked for then is the ceiling to return to quickly once answers come back.
  const std::uint64_t counts = state_.load(std::memory_order_relaxed);
  if (!in_trouble(counts)) return;  // another thread's answers arrived since
  const double watched = std::max(interval_, t - watching_since_);
  rate_ = std::max(min_rate_, (accepted_before_ + accepted_of(counts)) / watched);
  ceiling_ = std::max(rate_, (sent_before_ + sent_of(counts)) / watched);
  last_good_ = false;
  tokens_ = 0;
  refilled_at_ = interval_start_ = t;
  interval_admitted_ = interval_held_ = 0;
  interval_accepted_.store(0, std::memory_order_relaxed);
  interval_failed_.store(0, std::memory_order_relaxed);
  interval_overloaded_.store(0, std::memory_order_relaxed);
  least_failing_ = 1;
  least_failing_answers_ = 1;
  set_mode(mode::pacing);
}

// While pacing: whether plain failures are now clearly more frequent than at the least failing
// pace seen so far. A dependency that fails at random fails as often at any pace; one pushed
// past its capacity fails more as the pace rises, even when it answers every attempt at once
// with a failure (a server shedding load). "Clearly": by 5 points, or three standard errors of
// the reference, whichever is more.
bool adaptive_throttle::failing_more(double accepted, double failed) const noexcept {
  const double answers = accepted + failed;
  if (answers < 20) return false;  // too few to tell
  const double error = std::sqrt(least_failing_ * (1 - least_failing_) / least_failing_answers_);
  return failed / answers > least_failing_ + std::max(0.05, 3 * error);
}

// Overload in the answers of (part of) an interval.
bool adaptive_throttle::overloaded_at_pace(double accepted, double failed, double overloaded) const noexcept {
  const double answers = accepted + failed + overloaded;
  return overloaded > 0.1 * answers || accepted * down_ratio < answers || failing_more(accepted, failed);
}

bool adaptive_throttle::admit_paced() noexcept {
  std::lock_guard lock(*mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::pacing) return true;  // another thread just stopped pacing
  const double t = now_();
  const double elapsed = t - interval_start_;
  // The pace is revised every interval, and sooner (after a quarter of one) when enough answers
  // already show overload: a dependency answering at once with failures shows it at once.
  bool revise = elapsed >= interval_;
  if (!revise && elapsed >= interval_ / 4) {
    const double accepted = interval_accepted_.load(std::memory_order_relaxed);
    const double failed = interval_failed_.load(std::memory_order_relaxed);
    const double overloaded = interval_overloaded_.load(std::memory_order_relaxed);
    revise = accepted + failed + overloaded >= 20 && overloaded_at_pace(accepted, failed, overloaded);
  }
  if (revise) {
    const double accepted = interval_accepted_.exchange(0, std::memory_order_relaxed);
    const double failed = interval_failed_.exchange(0, std::memory_order_relaxed);
    const double overloaded = interval_overloaded_.exchange(0, std::memory_order_relaxed);
    const double answers = accepted + failed + overloaded;
    const bool bad = answers > 0 && overloaded_at_pace(accepted, failed, overloaded);
    if (accepted + failed >= 20 && failed / (accepted + failed) < least_failing_) {
      least_failing_ = failed / (accepted + failed);
      least_failing_answers_ = accepted + failed;
    }
    if (answers == 0 && interval_held_ > 0) {
      // Nothing answered yet (a slow dependency, or a pace too low to tell): no change.
    } else if (bad) {
      // Overloaded (or still down) at this pace: halve it. A pace that failed right after a
      // good interval is the new ceiling; failures that go on (a backlog draining) do not
      // lower it further.
      if (last_good_) ceiling_ = rate_;
      rate_ = std::max(min_rate_, rate_ / 2);
      last_good_ = false;
    } else if (answers + 2 < 0.95 * interval_admitted_) {  // + 2: answers still on their way
      // Answered, but answers lag behind what is sent: a queue is building up. Pace a little
      // below the throughput the dependency shows, so the queue drains, and make that the
      // ceiling.
      rate_ = ceiling_ = std::max(min_rate_, 0.9 * answers / elapsed);
      last_good_ = false;
    } else if (interval_held_ > 0) {
      // All fine, but demand exceeds the pace: double back up to the ceiling, probe past it
      // by 25 % per interval. The first good interval after bad ones jumps to a quarter of
      // the ceiling at least.
      if (rate_ < ceiling_)
        rate_ = std::min(ceiling_, std::max(2 * rate_, last_good_ ? 0.0 : ceiling_ / 4));
      else
        rate_ *= 1.25;
      last_good_ = true;
    } else {
      // All fine and nothing held back: healthy again.
      set_mode(mode::healthy);
      return true;
    }
    interval_start_ = t;
    interval_admitted_ = interval_held_ = 0;
  }
  const double burst = std::max(1.0, rate_ * interval_ / 4);
  tokens_ = std::min(burst, tokens_ + rate_ * std::max(0.0, t - refilled_at_));
  refilled_at_ = t;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    ++interval_admitted_;
    return true;
  }
  ++interval_held_;
  held_back_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// --- the registry of default throttles -------------------------------------------------------

namespace detail {

class throttle_registry {
 public:
  throttle_registry() { hold_across_fork(&lock_all, &unlock_all); }

  static throttle_registry& instance() {
    // Never destroyed: calls may run during exit.
    static immortal<throttle_registry> registry;
    return registry.get();
  }

  // The throttle of `name`, made if there is none.
  std::shared_ptr<adaptive_throttle> acquire(std::string_view name) {
    std::lock_guard lock(mutex_);
    lookups_.fetch_add(1, std::memory_order_relaxed);
    auto it = throttles_.find(name);
    if (it != throttles_.end()) return it->second;
    if (throttles_.size() >= prune_at_) prune();
    auto made = std::make_shared<adaptive_throttle>();
    default_throttle_registrations.fetch_add(1, std::memory_order_release);
    const std::size_t bucket = bucket_of(name);
    made->registry_bucket_ = static_cast<int>(bucket);
    made->mutex_ = &stripes_[bucket % stripes_.size()];
    throttles_.emplace(std::string(name), made);
    return made;
  }

  // The throttle of `name` if it may be unhealthy (its bucket counts an unhealthy throttle),
  // else null: a healthy throttle or none behaves alike.
  std::shared_ptr<adaptive_throttle> find_unhealthy(std::string_view name) {
    if (unhealthy_by_bucket[bucket_of(name)].load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lock(mutex_);
    lookups_.fetch_add(1, std::memory_order_relaxed);
    const auto it = throttles_.find(name);
    return it != throttles_.end() ? it->second : nullptr;
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return throttles_.size();
  }
  std::uint64_t lookups() const noexcept { return lookups_.load(std::memory_order_relaxed); }

 private:
  static std::size_t bucket_of(std::string_view name) noexcept {
    return std::hash<std::string_view>{}(name) % throttle_buckets;
  }

  // Forgets the throttles nobody else holds that are healthy, or that saw no attempt and no
  // answer since the last look; then waits until the registry has doubled before looking again.
  void prune() {
    for (auto it = throttles_.begin(); it != throttles_.end();) {
      adaptive_throttle& t = *it->second;
      const bool unheld = it->second.use_count() == 1;  // stable: references are only made under our lock
      if (unheld && (!t.watching() || !t.touched_.exchange(false, std::memory_order_relaxed)))
        it = throttles_.erase(it);
      else
        ++it;
    }
    prune_at_ = std::max<std::size_t>(64, 2 * throttles_.size());
  }

  // Held across fork(): the registry's lock and the throttles' (default throttles share a few
  // locks, so that a fork holds a handful, not one per name).
  static void lock_all() noexcept {
    throttle_registry& r = instance();
    r.mutex_.lock();
    for (std::mutex& m : r.stripes_) m.lock();
  }
  static void unlock_all() noexcept {
    throttle_registry& r = instance();
    for (auto it = r.stripes_.rbegin(); it != r.stripes_.rend(); ++it) it->unlock();
    r.mutex_.unlock();
  }

  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::mutex mutex_;
  std::array<std::mutex, 16> stripes_;  // the default throttles' own locks, shared
  std::unordered_map<std::string, std::shared_ptr<adaptive_throttle>, name_hash, std::equal_to<>> throttles_;
  std::size_t prune_at_ = 64;
  std::atomic<std::uint64_t> lookups_{0};
};
[[maybe_unused]] const bool registry_made_at_load = (throttle_registry::instance(), true);  // see fork_safety.hpp

adaptive_throttle* resolve_throttle(throttle_slot& slot, const std::string& name, bool make) noexcept {
  const std::uint64_t registrations = default_throttle_registrations.load(std::memory_order_acquire);
  if (!make && slot.absent_since.load(std::memory_order_relaxed) == registrations) return nullptr;
  std::shared_ptr<adaptive_throttle> found;
  try {
    found = make ? acquire_default_throttle(name) : find_unhealthy_default_throttle(name);
  } catch (...) {
    return nullptr;  // out of memory: no throttling rather than no call
  }
  if (!found) {
    slot.absent_since.store(registrations, std::memory_order_relaxed);
    return nullptr;
  }
  std::lock_guard lock(slot.mutex);
  if (adaptive_throttle* already = slot.ptr.load(std::memory_order_relaxed)) return already;
  slot.owner = std::move(found);
  slot.ptr.store(slot.owner.get(), std::memory_order_release);
  return slot.owner.get();
}

std::shared_ptr<adaptive_throttle> acquire_default_throttle(std::string_view name) {
  return throttle_registry::instance().acquire(name);
}

std::shared_ptr<adaptive_throttle> find_unhealthy_default_throttle(std::string_view name) {
  return throttle_registry::instance().find_unhealthy(name);
}

std::size_t default_throttle_registry_size() { return throttle_registry::instance().size(); }

std::uint64_t default_throttle_lookups() { return throttle_registry::instance().lookups(); }

}  // namespace detail

std::shared_ptr<adaptive_throttle> default_throttle(std::string_view name) {
  return detail::acquire_default_throttle(name);
}

STAMINA_NAMESPACE_END
