// The non-template parts of the value types: validation, descriptions, the seed source.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/backoff.hpp>
#include <stamina/decision.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/protocol.hpp>
#include <stamina/failure.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>
#include <stamina/retry_policy.hpp>

#include "call_site.hpp"

#if defined(STAMINA_STANDALONE_ASIO)
#include <cxxabi.h>

#include <cstdlib>
#else
#include <boost/core/demangle.hpp>
#endif
#include <stamina/detail/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>

namespace stamina {

namespace {
// A type's readable name (what boost::core::demangle does, without Boost).
std::string demangled(const char* name) {
#if defined(STAMINA_STANDALONE_ASIO)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(name);
#else
  return boost::core::demangle(name);
#endif
}
}  // namespace

namespace {

std::string seconds_text(double s) {
  std::ostringstream out;
  out << s << 's';
  return out.str();
}

[[noreturn]] void invalid(const char* field, const std::string& requirement, const std::string& value) {
  throw std::invalid_argument(std::string("stamina::retry_policy: ") + field + " must be " + requirement + ", got " +
                              value);
}

void check_non_negative(const char* field, duration d) {
  if (!std::isfinite(d.count()) || d.count() < 0) invalid(field, "a finite duration >= 0", seconds_text(d.count()));
}

void check_positive(const char* field, const std::optional<duration>& d) {
  if (d && (!std::isfinite(d->count()) || d->count() <= 0))
    invalid(field, "a finite duration > 0 or nullopt", seconds_text(d->count()));
}

std::string exception_type_name(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return demangled(typeid(ex).name());
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

// --- failure ---------------------------------------------------------------------------

stamina::error_code failure::error() const noexcept {
  if (!exception_) return error_;
  if (const auto* se = get<stamina::system_error>()) return se->code();
  return {};
}

std::string failure::describe() const {
  if (!exception_) return type_name() + " " + error_.message();
  std::string text = exception_type_name(exception_);
  try {
    std::rethrow_exception(exception_);
  } catch (const stamina::system_error& ex) {
    // Its what() carries the throw site's file and function: too long for one log line.
    const auto& ec = ex.code();
    text += ": " + ec.message() + " [" + ec.category().name() + ":" + std::to_string(ec.value()) + "]";
  } catch (const std::exception& ex) {
    text += ": ";
    text += ex.what();
  } catch (...) {
  }
  return text;
}

std::string failure::type_name() const {
  if (exception_) return exception_type_name(exception_);
  return std::string(error_.category().name()) + ":" + std::to_string(error_.value());
}

// --- on_result ------------------------------------------------------------------------

std::string detail::describe_values(const std::type_info& tuple_type) {
  std::string text = demangled(tuple_type.name());
  // "std::tuple<int, std::string>" -> "(int, std::string)"
  if (const auto open = text.find('<'); text.rfind("std::tuple", 0) == 0 && open != std::string::npos)
    return "(" + text.substr(open + 1, text.size() - open - 2) + ")";
  return text == "std::tuple<>" ? "()" : text;
}

void detail::throw_result_mismatch(const std::type_info& predicate, const std::type_info& values) {
  throw std::invalid_argument("stamina::retry_policy: on_result's predicate takes " + describe_values(predicate) +
                              " but the operation succeeds with " + describe_values(values));
}

void detail::throw_blocking_attempt_timeout(const char* who) {
  throw std::invalid_argument(std::string(who) +
                              ": the policy's attempt_timeout cannot be applied to a blocking call, which cannot be "
                              "interrupted; use async_retry, or remove attempt_timeout from this policy");
}

void detail::throw_context_misuse(const char* what) {
  throw std::invalid_argument(std::string("stamina::retry_context: ") + what);
}

// --- decision --------------------------------------------------------------------------

decision decision::retry_after(duration wait) {
  if (std::isnan(wait.count()) || wait.count() < 0)
    throw std::invalid_argument("stamina::decision::retry_after: wait must be >= 0, got " + seconds_text(wait.count()));
  return decision(kind::retry_after, wait);
}

// --- retry_policy ------------------------------------------------------------------------

template <class Change>
void retry_policy::change_shared(Change&& change) {
  auto next = std::make_shared<shared_parts>(*shared_);
  change(*next);
  shared_ = std::move(next);
}

retry_policy::retry_policy(retry_on on, const char* file, unsigned line) {
  auto parts = std::make_shared<shared_parts>(std::move(on));
  parts->name = detail::call_site_name(file, line);
  shared_ = std::move(parts);
}

adaptive_throttle* retry_policy::resolve_name_throttle() const noexcept {
  adaptive_throttle* named = nullptr;
  try {
    named = &default_throttle(shared_->name);
  } catch (...) {
    return nullptr;  // out of memory: no throttling rather than no call
  }
  shared_->name_throttle.ptr.store(named, std::memory_order_release);
  return named;
}

retry_policy& retry_policy::on_result(std::nullptr_t) & {
  set_on_result(nullptr);
  return *this;
}

void retry_policy::set_on_result(std::shared_ptr<const detail::result_classifier> value) {
  change_shared([&](shared_parts& p) { p.on_result = std::move(value); });
}

retry_policy& retry_policy::on_retry(instrumentation::on_retry_hook hook) & {
  change_shared([&](shared_parts& p) { p.own_on_retry.emplace(std::move(hook)); });
  return *this;
}

retry_policy& retry_policy::on_give_up(instrumentation::on_give_up_hook hook) & {
  change_shared([&](shared_parts& p) { p.own_on_give_up = std::move(hook); });
  return *this;
}

retry_policy& retry_policy::on(retry_on value) & {
  change_shared([&](shared_parts& p) { p.on = std::move(value); });
  return *this;
}

retry_policy& retry_policy::name(std::string value) & {
  adaptive_throttle* named = &default_throttle(value);
  change_shared([&](shared_parts& p) {
    p.name = std::move(value);
    p.name_throttle.ptr.store(named, std::memory_order_relaxed);
  });
  return *this;
}

retry_policy& retry_policy::budget(std::shared_ptr<retry_budget> value) & {
  change_shared([&](shared_parts& p) { p.budget = std::move(value); });
  return *this;
}

retry_policy& retry_policy::throttle(std::shared_ptr<adaptive_throttle> value) & {
  change_shared([&](shared_parts& p) {
    p.throttle = std::move(value);
    p.throttle_set = true;
  });
  return *this;
}

void retry_policy::throw_invalid_attempts(long long value) {
  invalid("attempts", "at least 1 or nullopt", std::to_string(value));
}

retry_policy& retry_policy::attempts(std::optional<unsigned> value) & {
  if (value && *value == 0) throw_invalid_attempts(0);
  attempts_ = value;
  return *this;
}

retry_policy& retry_policy::timeout(std::optional<duration> value) & {
  check_positive("timeout", value);
  timeout_ = value;
  return *this;
}

retry_policy& retry_policy::wait_initial(duration value) & {
  check_non_negative("wait_initial", value);
  wait_initial_ = value;
  return *this;
}

retry_policy& retry_policy::wait_max(duration value) & {
  check_non_negative("wait_max", value);
  wait_max_ = value;
  return *this;
}

retry_policy& retry_policy::wait_jitter(duration value) & {
  check_non_negative("wait_jitter", value);
  wait_jitter_ = value;
  return *this;
}

retry_policy& retry_policy::wait_exp_base(double value) & {
  if (!std::isfinite(value) || value < 1) {
    std::ostringstream out;
    out << value;
    invalid("wait_exp_base", "finite and >= 1", out.str());
  }
  wait_exp_base_ = value;
  return *this;
}

retry_policy& retry_policy::attempt_timeout(std::optional<duration> value) & {
  check_positive("attempt_timeout", value);
  attempt_timeout_ = value;
  return *this;
}

// --- retry_budget ------------------------------------------------------------------------

retry_budget::retry_budget(double max_tokens, double token_ratio) {
  if (!std::isfinite(max_tokens) || max_tokens <= 0 || max_tokens > 1e9) {
    std::ostringstream out;
    out << "stamina::retry_budget: max_tokens must be finite and in (0, 1e9], got " << max_tokens;
    throw std::invalid_argument(out.str());
  }
  if (!std::isfinite(token_ratio) || token_ratio < 0 || token_ratio > max_tokens) {
    std::ostringstream out;
    out << "stamina::retry_budget: token_ratio must be finite and in [0, max_tokens], got " << token_ratio;
    throw std::invalid_argument(out.str());
  }
  max_milli_ = std::llround(max_tokens * 1000);
  ratio_milli_ = std::llround(token_ratio * 1000);
  threshold_ = max_milli_ / 2;
  milli_.store(max_milli_, std::memory_order_relaxed);
}

// --- adaptive_throttle -------------------------------------------------------------------

namespace {
double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

adaptive_throttle::adaptive_throttle(double k, unsigned window, unsigned min_sent)
    : k_(k), window_(window), min_sent_(min_sent), now_(&monotonic_seconds) {
  if (!std::isfinite(k) || k < 1 || k > 100) {
    std::ostringstream out;
    out << "stamina::adaptive_throttle: k must be finite and in [1, 100], got " << k;
    throw std::invalid_argument(out.str());
  }
  if (window < 10 || window > 1000000)
    throw std::invalid_argument("stamina::adaptive_throttle: window must be in [10, 1000000], got " +
                                std::to_string(window));
  if (min_sent < 1 || min_sent > 2 * window)
    throw std::invalid_argument("stamina::adaptive_throttle: min_sent must be in [1, 2 * window], got " +
                                std::to_string(min_sent));
}

adaptive_throttle& adaptive_throttle::min_rate(double per_second) {
  if (!std::isfinite(per_second) || per_second <= 0) {
    std::ostringstream out;
    out << "stamina::adaptive_throttle: min_rate must be finite and > 0, got " << per_second;
    throw std::invalid_argument(out.str());
  }
  std::lock_guard lock(mutex_);
  min_rate_ = per_second;
  return *this;
}

adaptive_throttle& adaptive_throttle::interval(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) {
    std::ostringstream out;
    out << "stamina::adaptive_throttle: interval must be finite and > 0, got " << seconds;
    throw std::invalid_argument(out.str());
  }
  std::lock_guard lock(mutex_);
  interval_ = seconds;
  return *this;
}

adaptive_throttle& adaptive_throttle::clock(clock_function now) noexcept {
  std::lock_guard lock(mutex_);
  now_ = now != nullptr ? now : &monotonic_seconds;
  return *this;
}

double adaptive_throttle::rate() const {
  std::lock_guard lock(mutex_);
  return rate_;
}

void adaptive_throttle::start_watching() noexcept {
  std::lock_guard lock(mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::healthy) return;
  state_.store(one_sent, std::memory_order_relaxed);  // the attempt that just failed
  watching_since_ = now_();
  accepted_before_ = sent_before_ = 0;
  mode_.store(mode::watching, std::memory_order_release);
}

void adaptive_throttle::forget_half() noexcept {
  std::uint64_t now = state_.load(std::memory_order_relaxed);
  while (sent_of(now) >= 2 * window_) {
    const std::uint64_t next = (std::uint64_t{sent_of(now) / 2u} << 32) | (accepted_of(now) / 2u);
    if (state_.compare_exchange_weak(now, next, std::memory_order_relaxed)) {
      std::lock_guard lock(mutex_);
      if (mode_.load(std::memory_order_relaxed) != mode::watching) return;
      if (sent_of(now) <= k_ * accepted_of(now)) {
        // A whole window without trouble: healthy again.
        mode_.store(mode::healthy, std::memory_order_relaxed);
        return;
      }
      accepted_before_ += accepted_of(now) - accepted_of(next);
      sent_before_ += sent_of(now) - sent_of(next);
      return;
    }
  }
}

void adaptive_throttle::start_pacing() noexcept {
  std::lock_guard lock(mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::watching) return;
  const double t = now_();
  // Watch for one interval at least, so that the paces below are measured, not guessed.
  if (t - watching_since_ < interval_) return;
  // Start from the pace the dependency answered at while it was watched; the pace the calls
  // asked for then is the ceiling to return to quickly once answers come back.
  const std::uint64_t counts = state_.load(std::memory_order_relaxed);
  const double watched = std::max(interval_, t - watching_since_);
  rate_ = std::max(min_rate_, (accepted_before_ + accepted_of(counts)) / watched);
  ceiling_ = std::max(rate_, (sent_before_ + sent_of(counts)) / watched);
  last_good_ = false;
  tokens_ = 0;
  refilled_at_ = interval_start_ = t;
  interval_admitted_ = interval_held_ = 0;
  interval_accepted_.store(0, std::memory_order_relaxed);
  interval_rejected_.store(0, std::memory_order_relaxed);
  mode_.store(mode::pacing, std::memory_order_release);
}

bool adaptive_throttle::admit_paced() noexcept {
  std::lock_guard lock(mutex_);
  if (mode_.load(std::memory_order_relaxed) != mode::pacing) return true;  // another thread just stopped pacing
  const double t = now_();
  if (t - interval_start_ >= interval_) {
    const double accepted = interval_accepted_.exchange(0, std::memory_order_relaxed);
    const double rejected = interval_rejected_.exchange(0, std::memory_order_relaxed);
    if (accepted + rejected == 0 && interval_held_ > 0) {
      // Nothing answered yet (a slow dependency, or a pace too low to tell): no change.
    } else if (rejected > 0.1 * (accepted + rejected)) {
      // Overloaded at this pace: halve it. A pace that failed right
      // after a good interval is the new ceiling; failures that go on (a backlog draining)
      // do not lower it further.
      if (last_good_) ceiling_ = rate_;
      rate_ = std::max(min_rate_, rate_ / 2);
      last_good_ = false;
    } else if (accepted + 2 < 0.95 * interval_admitted_) {  // + 2: answers still on their way
      // Few failures, but answers lag behind what is sent: a queue is building up. Pace a
      // little below the throughput the dependency shows, so the queue drains, and make
      // that the ceiling.
      rate_ = ceiling_ = std::max(min_rate_, 0.9 * accepted / (t - interval_start_));
      last_good_ = false;
    } else if (interval_held_ > 0) {
      // All fine, but demand exceeds the pace: double back up to the ceiling, probe past it
      // by 25 % per interval.
      // The first good interval after bad ones jumps to a quarter of the ceiling at least.
      if (rate_ < ceiling_)
        rate_ = std::min(ceiling_, std::max(2 * rate_, last_good_ ? 0.0 : ceiling_ / 4));
      else
        rate_ *= 1.25;
      last_good_ = true;
    } else {
      // All fine and nothing held back: healthy again.
      mode_.store(mode::healthy, std::memory_order_relaxed);
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

adaptive_throttle& default_throttle(std::string_view name) {
  // Never destroyed: policies hold plain pointers to these, and calls may run during exit.
  static auto* const mutex = new std::mutex;
  static auto* const throttles = new std::map<std::string, std::unique_ptr<adaptive_throttle>, std::less<>>;
  std::lock_guard lock(*mutex);
  auto it = throttles->find(name);
  if (it == throttles->end()) it = throttles->emplace(std::string(name), std::make_unique<adaptive_throttle>()).first;
  return *it->second;
}

// --- seeds -------------------------------------------------------------------------------

std::uint64_t detail::random_seed() noexcept {
  // One random_device read per thread; then a counter mixed by the splitmix finaliser in
  // backoff, so concurrent calls on one thread still get distinct streams.
  thread_local std::uint64_t next = [] {
    std::uint64_t s = std::hash<std::thread::id>{}(std::this_thread::get_id());
    try {
      std::random_device rd;
      s ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    } catch (...) {
      s ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    return s;
  }();
  next += 0xd1b54a32d192ed03ULL;
  std::uint64_t z = next;
  z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
  z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  return z ^ (z >> 33);
}

}  // namespace stamina
