#include <stamina/detail/namespace.hpp>
#include <stamina/detail/switches.hpp>
#include <stamina/global.hpp>
#include <stamina/instrumentation.hpp>

#include "fork_safety.hpp"
#include "immortal.hpp"

#include <atomic>
#include <cstdint>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

STAMINA_NAMESPACE_BEGIN

namespace instrumentation {

namespace {

// A registry of hooks: writers replace the whole vector; readers take a snapshot (a
// shared_ptr copy) under a short lock, then call the hooks without holding it, so a hook
// may itself change the registry and slow hooks never block other threads' retries.
template <class Hook>
class registry {
 public:
  explicit registry(std::vector<Hook> (*defaults)()) : defaults_(defaults) {
    reset();
    detail::hold_across_fork(mutex_);
  }

  void set(std::vector<Hook> hooks) {
    auto next = std::make_shared<const std::vector<Hook>>(std::move(hooks));
    {
      std::lock_guard lock(mutex_);
      any_.store(!next->empty(), std::memory_order_release);
      hooks_.swap(next);
    }
    // The replaced hooks are destroyed outside the lock: what they own (a breaker, say) may take
    // other locks when it goes.
  }
  void reset() { set(defaults_()); }
  std::shared_ptr<const std::vector<Hook>> snapshot() const {
    std::lock_guard lock(mutex_);
    return hooks_;
  }
  bool any() const noexcept { return any_.load(std::memory_order_acquire); }

