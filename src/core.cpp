// The non-template parts of the value types: validation, descriptions, the seed source.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/backoff.hpp>
#include <stamina/decision.hpp>
#include <stamina/failure.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_policy.hpp>

#include <boost/core/demangle.hpp>
#include <boost/system/system_error.hpp>

#include <cmath>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>

namespace stamina {

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
    return boost::core::demangle(typeid(ex).name());
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

// --- failure ---------------------------------------------------------------------------

boost::system::error_code failure::error() const noexcept {
  if (!exception_) return error_;
  if (const auto* se = get<boost::system::system_error>()) return se->code();
  return {};
}

std::string failure::describe() const {
  if (!exception_) return type_name() + " " + error_.message();
  std::string text = exception_type_name(exception_);
  try {
    std::rethrow_exception(exception_);
  } catch (const boost::system::system_error& ex) {
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

retry_policy& retry_policy::on(retry_on value) {
  change_shared([&](shared_parts& p) { p.on = std::move(value); });
  return *this;
}

retry_policy& retry_policy::name(std::string value) {
  change_shared([&](shared_parts& p) { p.name = std::move(value); });
  return *this;
}

retry_policy& retry_policy::budget(std::shared_ptr<retry_budget> value) {
  change_shared([&](shared_parts& p) { p.budget = std::move(value); });
  return *this;
}

retry_policy& retry_policy::throttle(std::shared_ptr<adaptive_throttle> value) {
  change_shared([&](shared_parts& p) { p.throttle = std::move(value); });
  return *this;
}

void retry_policy::throw_invalid_attempts(long long value) {
  invalid("attempts", "at least 1 or nullopt", std::to_string(value));
}

retry_policy& retry_policy::attempts(std::optional<unsigned> value) {
  if (value && *value == 0) throw_invalid_attempts(0);
  attempts_ = value;
  return *this;
}

retry_policy& retry_policy::timeout(std::optional<duration> value) {
  check_positive("timeout", value);
  timeout_ = value;
  return *this;
}

retry_policy& retry_policy::wait_initial(duration value) {
  check_non_negative("wait_initial", value);
  wait_initial_ = value;
  return *this;
}

retry_policy& retry_policy::wait_max(duration value) {
  check_non_negative("wait_max", value);
  wait_max_ = value;
  return *this;
}

retry_policy& retry_policy::wait_jitter(duration value) {
  check_non_negative("wait_jitter", value);
  wait_jitter_ = value;
  return *this;
}

retry_policy& retry_policy::wait_exp_base(double value) {
  if (!std::isfinite(value) || value < 1) {
    std::ostringstream out;
    out << value;
    invalid("wait_exp_base", "finite and >= 1", out.str());
  }
  wait_exp_base_ = value;
  return *this;
}

retry_policy& retry_policy::attempt_timeout(std::optional<duration> value) {
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

adaptive_throttle::adaptive_throttle(double k, unsigned window, unsigned min_sent, std::uint64_t seed)
    : k_(k), window_(window), min_sent_(min_sent), rng_(seed != 0 ? seed : detail::random_seed()) {
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

void adaptive_throttle::forget_half() noexcept {
  std::uint64_t now = state_.load(std::memory_order_relaxed);
  while (sent_of(now) >= 2 * window_) {
    const std::uint64_t next = (std::uint64_t{sent_of(now) / 2u} << 32) | (accepted_of(now) / 2u);
    if (state_.compare_exchange_weak(now, next, std::memory_order_relaxed)) return;
  }
}

double adaptive_throttle::uniform() noexcept {
  // splitmix64 over a shared counter: deterministic for one thread and a fixed seed.
  std::uint64_t z = rng_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
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
