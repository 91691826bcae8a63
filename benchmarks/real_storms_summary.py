#!/usr/bin/env python3
"""Summarises benchmarks/real_storms.sh's CSVs against the storm-safety targets.

Metastable runs: recovered = from some second on, every 2 s window until 2 s before the end
delivers successes for at least 80 % of the requests that arrived in it; recovery is counted
from the end of the dip (7 s). Peak load = the most datagrams the server received in one
second, over its mean in seconds 1-4. Rate-limiter runs: requests per success, drain time
(last success) against the limiter's physical limit (200 - 20) / 20 = 9 s, and retries that
came earlier than Retry-After.
"""
import csv
import glob
import os
import sys
from collections import defaultdict

DIP_END = 7.0


def rows(path):
    with open(path) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def metastable(out):
    runs = defaultdict(list)
    for server_csv in sorted(glob.glob(os.path.join(out, "metastable_*_server.csv"))):
        tag = os.path.basename(server_csv)[: -len("_server.csv")]
        _, policy, seed = tag.rsplit("_", 2)
        server = rows(server_csv)
        clients = [rows(os.path.join(out, f"{tag}_client{i}.csv")) for i in (1, 2)]
        n = min(len(server), *(len(c) for c in clients))
        col = lambda name: [sum(c[s][name] for c in clients) for s in range(n)]
        requests, successes, failures, attempts = col("requests"), col("successes"), col("failures"), col("attempts")
        end = int(max(s for s in range(n) if requests[s] > 0)) + 1
        recovered_at = None
        for t in range(int(DIP_END), end - 3):
            if all(successes[w] + successes[w + 1] >= 0.8 * (requests[w] + requests[w + 1]) for w in range(t, end - 3)):
                recovered_at = t
                break
        # Per request, in the monotonic clock all processes share: successes that ended inside
        # the server's dip (seconds 5-7 of its run), and latencies of requests made while healthy
        # (seconds 1-4.5).
        origin = float(open(server_csv + ".origin").read())
        reqs = [r for i in (1, 2) for r in rows(os.path.join(out, f"{tag}_client{i}.csv.requests"))]
        dip = sum(1 for r in reqs if r["succeeded"] and origin + 5 <= r["ended"] < origin + 7)
        healthy = [r["ended"] - r["began"] for r in reqs if r["succeeded"] and origin + 1 <= r["began"] < origin + 4.5]
        received = [server[s]["received"] for s in range(n)]
        normal = sum(received[1:5]) / 4
        runs[policy].append(
            {
                "recovered": recovered_at is not None,
                "recovery": (recovered_at - DIP_END) if recovered_at is not None else None,
                "failed": sum(failures),
                "requests": sum(requests),
                "peak": max(received[1:end]) / normal,
                "aps": sum(attempts) / max(1.0, sum(successes)),
                "final_goodput": sum(successes[end - 4 : end - 1]) / max(1.0, sum(requests[end - 4 : end - 1])),
                "dip_goodput": dip,
                "healthy": healthy,
            }
        )
    return runs


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def overload(out):
    """Sustained overload: capacity 100/s, 37.5/s from 2 s for 10 s, 75 requests/s offered."""
    runs = defaultdict(list)
    for server_csv in sorted(glob.glob(os.path.join(out, "overload_*_server.csv"))):
        tag = os.path.basename(server_csv)[: -len("_server.csv")]
        _, policy, seed = tag.rsplit("_", 2)
        origin = float(open(server_csv + ".origin").read())
        reqs = [r for i in (1, 2) for r in rows(os.path.join(out, f"{tag}_client{i}.csv.requests"))]
        trips = [r for i in (1, 2) for r in rows(os.path.join(out, f"{tag}_client{i}.csv.attempts"))]
        runs[policy].append(
            {
                # from 1 s into the overload to its end: 9 s
                "goodput": sum(1 for r in reqs if r["succeeded"] and origin + 3 <= r["ended"] < origin + 12) / 9,
                "overloaded": [t["answered"] - t["sent"] for t in trips if origin + 3 <= t["sent"] < origin + 11.5],
                "before": [t["answered"] - t["sent"] for t in trips if origin + 0.5 <= t["sent"] < origin + 2],
            }
        )
    return runs


