// libFuzzer target: random policies (including invalid values), failure sequences and clock
// readings drive backoff; its invariants (never past the deadline, never more than `attempts`,
// waits within the policy's bounds, server-given waits capped) are checked on every step.

#include <stamina/backoff.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}
#define CHECK(cond)               \
  do {                            \
    if (!(cond)) violated(#cond); \
  } while (0)

// A double from the input: mostly ordinary values, sometimes hostile ones.
double any_double(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0:
      return std::nan("");
    case 1:
      return HUGE_VAL;
    case 2:
      return -HUGE_VAL;
    case 3:
      return -in.ConsumeFloatingPointInRange<double>(0, 1e6);
    case 4:
      return in.ConsumeFloatingPoint<double>();
    default:
      return in.ConsumeFloatingPointInRange<double>(0, 100);
  }
}

bool valid_non_negative(double v) { return std::isfinite(v) && v >= 0; }

// Calls a setter; checks that it throws exactly when the value is invalid.
template <class Set>
void set(bool valid, Set&& setter) {
  bool threw = false;
  try {
    setter();
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw == !valid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  stamina::retry_policy policy(stamina::retry_on([](const stamina::failure&) { return true; }));

  const double initial = any_double(in), max = any_double(in), jitter = any_double(in), base = any_double(in);
  set(valid_non_negative(initial), [&] { policy.wait_initial(stamina::duration(initial)); });
  set(valid_non_negative(max), [&] { policy.wait_max(stamina::duration(max)); });
  set(valid_non_negative(jitter), [&] { policy.wait_jitter(stamina::duration(jitter)); });
  set(std::isfinite(base) && base >= 1, [&] { policy.wait_exp_base(base); });
  if (in.ConsumeBool()) {
    const double timeout = any_double(in);
    set(std::isfinite(timeout) && timeout > 0, [&] { policy.timeout(stamina::duration(timeout)); });
  } else {
    policy.timeout(std::nullopt);
  }
  const long long attempts = in.ConsumeIntegralInRange<long long>(-2, 5000000000LL);
  set(attempts > 0, [&] { policy.attempts(attempts); });
  if (in.ConsumeBool()) policy.attempts(std::nullopt);
  policy.jitter(static_cast<stamina::jitter>(in.ConsumeIntegralInRange<int>(0, 3)));
  const double cap = in.ConsumeFloatingPointInRange<double>(-1, 1e6);
  set(cap >= 0, [&] { policy.max_server_wait(stamina::duration(cap)); });
  if (in.ConsumeBool()) policy.max_server_wait(std::nullopt);
  const double server_cap = policy.max_server_wait() ? policy.max_server_wait()->count() : INFINITY;
  auto budget =
      in.ConsumeBool() ? std::make_shared<stamina::retry_budget>(in.ConsumeIntegralInRange<int>(1, 50), 0.5) : nullptr;
  policy.budget(budget);

  stamina::backoff b(policy, in.ConsumeIntegral<std::uint64_t>());
  const double wmax = policy.wait_max().count(), wjit = policy.wait_jitter().count();
  const auto deadline = b.deadline();
  const auto limit = b.max_attempts();
  double elapsed = 0, waited = 0, previous = policy.wait_initial().count();
  for (unsigned step = 1; step <= 64 && in.remaining_bytes() > 0; ++step) {
    elapsed += in.ConsumeFloatingPointInRange<double>(0, 10);
    const bool override_wait = in.ConsumeBool();
    const double requested = in.ConsumeFloatingPointInRange<double>(0, 1e12);
    const stamina::decision d = override_wait ? stamina::decision::retry_after(stamina::duration(requested))
                                              : stamina::decision(in.ConsumeBool());
    const auto s = b.on_failure(d, stamina::duration(elapsed));
    CHECK(s.retry_num == step);
    CHECK(b.failures() == step);
    CHECK(s.waited_so_far.count() == waited);
    if (!s.retry) break;
    const double w = s.wait.count();
    CHECK(d.should_retry());
    CHECK(std::isfinite(w) && w >= 0);
    if (limit) CHECK(step < *limit);
    if (deadline) CHECK(elapsed + w < deadline->count());
    if (override_wait) {
      // A server-given wait, capped by max_server_wait, is a minimum, spread after it by at most
      // min(d, wait_jitter).
      const double asked = std::min(requested, server_cap);
      CHECK(w >= asked);
      CHECK(w <= asked + std::min(asked, wjit));
    } else {
      switch (policy.jitter()) {
        case stamina::jitter::additive:
          CHECK(w <= wmax + wjit);
          break;
        case stamina::jitter::full:
        case stamina::jitter::equal:
          CHECK(w <= wmax);
          break;
        case stamina::jitter::decorrelated:
          CHECK(w <= wmax);
          CHECK(w <= std::max(policy.wait_initial().count(), 3 * previous) * (1 + 1e-12));
          previous = w;
          break;
      }
    }
    waited = std::min(waited + w, std::numeric_limits<double>::max());  // the sum saturates, as the backoff's
    elapsed += w;
  }
  if (budget) CHECK(budget->tokens() >= 0 && budget->tokens() <= budget->max_tokens());
  return 0;
}
