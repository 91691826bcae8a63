"""Prints every benchmark's ratio against its baseline from the CSV files of one run."""
import csv
import sys
from pathlib import Path

results = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")

# Google Benchmark CSV: header line starts with "name"; earlier lines may be context.
lines = (results / "overhead.csv").read_text().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("name,"))
rows = list(csv.DictReader(lines[start:]))
median = {r["name"].rsplit("_median", 1)[0]: r for r in rows if r["name"].endswith("_median")}


def ns(name):
    return float(median[name]["real_time"])


def allocs(name):
    return float(median[name].get("allocs") or 0)


print("\noverhead per call (median of 5; allocs = heap allocations per call: operator new and Asio's aligned blocks)")
pairs = [
    ("sync success, default policy (45 s deadline)", "sync_stamina_retry", "sync_hand_written_loop", 3.0),
    ("sync success, no deadline", "sync_stamina_retry_no_timeout", "sync_hand_written_loop", 1.5),
    ("async success, awaitable op, co_await", "async_awaitable_stamina", "async_awaitable_hand_written_loop", 1.3),
    ("async success, token op, co_await", "async_token_stamina", "async_token_hand_written_loop", 1.1),
    ("async success, token op, callback", "callback_stamina", "callback_direct", 1.5),
    ("retry path, zero waits (1 failure + 1 success)", "async_retry_path_stamina", "async_retry_path_hand_written_loop",
     1.1),
    ("hedge success, trivial post (vs async_retry's, reactor)", "reactor_token_hedge", "reactor_token_stamina", 1.5),
]
print(f"  {'case':56} {'stamina ns':>11} {'baseline ns':>12} {'ratio':>7} {'target':>7} {'':5} {'allocs':>7}")
for label, ours, base, target in pairs:
    ratio = ns(ours) / ns(base)
    print(f"  {label:56} {ns(ours):11.1f} {ns(base):12.1f} {ratio:6.2f}x {target:6.2f}x "
          f"{'MET ' if ratio <= target else 'MISS'}  {allocs(ours):7.2f}")
print("  floors measured in the same run:")
print(f"    one coarse clock read (the deadline's): {ns('clock_coarse_read'):.1f} ns; "
      f"sync with no deadline minus the hand-written loop: "
      f"{ns('sync_stamina_retry_no_timeout') - ns('sync_hand_written_loop'):+.1f} ns")
print("    the hand-written loop as a coroutine (or composed operation) of its own, called per call "
      "(what any retry function adds before it does anything):")
for label, ours, base, floor in (
        ("awaitable op, co_await", "async_awaitable_stamina", "async_awaitable_hand_written_loop",
         "async_awaitable_wrapped_hand_written_loop"),
        ("token op, co_await", "async_token_stamina", "async_token_hand_written_loop",
         "async_token_wrapped_hand_written_loop"),
        ("token op, callback", "callback_stamina", "callback_direct", "callback_composed_hand_written"),
        ("retry path", "async_retry_path_stamina", "async_retry_path_hand_written_loop",
         "async_retry_path_wrapped_hand_written_loop")):
    print(f"      {label:24} floor {ns(floor):6.1f} ns ({ns(floor) / ns(base):.2f}x the baseline, allocs "
          f"{allocs(floor):.2f}); stamina {ns(ours) / ns(floor):.2f}x the floor")
print(f"      hedge success (reactor)  floor {ns('reactor_token_hedge_hand_written'):6.1f} ns "
      f"({ns('reactor_token_hedge_hand_written') / ns('reactor_token_stamina'):.2f}x async_retry's, allocs "
      f"{allocs('reactor_token_hedge_hand_written'):.2f}: the attempt beside a timer of its own for the delay, "
      f"disarmed on success); stamina {ns('reactor_token_hedge') / ns('reactor_token_hedge_hand_written'):.2f}x "
      f"the floor")
print(f"  a closed circuit breaker on the sync success (no deadline): "
      f"{ns('sync_stamina_retry_breaker') - ns('sync_stamina_retry_no_timeout'):+.1f} ns (target <= 20 ns)")
print(f"  a concurrency limit with room on the sync success (no deadline): "
      f"{ns('sync_stamina_retry_limit') - ns('sync_stamina_retry_no_timeout'):+.1f} ns (target <= 20 ns; "
      f"floor: its two reads of the precise clock, {2 * ns('clock_precise_read'):.1f} ns)")
