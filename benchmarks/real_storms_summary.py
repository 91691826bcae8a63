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
    print(f"{'policy':10} {'recovered':>10} {'recovery s':>11} {'failed req':>11} {'failed %':>9} {'peak load':>10} {'att/success':>12} {'goodput at end':>15}")
    for policy, rs in runs.items():
        rec = [r["recovery"] for r in rs if r["recovered"]]
        failed = sum(r["failed"] for r in rs) / len(rs)
        requests = sum(r["requests"] for r in rs) / len(rs)
        print(
            f"{policy:10} {sum(r['recovered'] for r in rs):>6}/{len(rs):<3} "
            f"{(f'{sum(rec) / len(rec):.0f} / {max(rec):.0f}' if rec else 'never'):>11} {failed:>11.0f} "
            f"{100 * failed / requests:>8.1f}% {sum(r['peak'] for r in rs) / len(rs):>9.1f}x "
            f"{sum(r['aps'] for r in rs) / len(rs):>12.2f} {100 * sum(r['final_goodput'] for r in rs) / len(rs):>14.0f}%"
        )
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
