// The non-template parts of the value types: validation, descriptions, the seed source.

#include <stamina/adaptive_throttle.hpp>
#include <stamina/backoff.hpp>
#include <stamina/decision.hpp>
#include <stamina/detail/classifier.hpp>
#include <stamina/detail/namespace.hpp>
#include <stamina/detail/retry_protocol.hpp>
#include <stamina/failure.hpp>
#include <stamina/retry.hpp>
#include <stamina/retry_budget.hpp>
#include <stamina/retry_context.hpp>
#include <stamina/retry_policy.hpp>

#include "call_site.hpp"
#include "fork_safety.hpp"
#include "immortal.hpp"

#if defined(STAMINA_STANDALONE_ASIO)
#include <cxxabi.h>

#include <cstdlib>
#else
#include <boost/core/demangle.hpp>
#endif
#include <stamina/detail/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <utility>

STAMINA_NAMESPACE_BEGIN

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

// A type's readable name, without the wrappers boost::throw_exception adds.
std::string readable(const char* mangled) {
  std::string name = demangled(mangled);
  for (const std::string_view wrapper :
       {std::string_view("boost::wrapexcept<"), std::string_view("boost::exception_detail::clone_impl<")}) {
    if (name.rfind(wrapper, 0) == 0 && !name.empty() && name.back() == '>')
      name = name.substr(wrapper.size(), name.size() - wrapper.size() - 1);
  }
  while (!name.empty() && name.back() == ' ') name.pop_back();
  return name;
}

std::string exception_type_name(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return readable(typeid(ex).name());
  } catch (...) {
    return "unknown exception";
  }
}

// "system:connection_refused": the category and the message, as one label-friendly word.
std::string code_name(const stamina::error_code& ec) {
  std::string name = ec.category().name();
  name += ':';
  const std::string message = ec.message();
  for (const char c : message) {
    if (c >= 'A' && c <= 'Z')
      name += static_cast<char>(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      name += c;
    else if (name.back() != '_' && name.back() != ':')
      name += '_';
  }
  while (name.back() == '_') name.pop_back();
  return name;
}

// "system: Connection refused [111]"
std::string code_text(const stamina::error_code& ec) {
  return std::string(ec.category().name()) + ": " + ec.message() + " [" + std::to_string(ec.value()) + "]";
}

}  // namespace

// --- failure ---------------------------------------------------------------------------

stamina::error_code failure::error() const noexcept {
  if (!exception_) return error_;
  if (const auto* se = get<stamina::system_error>()) return se->code();
  return {};
}

std::string failure::describe() const {
  if (!exception_) return code_text(error_);
  std::string text = exception_type_name(exception_);
  try {
    std::rethrow_exception(exception_);
  } catch (const stamina::system_error& ex) {
    // Its what() carries the throw site's file and function: too long for one log line.
    text += ": " + code_text(ex.code());
  } catch (const std::exception& ex) {
    text += ": ";
    text += ex.what();
  } catch (...) {
  }
  return text;
}

std::string failure::type_name() const {
  if (exception_) return exception_type_name(exception_);
  return code_name(error_);
}

std::string detail::readable_type_name(const std::type_info& type) { return readable(type.name()); }

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
  next->refresh();  // the copy's spec still pointed into the old block
  shared_ = std::move(next);
  reshape();
}

struct retry_policy::interned_table {
  interned_table() { detail::hold_across_fork(mutex); }
  std::mutex mutex;
  std::map<std::pair<const detail::call_site*, const void*>, shared_parts> parts;
};

retry_policy::interned_table& retry_policy::interned_parts() {
  static detail::immortal<interned_table> interned;
  return interned.get();
}
const bool retry_policy::interned_made_at_load_ = (interned_parts(), true);  // see fork_safety.hpp

namespace {
// A per-thread cache entry of make_parts: the interned block of a (file, line, predicate).
struct interned_entry {
  const char* file = nullptr;
  unsigned line = 0;
  const void* identity = nullptr;
  const void* parts = nullptr;
};
thread_local std::array<interned_entry, 16> interned_cache{};
}  // namespace