layered_extra = ns('sync_stamina_retry_layered') - ns('sync_stamina_retry')
print(f"  a middle layer's healthy call (grpc-timeout parsed into a deadline, the context's time left "
      f"formatted): {layered_extra:+.1f} ns per call (target <= 1000 ns: "
      f"{'MET' if layered_extra <= 1000 else 'MISS'})")
print(f"  a policy made per call (quick-start shape) against a reused one: "
      f"{ns('sync_stamina_retry_policy_per_call') / ns('sync_stamina_retry'):.2f}x (target <= 1.5x)")
print(f"  (a bare co_await of the awaitable op: {ns('async_awaitable_direct'):.1f} ns; "
      f"a bare sync call: {ns('sync_direct_call'):.1f} ns)")
print("  backoff decision per strategy: " + ", ".join(
    f"{r['label']} {float(r['real_time']):.1f} ns" for r in rows
    if r["name"].startswith("backoff_decision") and r["name"].endswith("_median")))

frames = results / "frame_sizes.txt"
if frames.exists():
    print("\ncoroutine frame of one co_await async_retry (Asio recycles blocks up to about 1 KiB)")
    for line in frames.read_text().splitlines():
        print("  " + line)
print("\nscale: 100,000 concurrent calls failing twice (medians of alternating rounds; heap: warm = kept between runs, "
      "cold = given back to the kernel before each run)")
scale = list(csv.DictReader((results / "scale.csv").read_text().splitlines()))
HAND, WRAPPED, WITH_POLICY, WITH_BACKOFF, IN_FRAME = (
    "hand-written coroutine loop", "hand-written loop, own coroutine", "the same, holding the policy",
    "the same, driving stamina::backoff", "the same, waits in its frame")
base = {(r["threads"], r["heap"]): r for r in scale if r["variant"] == HAND}
for r in scale:
    b, hb = float(r["bytes_per_pending_call"]), float(base[(r["threads"], r["heap"])]["bytes_per_pending_call"])
    print(f"  {r['variant']:36} threads {r['threads']}, {r['heap']}: {b:6.0f} B/pending ({b / hb:.2f}x), "
          f"lateness p50 {float(r['lateness_p50_us']) / 1000:5.1f} ms, p99 {float(r['lateness_p99_us']) / 1000:5.1f} ms, "
          f"total {float(r['total_s']):.2f} s, {float(r['minor_faults']):6.0f} page faults")


def scale_rows(threads, heap):
    return {r["variant"]: r for r in scale if r["threads"] == threads and r["heap"] == heap}


warm, cold = scale_rows("1", "warm"), scale_rows("1", "cold")
hand = warm[HAND]
aw = next(v for k, v in warm.items() if "co_await" in k)
aw_cold = next(v for k, v in cold.items() if "co_await" in k)
for label, ours, theirs, key in (
        ("memory per pending co_await call, 1 thread", aw, hand, "bytes_per_pending_call"),
        ("lateness p99 of co_await calls, 1 thread, warm heap", aw, hand, "lateness_p99_us"),
        ("lateness p99 of co_await calls, 1 thread, cold heap", aw_cold, cold[HAND], "lateness_p99_us")):
    ratio = float(ours[key]) / float(theirs[key])
    print(f"  {label:52} {ratio:5.2f}x the hand-written loop (target <= 1.2x): {'MET' if ratio <= 1.2 else 'MISS'}")
print(f"    (cold heap: page faults per run, stamina {float(aw_cold['minor_faults']):.0f} against "
      f"{float(cold[HAND]['minor_faults']):.0f}: a cold run faults in every byte it holds)")
for heap, rows in (("warm", warm), ("cold", cold)):
    ours = next(v for k, v in rows.items() if "co_await" in k)
    print(f"    ({heap} heap: p99 of first retries {float(ours['lateness_p99_first_retry_us']) / 1000:.1f} ms against "
          f"{float(rows[HAND]['lateness_p99_first_retry_us']) / 1000:.1f}, of second retries "
          f"{float(ours['lateness_p99_second_retry_us']) / 1000:.1f} ms against "
          f"{float(rows[HAND]['lateness_p99_second_retry_us']) / 1000:.1f})")