def ratelimit(out):
    result = {}
    for path in sorted(glob.glob(os.path.join(out, "ratelimit_*.csv"))):
        policy = os.path.basename(path)[len("ratelimit_") : -len(".csv")]
        r = rows(path)
        done = [x["done_at"] for x in r if x["done_at"] >= 0]
        result[policy] = {
            "clients": len(r),
            "succeeded": len(done),
            "requests_per_success": sum(x["attempts"] for x in r) / max(1, len(done)),
            "drain": max(done) if done else float("nan"),
            "early": sum(1 for x in r if x["worst_margin"] < 0),
            "margin": min(x["worst_margin"] for x in r),
        }
    return result


def random_failures(out):
    result = defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(out, "random_*.csv"))):
        _, failing, policy = os.path.basename(path)[: -len(".csv")].split("_")
        r = rows(path)[0]
        result[policy][float(failing)] = r
    return result


def main():
    out = sys.argv[1]
    runs = metastable(out)
    print("metastable overload, real processes (FIFO UDP server 100/s, 75 req/s, 0.5 s attempt limit, 30/s for 2 s)")
    print(f"{'policy':10} {'recovered':>10} {'recovery s':>11} {'failed req':>11} {'failed %':>9} {'peak load':>10} {'att/success':>12} {'goodput at end':>15} {'dip goodput':>12} {'healthy p99':>12}")
    for policy, rs in runs.items():
        rec = [r["recovery"] for r in rs if r["recovered"]]
        failed = sum(r["failed"] for r in rs) / len(rs)
        requests = sum(r["requests"] for r in rs) / len(rs)
        print(
            f"{policy:10} {sum(r['recovered'] for r in rs):>6}/{len(rs):<3} "
            f"{(f'{sum(rec) / len(rec):.0f} / {max(rec):.0f}' if rec else 'never'):>11} {failed:>11.0f} "
            f"{100 * failed / requests:>8.1f}% {sum(r['peak'] for r in rs) / len(rs):>9.1f}x "
            f"{sum(r['aps'] for r in rs) / len(rs):>12.2f} {100 * sum(r['final_goodput'] for r in rs) / len(rs):>14.0f}% "
            f"{sum(r['dip_goodput'] for r in rs) / len(rs):>8.0f} / 60 "
            f"{1000 * percentile([x for r in rs for x in r['healthy']], 0.99):>9.0f} ms"
        )
    print("  dip goodput: successes that ended during the dip (the server answers 60 in it); healthy p99: latency")
    print("  of the requests made in seconds 1-4.5, pooled over the runs")
    overloads = overload(out)
    if overloads:
        print()
        print("sustained overload, real processes (FIFO UDP server 100/s, 37.5/s for 10 s from 2 s; 75 req/s: 2x)")
        print(f"{'policy':10} {'goodput':>9} {'of capacity':>12} {'attempt p99':>12} {'p99 before':>11} {'ratio':>6}")
        for policy, rs in overloads.items():
            good = sum(r["goodput"] for r in rs) / len(rs)
            p99 = percentile([x for r in rs for x in r["overloaded"]], 0.99)
            before = percentile([x for r in rs for x in r["before"]], 0.99)
            print(f"{policy:10} {good:>7.1f}/s {100 * good / 37.5:>11.0f}% {1000 * p99:>9.0f} ms {1000 * before:>8.0f} ms {p99 / before:>5.1f}x")
        print("  goodput: successes per second from 1 s into the overload to its end; attempt p99: round trip of the")
        print("  attempts the server answered, sent during the overload; before: the same in the healthy seconds before it")
    limits = ratelimit(out)
    physical = (200 - 20) / 20
    print()
    print(f"rate limiter, HAProxy (20 accepted/s, 429 + Retry-After: 1), 200 clients; physical limit {physical:.0f} s")
    print(f"{'policy':10} {'succeeded':>10} {'req/success':>12} {'drain s':>8} {'x limit':>8} {'early retries':>14}")
    for policy, r in limits.items():
        print(
            f"{policy:10} {r['succeeded']:>6}/{r['clients']:<3} {r['requests_per_success']:>12.2f} {r['drain']:>8.1f} "
            f"{r['drain'] / physical:>7.2f}x {r['early']:>14}"
        )

    randoms = random_failures(out)
    if randoms:
        print()
        print("random failures, capacity to spare (UDP server answering in 2 ms), 50 req/s for 10 s, defaults scaled down")
        rates = sorted({f for r in randoms.values() for f in r})
        print(f"{'policy':10} " + " ".join(f"{f'{100 * f:.0f} % failing':>14}" for f in rates) + "   (succeeded, attempts per request)")
        for policy, by_rate in randoms.items():
            cells = []
            for f in rates:
                r = by_rate.get(f)
                cells.append(f"{100 * r['succeeded'] / r['requests']:6.1f}% {r['attempts'] / r['requests']:5.2f}" if r else " " * 14)
            print(f"{policy:10} " + " ".join(f"{c:>14}" for c in cells))

    print()
    print("targets")
    checks = []
    if "default" in runs:
        d = runs["default"]
        checks.append(("metastable: the default recovers in every run", all(r["recovered"] for r in d)))
    if "naive" in runs:
        checks.append(("metastable: naive retries stay collapsed in every run", not any(r["recovered"] for r in runs["naive"])))
    recovering = {p: sum(r["failed"] for r in rs) / len(rs) for p, rs in runs.items() if all(r["recovered"] for r in rs)}
    if "default" in recovering:
        best = min(recovering.values())
        checks.append(
            (
                f"metastable: among recovering policies the default fails the fewest (or within 10 %): "
                f"{recovering['default']:.0f} vs best {best:.0f}",
                recovering["default"] <= best * 1.1 + 1e-9,
            )
        )
    if "limit" in runs:
        lim = runs["limit"]
        dip = min(r["dip_goodput"] for r in lim)
        checks.append((f"metastable: with the concurrency limit, goodput during the dip >= 48 of 60 in every run (lowest {dip})", dip >= 48))
        rec = [r["recovery"] for r in lim if r["recovered"]]
        checks.append(
            (
                f"metastable: with the limit, recovered within 2 s of the dip's end in every run ({max(rec) if rec else 'never'})",
                len(rec) == len(lim) and max(rec) <= 2,
            )
        )
        failed = sum(r["failed"] for r in lim) / sum(r["requests"] for r in lim)
        checks.append((f"metastable: with the limit, <= 1 % of requests failed ({100 * failed:.2f} %)", failed <= 0.01))
        if "default" in runs:
            with_limit = percentile([x for r in lim for x in r["healthy"]], 0.99)
            without = percentile([x for r in runs["default"] for x in r["healthy"]], 0.99)
            checks.append(
                (
                    f"metastable: healthy latency p99 with the limit within 10 % of the default's "
                    f"({1000 * with_limit:.0f} vs {1000 * without:.0f} ms)",
                    with_limit <= 1.1 * without,
                )
            )
    if "limit" in overloads:
        rs = overloads["limit"]
        good = min(r["goodput"] for r in rs)
        checks.append((f"overload 2x: with the limit, goodput >= 90 % of capacity in every run (lowest {100 * good / 37.5:.0f} %)", good >= 0.9 * 37.5))
        p99 = percentile([x for r in rs for x in r["overloaded"]], 0.99)
        before = percentile([x for r in rs for x in r["before"]], 0.99)
        checks.append((f"overload 2x: with the limit, attempt p99 <= 2x the p99 before the overload ({p99 / before:.1f}x)", p99 <= 2 * before))
    if "default" in limits:
        r = limits["default"]
        checks.append((f"rate limiter: <= 2 requests per success ({r['requests_per_success']:.2f})", r["requests_per_success"] <= 2))
        checks.append((f"rate limiter: drain <= 1.3x the physical limit ({r['drain'] / physical:.2f}x)", r["drain"] <= 1.3 * physical))
        checks.append(("rate limiter: every client succeeded", r["succeeded"] == r["clients"]))
    for policy, r in limits.items():
        if policy != "naive":
            checks.append((f"rate limiter ({policy}): no retry earlier than Retry-After (smallest margin {r['margin'] * 1000:.1f} ms)", r["early"] == 0))
    for failing, target in ((0.5, 99.0), (0.7, 95.0)):
        r = randoms.get("default", {}).get(failing)
        if r:
            pct = 100 * r["succeeded"] / r["requests"]
            checks.append((f"random failures: the default succeeds >= {target:.0f} % at {100 * failing:.0f} % failing ({pct:.1f} %)", pct >= target))
    for what, ok in checks:
        print(f"  {'MET ' if ok else 'MISS'} {what}")


if __name__ == "__main__":
    main()
