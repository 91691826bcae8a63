// hedging_policy, hedge_budget and the adaptive delay's latency window.

#include <stamina/detail/namespace.hpp>
#include <stamina/hedge_budget.hpp>
#include <stamina/hedging_policy.hpp>

#include "call_site.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

STAMINA_NAMESPACE_BEGIN

namespace detail {

std::string call_site_name(const char* file, unsigned line) {
  std::string_view path = file != nullptr ? file : "";
  if (const auto slash = path.find_last_of("/\\"); slash != std::string_view::npos) path.remove_prefix(slash + 1);
  std::string name;
  name.reserve(path.size() + 11);
  name.append(path).append(":").append(std::to_string(line));
  return name;
}

void latency_window::record(duration latency) noexcept {
  const double s = latency.count();
  if (!std::isfinite(s) || s < 0) return;
  std::lock_guard lock(mutex_);
  samples_[next_] = s;
  next_ = (next_ + 1) % capacity;
  if (count_ < capacity) ++count_;
  if (++since_refresh_ < refresh_every || count_ < min_samples) return;
  since_refresh_ = 0;
  // Every refresh_every samples: the quantile of a copy (nth_element reorders).
  std::array<double, capacity> copy;
  std::copy_n(samples_.begin(), count_, copy.begin());
  const auto rank = static_cast<std::size_t>(std::lround(quantile_ * static_cast<double>(count_ - 1)));
  std::nth_element(copy.begin(), copy.begin() + static_cast<std::ptrdiff_t>(rank),
                   copy.begin() + static_cast<std::ptrdiff_t>(count_));
  cached_.store(copy[rank], std::memory_order_relaxed);
}

}  // namespace detail

namespace {
template <class T>
[[noreturn]] void invalid(const char* field, const char* rule, const T& value) {
  std::ostringstream out;
  out << "stamina::" << field << " must be " << rule << ", got " << value;
  throw std::invalid_argument(out.str());
}
}  // namespace

hedge_budget::hedge_budget(double ratio, double burst) {
  if (!std::isfinite(ratio) || ratio < 0 || ratio > 1) invalid("hedge_budget: ratio", "finite and in [0, 1]", ratio);
  if (!std::isfinite(burst) || burst < 1 || burst > 1e9)
    invalid("hedge_budget: burst", "finite and in [1, 1e9]", burst);
  ratio_milli_ = std::llround(ratio * 1000);
  burst_milli_ = std::llround(burst * 1000);
  bucket_.set(burst_milli_);
}

const char* to_string(hedge_event_kind kind) noexcept {
  switch (kind) {
    case hedge_event_kind::started:
      return "started";
    case hedge_event_kind::won:
      return "won";
    case hedge_event_kind::cancelled:
      return "cancelled";
    case hedge_event_kind::budget_denied:
      return "budget_denied";
    case hedge_event_kind::breaker_open:
      return "breaker_open";
    case hedge_event_kind::limit_full:
      return "limit_full";
  }
  return "unknown";
}

hedging_policy::hedging_policy(retry_on on, const char* file, unsigned line)
    : config_(std::make_shared<const config>(std::move(on), &detail::intern_call_site(file, line))),
      budget_(std::make_shared<hedge_budget>()),
      counters_(std::make_shared<detail::hedge_counters>()) {}

template <class Change>
void hedging_policy::change_config(Change&& change) {
  auto next = std::make_shared<config>(*config_);
  change(*next);
  next->refresh();  // the copy's spec still pointed into the old block
  config_ = std::move(next);
}

void hedging_policy::throw_invalid_attempts(long long value) {
  invalid("hedging_policy::attempts", "at least 1", value);
}

void hedging_policy::set_on_result(std::shared_ptr<const detail::result_classifier> value) {
  change_config([&](config& c) { c.on_result = std::move(value); });
}

hedging_policy& hedging_policy::on(retry_on value) & {
  change_config([&](config& c) { c.on = std::move(value); });
  return *this;
}

hedging_policy& hedging_policy::delay(duration value) & {
  if (!std::isfinite(value.count()) || value.count() < 0)
    invalid("hedging_policy::delay", ">= 0 and finite (seconds)", value.count());
  delay_ = value;
  return *this;
}

hedging_policy& hedging_policy::adaptive_delay(std::optional<double> quantile) & {
  if (!quantile) {
    window_.reset();
    return *this;
  }
  if (!std::isfinite(*quantile) || *quantile <= 0 || *quantile >= 1)
    invalid("hedging_policy::adaptive_delay", "a quantile in (0, 1), e.g. 0.95", *quantile);
  window_ = std::make_shared<detail::latency_window>(*quantile);
  return *this;
}

void hedging_policy::set_deadline(double seconds_since_epoch) {
  if (std::isnan(seconds_since_epoch)) invalid("hedging_policy::deadline", "a time, not NaN", "nan");
  deadline_ = std::min(deadline_, seconds_since_epoch);  // only ever earlier
}

hedging_policy& hedging_policy::timeout(std::optional<duration> value) & {
  if (value && (!std::isfinite(value->count()) || value->count() <= 0))
    invalid("hedging_policy::timeout", "> 0 and finite (seconds) or nullopt", value->count());
  timeout_ = value.value_or(duration(0));
  return *this;
}

hedging_policy& hedging_policy::attempt_timeout(std::optional<duration> value) & {
  if (value && (!std::isfinite(value->count()) || value->count() <= 0))
    invalid("hedging_policy::attempt_timeout", "> 0 and finite (seconds) or nullopt", value->count());
  attempt_timeout_ = value.value_or(duration(0));
  return *this;
}

hedging_policy& hedging_policy::name(std::string value) & {
  change_config([&](config& c) {
    c.name = std::move(value);
    c.named = true;
  });
  return *this;
}

hedging_policy& hedging_policy::budget(std::shared_ptr<hedge_budget> value) & {
  budget_ = std::move(value);
  return *this;
}

hedging_policy& hedging_policy::breaker(std::shared_ptr<circuit_breaker> value) & {
  change_config([&](config& c) { c.breaker = std::move(value); });
  return *this;
}

hedging_policy& hedging_policy::limit(std::shared_ptr<concurrency_limit> value) & {
  change_config([&](config& c) { c.limit = std::move(value); });
  return *this;
}

hedging_policy& hedging_policy::on_hedge(std::function<void(const hedge_event&)> hook) & {
  change_config([&](config& c) { c.hook = std::move(hook); });
  return *this;
}

hedge_stats hedging_policy::stats() const noexcept {
  const detail::hedge_counters& c = *counters_;
  hedge_stats s;
  s.calls = c.calls.load(std::memory_order_relaxed);
  s.hedges = c.hedges.load(std::memory_order_relaxed);
  s.won = c.won.load(std::memory_order_relaxed);
  s.cancelled = c.cancelled.load(std::memory_order_relaxed);
  s.denied = c.denied.load(std::memory_order_relaxed);
  return s;
}

STAMINA_NAMESPACE_END