 private:
  std::vector<Hook> (*defaults_)();
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<Hook>> hooks_;
  std::atomic<bool> any_{false};
};

std::vector<on_retry_hook> default_retry_hooks() { return {logging_hook(std::cerr), metrics_hook()}; }
std::vector<on_give_up_hook> default_give_up_hooks() {
  return {give_up_logging_hook(std::cerr), give_up_metrics_hook()};
}

// Never destroyed (like every process-wide object of the library): a retry may run in the
// destructor of a static object after the library's statics would have been destroyed.
registry<on_retry_hook>& retry_hooks() {
  static detail::immortal<registry<on_retry_hook>> r(&default_retry_hooks);
  return r.get();
}
registry<on_give_up_hook>& give_up_hooks() {
  static detail::immortal<registry<on_give_up_hook>> r(&default_give_up_hooks);
  return r.get();
}
std::vector<on_hedge_hook> default_hedge_hooks() { return {hedge_metrics_hook()}; }
registry<on_hedge_hook>& hedge_hooks() {
  static detail::immortal<registry<on_hedge_hook>> r(&default_hedge_hooks);
  return r.get();
}

std::vector<on_breaker_hook> default_breaker_hooks() {
  return {breaker_logging_hook(std::cerr), breaker_metrics_hook()};
}
registry<on_breaker_hook>& breaker_hooks() {
  static detail::immortal<registry<on_breaker_hook>> r(&default_breaker_hooks);
  return r.get();
}
[[maybe_unused]] const bool hooks_made_at_load =  // see fork_safety.hpp
    (retry_hooks(), give_up_hooks(), hedge_hooks(), breaker_hooks(), true);

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string seconds(duration d) {
  std::ostringstream out;
  out << d.count();
  return out.str();
}

log_record retry_record(const retry_details& d) {
  log_record r;
  r.level = log_level::warning;
  r.event = "stamina.retry_scheduled";
  r.fields = {{"callable", d.name, true},
              {"call_id", std::to_string(d.call_id)},
              {"retry_num", std::to_string(d.retry_num)},
              {"wait_for", seconds(d.wait_for)},
              {"waited_so_far", seconds(d.waited_so_far)},
              {"caused_by", d.caused_by.describe(), true}};
  return r;
}

log_record give_up_record(const give_up_details& d) {
  log_record r;
  r.level = log_level::error;
  r.event = "stamina.gave_up";
  r.fields = {{"callable", d.name, true},
              {"call_id", std::to_string(d.call_id)},
              {"reason", std::string(to_string(d.reason))},
              {"attempts", std::to_string(d.attempts)},
              {"held_back", std::to_string(d.held_back)},
              {"waited_so_far", seconds(d.waited_so_far)},
              {"caused_by", d.caused_by.describe(), true}};
  return r;
}

// Python stamina logs retries only; a give-up is news only when the call retried. Under a
// testing scope the default logs are quiet unless the scope asks for them.
bool logs_quiet() noexcept { return detail::load_global_config().quiet_logs(); }
bool worth_logging(const give_up_details& d) noexcept { return d.attempts > 1 && !logs_quiet(); }

std::mutex& stream_mutex() {
  static detail::immortal<std::mutex> m;
  static const bool held = (detail::hold_across_fork(m.get()), true);
  (void)held;
  return m.get();
}
[[maybe_unused]] const bool stream_mutex_made_at_load = (stream_mutex(), true);  // see fork_safety.hpp

void write_line(std::ostream& out, const std::string& line) {
  std::lock_guard lock(stream_mutex());
  out << line << '\n' << std::flush;
}

}  // namespace

void set_on_retry_hooks(std::vector<on_retry_hook> hooks) { retry_hooks().set(std::move(hooks)); }
void reset_on_retry_hooks() { retry_hooks().reset(); }
std::vector<on_retry_hook> get_on_retry_hooks() { return *retry_hooks().snapshot(); }

void set_on_give_up_hooks(std::vector<on_give_up_hook> hooks) { give_up_hooks().set(std::move(hooks)); }
void reset_on_give_up_hooks() { give_up_hooks().reset(); }
std::vector<on_give_up_hook> get_on_give_up_hooks() { return *give_up_hooks().snapshot(); }

void set_on_hedge_hooks(std::vector<on_hedge_hook> hooks) { hedge_hooks().set(std::move(hooks)); }
void reset_on_hedge_hooks() { hedge_hooks().reset(); }
std::vector<on_hedge_hook> get_on_hedge_hooks() { return *hedge_hooks().snapshot(); }

void set_on_breaker_hooks(std::vector<on_breaker_hook> hooks) { breaker_hooks().set(std::move(hooks)); }
void reset_on_breaker_hooks() { breaker_hooks().reset(); }
std::vector<on_breaker_hook> get_on_breaker_hooks() { return *breaker_hooks().snapshot(); }

hooks_scope::hooks_scope() : hooks_scope({}, {}) {}

hooks_scope::hooks_scope(std::vector<on_retry_hook> retry, std::vector<on_give_up_hook> give_up)
    : retry_(get_on_retry_hooks()),
      give_up_(get_on_give_up_hooks()),
      hedge_(get_on_hedge_hooks()),
      breaker_(get_on_breaker_hooks()) {
  set_on_retry_hooks(std::move(retry));
  set_on_give_up_hooks(std::move(give_up));
  set_on_hedge_hooks({});
  set_on_breaker_hooks({});
}

hooks_scope::~hooks_scope() {
  set_on_retry_hooks(std::move(retry_));
  set_on_give_up_hooks(std::move(give_up_));
  set_on_hedge_hooks(std::move(hedge_));
  set_on_breaker_hooks(std::move(breaker_));
}

std::string log_record::line() const {
  std::string out(event);
  for (const log_field& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    if (f.text)
      out += quoted(f.value);
    else
      out += f.value;
    if (f.key == "wait_for" || f.key == "waited_so_far") out += 's';
  }
  return out;
}

on_retry_hook logging_hook(std::ostream& out) {
  return [&out](const retry_details& d) {
    if (!logs_quiet()) write_line(out, retry_record(d).line());
  };
}
on_retry_hook logging_hook(log_sink sink) {
  return [sink = std::move(sink)](const retry_details& d) {
    if (!logs_quiet()) sink(retry_record(d));
  };
}
on_retry_hook logging_hook(std::function<void(std::string_view)> sink) {
  return [sink = std::move(sink)](const retry_details& d) {
    if (!logs_quiet()) sink(retry_record(d).line());
  };
}
namespace {
log_record breaker_record(const circuit_breaker::transition& t) {
  log_record r;
  const bool failing = t.to == circuit_breaker::state::open || t.to == circuit_breaker::state::isolated;
  r.level = failing ? log_level::error : log_level::warning;
  r.event = "stamina.circuit_breaker";
  r.fields = {{"breaker", std::string(t.breaker), true},
              {"from", std::string(to_string(t.from))},
              {"to", std::string(to_string(t.to))},
              {"sequence", std::to_string(t.sequence)}};
  return r;
}
}  // namespace

on_breaker_hook breaker_logging_hook(std::ostream& out) {
  return [&out](const circuit_breaker::transition& t) {
    if (!logs_quiet()) write_line(out, breaker_record(t).line());
  };
}
on_breaker_hook breaker_logging_hook(log_sink sink) {
  return [sink = std::move(sink)](const circuit_breaker::transition& t) {
    if (!logs_quiet()) sink(breaker_record(t));
  };
}

on_give_up_hook give_up_logging_hook(std::ostream& out) {
  return [&out](const give_up_details& d) {
    if (worth_logging(d)) write_line(out, give_up_record(d).line());
  };
}
on_give_up_hook give_up_logging_hook(log_sink sink) {
  return [sink = std::move(sink)](const give_up_details& d) {
    if (worth_logging(d)) sink(give_up_record(d));
  };
}
on_give_up_hook give_up_logging_hook(std::function<void(std::string_view)> sink) {
  return [sink = std::move(sink)](const give_up_details& d) {
    if (worth_logging(d)) sink(give_up_record(d).line());
  };
}

// --- metrics -----------------------------------------------------------------------------

struct metrics::impl {
  mutable std::mutex mutex;
  std::map<std::tuple<std::string, unsigned, std::string>, double> retries;
  std::map<std::tuple<std::string, std::string>, double> give_ups;
  std::map<std::tuple<std::string, std::string>, double> hedges;
  std::map<std::tuple<std::string, std::string>, double> breaker_transitions;
  // The latest state reported per named breaker (hooks may arrive out of order; a breaker made
  // later under the same name replaces the earlier one).
  struct latest_state {
    std::uint64_t instance;
    std::uint32_t sequence;
    circuit_breaker::state state;
  };
  std::map<std::string, latest_state, std::less<>> breaker_states;
};

metrics::metrics() : impl_(std::make_unique<impl>()) {}
metrics::~metrics() = default;

void metrics::record_retry(const retry_details& d) {
  auto key = std::make_tuple(std::string(d.name), d.retry_num, d.caused_by.type_name());
  std::lock_guard lock(impl_->mutex);
  impl_->retries[std::move(key)] += 1;
}

void metrics::record_give_up(const give_up_details& d) {
  auto key = std::make_tuple(std::string(d.name), std::string(to_string(d.reason)));
  std::lock_guard lock(impl_->mutex);
  impl_->give_ups[std::move(key)] += 1;
}

void metrics::record_hedge(const hedge_event& e) {
  auto key = std::make_tuple(std::string(e.name), std::string(to_string(e.kind)));
  std::lock_guard lock(impl_->mutex);
  impl_->hedges[std::move(key)] += 1;
}

void metrics::record_breaker(const circuit_breaker::transition& t) {
  auto key = std::make_tuple(std::string(t.breaker), std::string(to_string(t.to)));
  std::lock_guard lock(impl_->mutex);
  impl_->breaker_transitions[std::move(key)] += 1;
  if (t.breaker.empty()) return;  // unnamed breakers would overwrite each other's state
  const impl::latest_state reported{t.instance, t.sequence, t.to};
  auto [it, added] = impl_->breaker_states.try_emplace(std::string(t.breaker), reported);
  if (added) return;
  impl::latest_state& latest = it->second;
  // Sequences wrap after 2^32 changes: "later" is the shorter way round.
  const bool later = t.instance != latest.instance ? t.instance > latest.instance
                                                   : static_cast<std::int32_t>(t.sequence - latest.sequence) > 0;
  if (later) latest = reported;
}

double metrics::breaker_transitions(std::string_view breaker, circuit_breaker::state to) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->breaker_transitions.find(std::make_tuple(std::string(breaker), std::string(to_string(to))));
  return it == impl_->breaker_transitions.end() ? 0 : it->second;
}