std::shared_ptr<const retry_policy::shared_parts> retry_policy::make_parts_slowly(retry_on&& on, const char* file,
                                                                                  unsigned line, void* cache_entry) {
  const detail::call_site& site = detail::intern_call_site(file, line);
  const void* identity = on.stateless_identity();
  if (identity == nullptr)  // a predicate with state: a block of its own
    return std::make_shared<const shared_parts>(std::move(on), &site);
  interned_table& interned = interned_parts();
  std::lock_guard lock(interned.mutex);
  auto it = interned.parts.find({&site, identity});
  if (it == interned.parts.end())
    it = interned.parts
             .emplace(std::piecewise_construct, std::forward_as_tuple(&site, identity),
                      std::forward_as_tuple(std::move(on), &site))
             .first;
  *static_cast<interned_entry*>(cache_entry) = {file, line, identity, &it->second};
  // Not owned, not counted: the block lives as long as the program.
  return std::shared_ptr<const shared_parts>(std::shared_ptr<const shared_parts>(), &it->second);
}

// A predicate without state is interned per (call site, predicate), behind a per-thread cache
// keyed by the caller's file and line: a policy made per call finds its block with one lookup.
// Everything else is the slow way's, one out-of-line call: the hit saves one register, against
// the six the slow way needs (callgrind: 152 → 132 instructions per policy made and used).
std::shared_ptr<const retry_policy::shared_parts> retry_policy::make_parts(retry_on&& on, const char* file,
                                                                           unsigned line) {
  const void* identity = on.stateless_identity();
  interned_entry& e = interned_cache[(reinterpret_cast<std::uintptr_t>(file) / 8 + line +
                                      reinterpret_cast<std::uintptr_t>(identity) / 16) %
                                     interned_cache.size()];
  if (identity == nullptr || e.file != file || e.line != line || e.identity != identity || e.parts == nullptr)
      [[unlikely]]
    return make_parts_slowly(std::move(on), file, line, &e);
  // Not owned, not counted: the block lives as long as the program.
  return std::shared_ptr<const shared_parts>(std::shared_ptr<const shared_parts>(),
                                             static_cast<const shared_parts*>(e.parts));
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
  // The name's default throttle is looked up when a call needs it, not here.
  change_shared([&](shared_parts& p) {
    p.name = std::move(value);
    p.named = true;
  });
  return *this;
}

retry_policy& retry_policy::budget(std::shared_ptr<retry_budget> value) & {
  change_shared([&](shared_parts& p) { p.budget = std::move(value); });
  return *this;
}

retry_policy& retry_policy::breaker(std::shared_ptr<circuit_breaker> value) & {
  change_shared([&](shared_parts& p) { p.breaker = std::move(value); });
  return *this;
}

retry_policy& retry_policy::limit(std::shared_ptr<concurrency_limit> value) & {
  change_shared([&](shared_parts& p) { p.limit = std::move(value); });
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
  values_.attempts = value.value_or(0);
  return *this;
}

retry_policy& retry_policy::timeout(std::optional<duration> value) & {
  check_positive("timeout", value);
  values_.timeout = or_none(value);
  reshape();
  return *this;
}

retry_policy& retry_policy::wait_initial(duration value) & {
  check_non_negative("wait_initial", value);
  values_.wait_initial = value;
  return *this;
}

retry_policy& retry_policy::wait_max(duration value) & {
  check_non_negative("wait_max", value);
  values_.wait_max = value;
  return *this;
}

retry_policy& retry_policy::wait_jitter(duration value) & {
  check_non_negative("wait_jitter", value);
  values_.wait_jitter = value;
  return *this;
}

retry_policy& retry_policy::wait_exp_base(double value) & {
  if (!std::isfinite(value) || value < 1) {
    std::ostringstream out;
    out << value;
    invalid("wait_exp_base", "finite and >= 1", out.str());
  }
  values_.wait_exp_base = value;
  return *this;
}

retry_policy& retry_policy::max_server_wait(std::optional<duration> value) & {
  if (value) check_non_negative("max_server_wait", *value);
  change_shared([&](shared_parts& p) { p.max_server_wait = value; });
  return *this;
}

void retry_policy::set_deadline(double seconds_since_epoch) {
  if (std::isnan(seconds_since_epoch)) invalid("deadline", "a time, not NaN", "nan");
  values_.deadline = std::min(values_.deadline, seconds_since_epoch);  // only ever earlier
  reshape();
}

retry_policy& retry_policy::within(const attempt_context& outer) & {
  detail::context_access::inherit(values_.deadline, outer);
  reshape();
  return *this;
}

retry_policy& retry_policy::reset_after(std::optional<duration> value) & {
  check_positive("reset_after", value);
  values_.reset_after = or_none(value);
  reshape();
  return *this;
}

retry_policy& retry_policy::attempt_timeout(std::optional<duration> value) & {
  check_positive("attempt_timeout", value);
  values_.attempt_timeout = or_none(value);
  reshape();
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
  bucket_.set(max_milli_);
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

STAMINA_NAMESPACE_END