floor = warm[WRAPPED]
print("  floor measured in the same run: the hand-written loop in a coroutine of its own (two frames per call, "
      "as a co_await of any retry function, and its wait's through use_awaitable)")
for label, key in (("memory", "bytes_per_pending_call"), ("lateness p99, warm heap", "lateness_p99_us")):
    print(f"    {label}: the floor {float(floor[key]) / float(hand[key]):.2f}x the hand-written loop; "
          f"stamina {float(aw[key]) / float(floor[key]):.2f}x the floor")
held, hand_b = float(warm[WITH_POLICY]["bytes_per_pending_call"]), float(hand["bytes_per_pending_call"])
print(f"  floor under the contract (op and policy decay-copied): that loop holding its policy, "
      f"{held:.0f} B ({held / hand_b:.2f}x the hand-written loop):")
print(f"    the 1.2x target leaves {1.2 * hand_b - held:.0f} B per pending call for the retry state "
      f"(stamina {float(aw['bytes_per_pending_call']) - held:+.0f} B against this floor; its waits hold no frame "
      f"of their own, this floor's do)")
state_floor = float(warm[WITH_BACKOFF]["bytes_per_pending_call"])
print(f"  floor under the contract's state (DESIGN.md section 4: the backoff's state of one retrying call, and the "
      f"call's start): that loop driving stamina::backoff, {state_floor:.0f} B ({state_floor / hand_b:.2f}x the "
      f"hand-written loop); stamina {float(aw['bytes_per_pending_call']) - state_floor:+.0f} B against it")
in_frame = float(warm[IN_FRAME]["bytes_per_pending_call"])
print(f"  the floor of stamina's bytes: that loop with its waits co_awaited as operations, in its frame, as stamina's "
      f"are (use_awaitable's waits hold a frame of their own), {in_frame:.0f} B ({in_frame / hand_b:.2f}x the "
      f"hand-written loop); stamina {float(aw['bytes_per_pending_call']) / in_frame:.2f}x this floor, "
      f"{float(aw['bytes_per_pending_call']) - in_frame:+.0f} B against it")
for heap, rows in (("warm", warm), ("cold", cold)):
    ours = next(v for k, v in rows.items() if "co_await" in k)
    for label, f_row in (("the backoff floor", rows[WITH_BACKOFF]), ("the in-frame floor", rows[IN_FRAME])):
        print(f"    lateness p99, {heap} heap: {label} {float(f_row['lateness_p99_us']) / float(rows[HAND]['lateness_p99_us']):.2f}x "
              f"the hand-written loop ({float(f_row['minor_faults']):.0f} page faults); stamina "
              f"{float(ours['lateness_p99_us']) / float(f_row['lateness_p99_us']):.2f}x this floor")

print("\nherd: 190 clients (mean of 100 runs)")
herd = [r for r in csv.DictReader((results / "herd.csv").read_text().splitlines()) if r["clients"] == "190"]
nojit = next(r for r in herd if r["strategy"].startswith("no jitter"))
for r in sorted(herd, key=lambda r: float(r["calls"])):
    print(f"  {r['strategy']:42} calls {float(r['calls']):7.0f} ({float(r['calls']) / float(nojit['calls']):.2f}x no jitter), "
          f"time {float(r['time_ms']) / 1000:6.2f} s")
most_calls = max(herd, key=lambda r: float(r["calls"]))["strategy"]
longest = max(herd, key=lambda r: float(r["time_ms"]))["strategy"]
full = next(r for r in herd if r["strategy"] == "stamina full")
print(f"  most work: {most_calls}; longest: {longest}; full jitter does "
      f"{float(full['calls']) / float(nojit['calls']):.2f}x the work of no jitter")

print("\noutage: 100 req/s, capacity 200/s, backend down 10 s (mean of 20 runs)")
for r in csv.DictReader((results / "outage.csv").read_text().splitlines()):
    print(f"  {r['policy']:34} peak load {float(r['peak_load_ratio']):5.1f}x normal, drain {float(r['drain_s']):5.1f} s, "
          f"failed requests {float(r['failed_requests']):5.0f} of {float(r['requests']):.0f}")