double metrics::hedges(std::string_view callable, hedge_event_kind kind) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->hedges.find(std::make_tuple(std::string(callable), std::string(to_string(kind))));
  return it == impl_->hedges.end() ? 0 : it->second;
}

double metrics::retries(std::string_view callable, unsigned retry_num, std::string_view error_type) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->retries.find(std::make_tuple(std::string(callable), retry_num, std::string(error_type)));
  return it == impl_->retries.end() ? 0 : it->second;
}

double metrics::give_ups(std::string_view callable, give_up_reason reason) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->give_ups.find(std::make_tuple(std::string(callable), std::string(to_string(reason))));
  return it == impl_->give_ups.end() ? 0 : it->second;
}

std::string metrics::render_prometheus() const {
  std::ostringstream out;
  std::lock_guard lock(impl_->mutex);
  out << "# HELP stamina_retries_total Retries scheduled by stamina.\n"
      << "# TYPE stamina_retries_total counter\n";
  for (const auto& [key, value] : impl_->retries)
    out << "stamina_retries_total{callable=" << quoted(std::get<0>(key)) << ",retry_num=\"" << std::get<1>(key)
        << "\",error_type=" << quoted(std::get<2>(key)) << "} " << value << '\n';
  out << "# HELP stamina_give_ups_total Calls that stopped retrying without success.\n"
      << "# TYPE stamina_give_ups_total counter\n";
  for (const auto& [key, value] : impl_->give_ups)
    out << "stamina_give_ups_total{callable=" << quoted(std::get<0>(key)) << ",reason=" << quoted(std::get<1>(key))
        << "} " << value << '\n';
  out << "# HELP stamina_hedges_total Hedging events of hedged calls (started, won, cancelled, budget_denied, "
         "breaker_open, limit_full).\n"
      << "# TYPE stamina_hedges_total counter\n";
  for (const auto& [key, value] : impl_->hedges)
    out << "stamina_hedges_total{callable=" << quoted(std::get<0>(key)) << ",event=" << quoted(std::get<1>(key)) << "} "
        << value << '\n';
  out << "# HELP stamina_circuit_breaker_transitions_total Changes of state of circuit breakers, by the state "
         "entered.\n"
      << "# TYPE stamina_circuit_breaker_transitions_total counter\n";
  for (const auto& [key, value] : impl_->breaker_transitions)
    out << "stamina_circuit_breaker_transitions_total{breaker=" << quoted(std::get<0>(key))
        << ",to=" << quoted(std::get<1>(key)) << "} " << value << '\n';
  out << "# HELP stamina_circuit_breaker_state The latest state of each circuit breaker that changed state (1 = in "
         "it).\n"
      << "# TYPE stamina_circuit_breaker_state gauge\n";
  constexpr circuit_breaker::state all_states[] = {circuit_breaker::state::closed, circuit_breaker::state::open,
                                                   circuit_breaker::state::half_open, circuit_breaker::state::isolated};
  for (const auto& [name, latest] : impl_->breaker_states)
    for (const circuit_breaker::state s : all_states)
      out << "stamina_circuit_breaker_state{breaker=" << quoted(name) << ",state=" << quoted(to_string(s)) << "} "
          << (latest.state == s ? 1 : 0) << '\n';
  return out.str();
}

