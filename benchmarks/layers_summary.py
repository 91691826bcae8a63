"""Reads benchmarks/results/layers/*.csv (layers.sh) and prints the table of issue 26's targets.
Usage: layers_summary.py DIR MODE..."""
import sys
from pathlib import Path

out = Path(sys.argv[1])
modes = sys.argv[2:]


def row(path):
    p = out / path
    return [float(x) for x in p.read_text().strip().split(",")] if p.exists() else None


print(f"{'C':<6} {'wiring':<8} {'requests':>8} {'in time':>7} {'at B':>5} {'at C':>6} {'per req':>8} {'x single':>9} "
      f"{'late starts A/B/C':>18} {'work after deadline B/C (ms)':>29}")
verdicts = []
plot = []
missing = False
for mode in modes:
    single = None
    for wiring in ("single", "naive", "layered"):
        tag = f"{mode}_{wiring}"
        client = row(f"{tag}_client.csv")
        c = row(f"{tag}_C.csv")
        if client is None or c is None:
            print(f"{mode:<6} {wiring:<8} missing results")
            verdicts.append(False)
            missing = True
            continue
        per = c[0] / client[0] if client[0] else float("nan")
        if wiring == "single":
            single = per
        ratio = per / single if single else float("nan")
        late = [row(f"{tag}_{s}.csv") for s in "ABC"]
        at_b = "-" if late[1] is None else str(int(late[1][0]))
        starts = "/".join("-" if r is None else str(int(r[1])) for r in late)
        work = "/".join("-" if r is None else f"{max(0.0, r[2]):.0f}" for r in late[1:])
        print(f"{mode:<6} {wiring:<8} {int(client[0]):>8} {int(client[1]):>7} {at_b:>5} {int(c[0]):>6} {per:>8.2f} "
              f"{ratio:>9.2f} {starts:>18} {work:>29}")
        plot.append(f'"{mode} {wiring}" {per:.3f}')
        if wiring == "layered":
            if mode in ("down", "half"):
                ok = ratio <= 1.1
                verdicts.append(ok)
                print(f"  target: attempts at C per request <= 1.1 x one layer's: {ratio:.2f} {'MET' if ok else 'MISS'}")
            if mode == "slow":
                starts_after = sum(int(r[1]) for r in late if r is not None)
                work_after = max(max(0.0, r[2]) for r in late[1:] if r is not None)
                ok = starts_after == 0 and work_after <= 50
                verdicts.append(ok)
                print(f"  target: 0 attempts started after the deadline ({starts_after}), B and C stop within "
                      f"50 ms of it ({work_after:.0f} ms): {'MET' if ok else 'MISS'}")
(out / "attempts.dat").write_text("\n".join(plot) + "\n")
print("all targets met" if all(verdicts) else "some targets missed")
sys.exit(1 if missing else 0)  # a target missed is reported; a process that wrote nothing fails
