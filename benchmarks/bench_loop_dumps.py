"""Loop checks on large dumps: peak memory stays flat as the files grow, and how many lines a second they read.

    python benchmarks/bench_loop_dumps.py [--sizes-mb 10 100 1000] [--batches] [--dir /tmp/gym-conformance-dumps]

The dumps are the reference loop's own (``fixtures/dumps/lookup``), repeated step after step with fresh step
numbers and rollout ids until the rollouts file reaches each size (and the train batches in proportion with
``--batches``). Each size is judged in a fresh child process (``gym-conformance run --rollouts ...``); its peak
RSS and wall time are read back. Side by side in one run: the ratio of peak RSS between the largest and the
smallest file is the claim (flat memory: ~1), not the absolute numbers. Results go to stdout and to
reports/bench_loop_dumps.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance._process import run_command  # noqa: E402

SOURCE = REPO / "fixtures" / "dumps" / "lookup"


def build(out: Path, size_mb: float, batches: bool) -> tuple[Path, Path | None, int]:
    """Repeat the reference steps until rollouts.jsonl holds ``size_mb`` MB; returns (rollouts, batches, lines)."""
    rollouts = [json.loads(x) for x in (SOURCE / "rollouts.jsonl").read_text().splitlines()]
    trains = [json.loads(x) for x in (SOURCE / "train_batches.jsonl").read_text().splitlines()]
    steps = sorted({r["step"] for r in rollouts})
    out.mkdir(parents=True, exist_ok=True)
    r_path, b_path = out / f"rollouts-{size_mb:g}mb.jsonl", out / f"batches-{size_mb:g}mb.jsonl"
    written, lines, step = 0, 0, 0
    with r_path.open("w") as rf, (b_path.open("w") if batches else open("/dev/null", "w")) as bf:
        while written < size_mb * 1e6:
            for s in steps:
                step += 1
                for r in rollouts:
                    if r["step"] != s:
                        continue
                    line = json.dumps({**r, "step": step, "rollout_id": f"{step}:{r['rollout_id']}",
                                       "group_id": f"{step}:{r['group_id']}"}) + "\n"
                    rf.write(line)
                    written += len(line)
                    lines += 1
                if batches:
                    for t in trains:
                        if t["step"] == s:
                            bf.write(json.dumps({**t, "step": step, "rollout_id": f"{step}:{t['rollout_id']}"}) + "\n")
    return r_path, (b_path if batches else None), lines


PEAK = ("import resource, runpy, sys\n"
        "sys.argv = ['gym-conformance', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('gym_conformance', run_name='__main__')\n"
        "finally:\n"
        "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def judge(rollouts: Path, batches: Path | None, report: Path) -> tuple[int, float, float]:
    """(exit code, seconds, peak RSS in MB) of one ``gym-conformance run`` on the files, in a child process that
    reports its own peak RSS (ru_maxrss) on the way out."""
    argv = [sys.executable, "-c", PEAK, "run", "--quiet", "--rollouts", str(rollouts), "--report", str(report)] \
        + (["--train-batches", str(batches)] if batches else [])
    start = time.perf_counter()
    done = run_command(argv, cwd=REPO, capture=True, timeout=7200)
    seconds = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return done.returncode, seconds, peak / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--batches", action="store_true", help="also write and judge train batches (about 2.7x the size)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/gym-conformance-dumps"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    rows = []
    for size in sorted(args.sizes_mb):
        r_path, b_path, lines = build(args.dir, size, args.batches)
        code, seconds, peak = judge(r_path, b_path, args.dir / f"report-{size:g}mb")
        mb = r_path.stat().st_size / 1e6 + (b_path.stat().st_size / 1e6 if b_path else 0)
        rows.append({"rollouts_mb": round(r_path.stat().st_size / 1e6, 1), "total_mb": round(mb, 1),
                     "rollout_lines": lines, "exit": code, "seconds": round(seconds, 1),
                     "lines_per_s": round(lines / seconds), "mb_per_s": round(mb / seconds, 1),
                     "peak_rss_mb": round(peak)})
        print(json.dumps(rows[-1]), flush=True)
        if not args.keep:
            for p in (r_path, b_path):
                if p:
                    p.unlink()
    first, last = rows[0], rows[-1]
    result = {"rows": rows,
              "peak_rss_ratio_largest_to_smallest": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
              # start-up (imports, pytest) is in every row: the difference between the largest and smallest runs
              # is the checks' own reading speed
              "marginal_lines_per_s": round((last["rollout_lines"] - first["rollout_lines"])
                                            / max(last["seconds"] - first["seconds"], 1e-9)),
              "marginal_mb_per_s": round((last["total_mb"] - first["total_mb"])
                                         / max(last["seconds"] - first["seconds"], 1e-9), 1)}
    out = REPO / "reports" / "bench_loop_dumps.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