void metrics::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->retries.clear();
  impl_->give_ups.clear();
  impl_->hedges.clear();
  impl_->breaker_transitions.clear();
  impl_->breaker_states.clear();
}

metrics& default_metrics() {
  static detail::immortal<metrics> m;
  static const bool held = (detail::hold_across_fork(m.get().impl_->mutex), true);
  (void)held;
  return m.get();
}
namespace {
[[maybe_unused]] const bool default_metrics_made_at_load = (default_metrics(), true);  // see fork_safety.hpp
}  // namespace

on_retry_hook metrics_hook(metrics& m) {
  return [&m](const retry_details& d) { m.record_retry(d); };
}
on_give_up_hook give_up_metrics_hook(metrics& m) {
  return [&m](const give_up_details& d) { m.record_give_up(d); };
}
on_hedge_hook hedge_metrics_hook(metrics& m) {
  return [&m](const hedge_event& e) { m.record_hedge(e); };
}
on_breaker_hook breaker_metrics_hook(metrics& m) {
  return [&m](const circuit_breaker::transition& t) { m.record_breaker(t); };
}

}  // namespace instrumentation

namespace detail {

bool has_on_retry_hooks() noexcept { return instrumentation::retry_hooks().any(); }
bool has_on_give_up_hooks() noexcept { return instrumentation::give_up_hooks().any(); }
bool has_on_hedge_hooks() noexcept { return instrumentation::hedge_hooks().any(); }
bool has_on_breaker_hooks() noexcept { return instrumentation::breaker_hooks().any(); }

namespace {
void report_hook_failure(const char* kind, const char* consequence = "threw and was ignored") noexcept {
  try {
    std::string what = "unknown exception";
    try {
      throw;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::lock_guard lock(instrumentation::stream_mutex());
    std::cerr << "stamina: an " << kind << ' ' << consequence << ": " << what << '\n';
  } catch (...) {
  }
}
}  // namespace

namespace {
// Calls `call(hook)` for every hook of the registry's snapshot, then for the policy's own.
template <class Hook, class Call>
void notify_each(bool any, instrumentation::registry<Hook>& hooks, const Hook* own, Call call) noexcept {
  if (any) {
    std::shared_ptr<const std::vector<Hook>> snapshot;
    try {
      snapshot = hooks.snapshot();
    } catch (...) {
    }
    if (snapshot)
      for (const auto& hook : *snapshot) call(hook);
  }
  if (own != nullptr) call(*own);
}
}  // namespace

void notify_retry(const retry_details& d, retry_scope& scope, const instrumentation::on_retry_hook* own) noexcept {
  notify_each(has_on_retry_hooks(), instrumentation::retry_hooks(), own,
              [&](const instrumentation::on_retry_hook& hook) {
                try {
                  if (auto object = hook(d)) scope.hold(std::move(object));
                } catch (...) {
                  report_hook_failure("on-retry hook");
                }
              });
}

void notify_give_up(const give_up_details& d, const instrumentation::on_give_up_hook* own) noexcept {
  notify_each(has_on_give_up_hooks(), instrumentation::give_up_hooks(), own,
              [&](const instrumentation::on_give_up_hook& hook) {
                try {
                  if (hook) hook(d);
                } catch (...) {
                  report_hook_failure("on-give-up hook");
                }
              });
}

void notify_hedge(const hedge_event& e) noexcept {
  notify_each<instrumentation::on_hedge_hook>(has_on_hedge_hooks(), instrumentation::hedge_hooks(), nullptr,
                                              [&](const instrumentation::on_hedge_hook& hook) {
                                                try {
                                                  if (hook) hook(e);
                                                } catch (...) {
                                                  report_hook_failure("on-hedge hook");
                                                }
                                              });
}

void notify_breaker(const circuit_breaker::transition& t) noexcept {
  notify_each<instrumentation::on_breaker_hook>(has_on_breaker_hooks(), instrumentation::breaker_hooks(), nullptr,
                                                [&](const instrumentation::on_breaker_hook& hook) {
                                                  try {
                                                    if (hook) hook(t);
                                                  } catch (...) {
                                                    report_hook_failure("on-breaker hook");
                                                  }
                                                });
}

void report_classifier_failure() noexcept {
  report_hook_failure("on/on_result classifier",
                      "failed (threw, or returned an invalid wait), so the failure is not retried");
}

void report_hedge_hook_failure() noexcept { report_hook_failure("on-hedge hook"); }

}  // namespace detail

STAMINA_NAMESPACE_END
