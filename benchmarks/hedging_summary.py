"""Prints the hedging benchmark's table (benchmarks/hedging.csv) with the issue's targets."""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/hedging.csv")))
by = {(r["profile"], r["strategy"]): r for r in rows}


def f(r, k):
    return float(r[k])


print("\nheavy tail (98 % 1 ms, 2 % 100 ms), 16 concurrent callers")
hedged = ("constant", "unbudgeted-constant", "adaptive-p95", "adaptive-p98")
print(f"  {'strategy':22} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>9} {'max ms':>7} {'extra req':>9}"
      f" {'srv received':>12} {'srv abandoned':>13} {'failed':>6} {'delay ms':>8}")
for r in rows:
    if r["profile"] != "tail":
        continue
    delay = f"{f(r, 'final_delay_ms'):8.2f}" if r["strategy"] in hedged else "       -"
    print(f"  {r['strategy']:22} {r['calls']:>6} {f(r, 'p50_ms'):7.2f} {f(r, 'p99_ms'):7.2f} {f(r, 'p999_ms'):9.2f}"
          f" {f(r, 'max_ms'):7.1f} {f(r, 'extra_pct'):8.2f}% {r['server_received']:>12} {r['server_abandoned']:>13}"
          f" {r['failed']:>6} {delay}")
base = by.get(("tail", "none"))
print("\n  target: p99.9 at least 10x lower than without hedging, with <= 5 % extra requests (adaptive)")
for name in ("adaptive-p95", "adaptive-p98", "constant"):
    r = by.get(("tail", name))
    if base and r:
        gain = f(base, "p999_ms") / f(r, "p999_ms")
        ok = gain >= 10 and f(r, "extra_pct") <= 5
        print(f"  {name:22} p99.9 {gain:5.1f}x lower, {f(r, 'extra_pct'):.2f} % extra: {'MET' if ok else 'MISSED'}")

print("\noverload (every request 100 ms), 32 concurrent callers; budget: 5 % of calls + a burst of 10")
print(f"  {'strategy':22} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7} {'requests':>8} {'extra req':>9}"
      f" {'bound':>7} {'srv abandoned':>13} {'failed':>6}")
for r in rows:
    if r["profile"] != "overload":
        continue
    n = f(r, "calls")
    budgeted = r["strategy"] in ("constant", "adaptive-p95")
    bound = f"{(10 + 0.05 * n) / n * 100:6.2f}%" if budgeted else "      -"
    print(f"  {r['strategy']:22} {r['calls']:>6} {f(r, 'p50_ms'):7.2f} {f(r, 'p99_ms'):7.2f} {r['requests']:>8}"
          f" {f(r, 'extra_pct'):8.2f}% {bound} {r['server_abandoned']:>13} {r['failed']:>6}")
print("\n  target: with a budget, extra requests stay within it (5 % of calls + the burst of 10)")
for name in ("constant", "adaptive-p95"):
    r = by.get(("overload", name))
    if r:
        n = f(r, "calls")
        extra = f(r, "requests") - n
        print(f"  {name:22} {extra:.0f} extra for {n:.0f} calls (bound {10 + 0.05 * n:.0f}):"
              f" {'MET' if extra <= 10 + 0.05 * n else 'MISSED'}")

print("\nsuccess path on real requests (every request 1 ms, one caller, no hedge due; two runs each, alternated)")
fast = [r for r in rows if r["profile"] == "fast"]
means = {}
for r in fast:
    # mean latency = 1 / throughput for one caller
    means.setdefault(r["strategy"], []).append(1000.0 / f(r, "calls_per_s"))
for name, v in means.items():
    print(f"  {name:22} mean per call {sum(v) / len(v):.4f} ms  (runs: {', '.join(f'{x:.4f}' for x in v)})")
if "async-retry" in means and "idle-hedge" in means:
    ratio = (sum(means["idle-hedge"]) / len(means["idle-hedge"])) / (sum(means["async-retry"]) / len(means["async-retry"]))
    print(f"  target: async_hedge's success path <= 1.2x async_retry's: {ratio:.3f}x: {'MET' if ratio <= 1.2 else 'MISSED'}")
