"""Soak: the reference server (vllm engine) under concurrent Gym sessions for minutes on end (issue 13).

    .venv/bin/python benchmarks/bench_soak.py [--sessions 64] [--minutes 10] [--model tiny-qwen3] [--out DIR] [--heap]
                                              [--server reference|stock]

The load is the suite's own load tier (``conformance.checks.load.drive``, what ``--load N --load-duration S``
runs): every session a three-call rollout with the tool offered and the token bundle carried back, a new rollout as
soon as one ends. The server's resident memory (its API process, and the engine processes under it, apart) is
sampled every 10 s. Per minute: calls, errors, p50/p99 latency and RSS at the minute's end. Goals: zero errors, RSS growth under
10 % from the end of the first minute (engine warm-up done) to the end of the run, and p99 flat (the last minute's
within 1.25x of the first's). Continuity is judged over every rollout as R10 does. Prints a Markdown table and
writes ``soak.json`` to ``--out``.

``--server stock``: the same load against stock vLLM's OpenAI server (same engine settings, the parsers frameworks
run it with), to tell the engine's own memory growth from the reference server's. Continuity breaks there are
expected (stock vLLM re-tokenizes); the memory figures are the point.

``--heap``: the server process runs with Python's heap traced from the moment it answers
(``benchmarks/_heap_server.py``), a snapshot at the end of every minute; the lines whose live memory grew most from the end of minute 2 to the end of the run are
printed and written to ``heap.txt``. Tracing slows the server: such a run measures memory, not latency.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psutil  # noqa: E402  (vLLM's own dependency)

from conformance._process import ServerProcess, free_port, vllm_server_argv  # noqa: E402
from conformance.checks import Context, Target  # noqa: E402
from conformance.checks.load import LoadPlan, continuity_breaks, drive  # noqa: E402
from conformance.client import Runner  # noqa: E402
from conformance.core import percentile  # noqa: E402
from fixtures import fixture_path  # noqa: E402

RSS_EVERY_S = 10.0
GROWTH_MAX, P99_DRIFT_MAX = 0.10, 1.25


def rss(pid: int) -> tuple[int, int]:
    """Resident bytes of the server's own process and of everything under it (vLLM's engine core and workers)."""
    root = psutil.Process(pid)
    under = 0
    for p in root.children(recursive=True):
        try:
            under += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return root.memory_info().rss, under


def memory_by_kind(pid: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per engine process (by name: vLLM's engine core, its worker), resident and proportional (shared pages split
    between their processes) MiB by mapping: ``shm`` (/dev/shm: vLLM's message queues between engine core and
    worker), ``file`` (libraries, mapped weights) and ``anon`` (heaps: the KV cache, allocator arenas, objects)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for p in psutil.Process(pid).children(recursive=True):
        try:
            name, maps = p.name(), p.memory_maps(grouped=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        kinds = out.setdefault(name, {k: {"rss": 0.0, "pss": 0.0} for k in ("anon", "shm", "file")})
        for m in maps:
            path = m.path or ""
            kind = "shm" if path.startswith("/dev/shm") else "file" if path.startswith("/") else "anon"
            kinds[kind]["rss"] += m.rss / 2**20
            kinds[kind]["pss"] += m.pss / 2**20
    return {n: {k: {m: round(v, 1) for m, v in d.items()} for k, d in kinds.items()} for n, kinds in out.items()}


def sample_rss(pid: int, t0: float, samples: list[tuple[float, int, int]], stop: threading.Event,
               kinds: dict[str, dict]) -> None:
    while not stop.is_set():
        samples.append((time.monotonic() - t0, *rss(pid)))
        if samples[-1][0] >= 60.0 and "minute 1" not in kinds:  # the growth is measured from here
            kinds["minute 1"] = memory_by_kind(pid)
        stop.wait(RSS_EVERY_S)
    kinds["end"] = memory_by_kind(pid)


def snapshot_every_minute(pid: int, stop: threading.Event) -> None:
    while not stop.wait(60.0):
        os.kill(pid, signal.SIGUSR1)


def final_snapshot(pid: int, folder: Path, timeout: float = 300.0) -> None:
    """One more snapshot once the load has ended, waited for (a 1 GiB heap takes a while to write)."""
    before = len(list(folder.glob("heap-*.snapshot")))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("heap-*.snapshot"))) <= before and time.monotonic() < deadline:
        time.sleep(0.5)


def heap_growth(folder: Path, top: int = 15) -> str:
    """The allocation sites whose live memory grew most between the end of minute 2 and the last snapshot."""
    import tracemalloc

    snaps = sorted(folder.glob("heap-*.snapshot"), key=lambda p: int(p.stem.split("-")[1]))
    if len(snaps) < 3:
        return "heap: fewer than three snapshots (run for 3 minutes or more)"
    first, last = tracemalloc.Snapshot.load(str(snaps[1])), tracemalloc.Snapshot.load(str(snaps[-1]))
    lines = [f"heap growth from the end of minute 2 to the end of minute {len(snaps)} (server process, Python):",
             f"total traced {sum(s.size for s in first.statistics('filename')) / 2**20:.1f} -> "
             f"{sum(s.size for s in last.statistics('filename')) / 2**20:.1f} MiB"]
    for stat in last.compare_to(first, "lineno")[:top]:
        lines.append(f"{stat.size_diff / 2**20:+8.2f} MiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}")
    lines.append("largest growth, whole stacks:")
    for stat in last.compare_to(first, "traceback")[:3]:
        lines.append(f"{stat.size_diff / 2**20:+8.2f} MiB")
        lines.extend(f"    {frame}" for frame in stat.traceback)
    return "\n".join(lines)


def per_minute(run, t0: float, samples: list[tuple[float, int, int]], minutes: int) -> list[dict]:
    rows = []
    for m in range(minutes):
        calls = [c.timed for c in run.calls if m * 60 <= c.timed.start - t0 < (m + 1) * 60]
        ok = [t.end - t.start for t in calls if t.error is None]
        at_end = [(api, engine) for s, api, engine in samples if s <= (m + 1) * 60]
        api, engine = at_end[-1] if at_end else (None, None)
        rows.append({"minute": m + 1, "calls": len(calls), "errors": sum(1 for t in calls if t.error),
                     "p50_s": round(percentile(ok, 50), 3) if ok else None,
                     "p99_s": round(percentile(ok, 99), 3) if ok else None,
                     "rss_mib": round((api + engine) / 2**20, 1) if at_end else None,
                     "rss_server_mib": round(api / 2**20, 1) if at_end else None,
                     "rss_engine_mib": round(engine / 2**20, 1) if at_end else None})
    return rows


def server_argv(server: str, model: Path, port: int, heap_dir: Path | None) -> list[str]:
    """The server under soak: the reference (under ``_heap_server.py`` when its heap is traced) or stock vLLM."""
    if server == "stock":
        return vllm_server_argv(model, port, extra=["--reasoning-parser", "qwen3", "--enable-auto-tool-choice",
                                                    "--tool-call-parser", "hermes", "--logprobs-mode",
                                                    "processed_logprobs"])
    launcher = [str(Path(__file__).with_name("_heap_server.py")), str(heap_dir)] if heap_dir else \
        ["-m", "gym_conformance"]
    return [sys.executable, *launcher, "serve", "--model", str(model), "--engine", "vllm", "--served-model-name",
            "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024", "--reasoning-parser",
            "qwen3", "--tool-parser", "hermes"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--model", default="tiny-qwen3")
    ap.add_argument("--out", type=Path, default=Path("reports/bench"))
    ap.add_argument("--heap", action="store_true", help="trace the server's Python heap; name what grew")
    ap.add_argument("--server", choices=("reference", "stock"), default="reference")
    args = ap.parse_args()
    if args.heap and args.server != "reference":
        ap.error("--heap traces the reference server only")
    model = fixture_path(args.model)
    port = free_port()
    heap_dir = args.out / "soak-heap"
    for old in heap_dir.glob("heap-*.snapshot"):
        old.unlink()
    argv = server_argv(args.server, model, port, heap_dir if args.heap else None)
    args.out.mkdir(parents=True, exist_ok=True)
    with ServerProcess(argv, port, log_path=args.out / "soak-server.log") as server:
        runner = Runner()
        ctx = Context(Target(server.url + "/v1", model="tiny"), runner)
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        t0 = time.monotonic()
        kinds: dict[str, dict] = {}
        sampler = threading.Thread(target=sample_rss, args=(server.proc.pid, t0, samples, stop, kinds), daemon=True)
        sampler.start()
        if args.heap:
            os.kill(server.proc.pid, signal.SIGUSR1)  # start tracing: the server is up, its start-up stays untraced
            threading.Thread(target=snapshot_every_minute, args=(server.proc.pid, stop), daemon=True).start()
        print(f"soak: {args.sessions} sessions for {args.minutes} min against "
              f"{'the reference server' if args.server == 'reference' else 'stock vLLM'} ({args.model}, vllm engine)",
              flush=True)
        try:
            run = runner.run(drive([ctx], LoadPlan(args.sessions, duration=args.minutes * 60.0)))
        finally:
            stop.set()
            sampler.join()
            if args.heap:
                final_snapshot(server.proc.pid, heap_dir)
            runner.run(ctx.aclose())
            runner.close()
    rows = per_minute(run, t0, samples, args.minutes)
    errors = sum(1 for c in run.calls if c.timed.error)
    breaks = len(continuity_breaks(run))
    first, last = rows[0], rows[-1]
    growth = (last["rss_mib"] - first["rss_mib"]) / first["rss_mib"]
    drift = last["p99_s"] / first["p99_s"]
    summary = {"server": args.server, "sessions": args.sessions, "minutes": args.minutes, "rollouts": len(run.rollouts),
               "calls": len(run.calls), "errors": errors, "continuity_breaks": breaks,
               "rss_growth": round(growth, 4), "p99_last_over_first": round(drift, 3),
               "goals_met": errors == 0 and breaks == 0 and growth < GROWTH_MAX and drift <= P99_DRIFT_MAX,
               "engine_memory_by_kind_mib": kinds, "per_minute": rows}
    (args.out / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| minute | calls | errors | p50 (s) | p99 (s) | RSS (MiB) | server process | engine processes |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['minute']} | {r['calls']} | {r['errors']} | {r['p50_s']} | {r['p99_s']} | {r['rss_mib']} | "
              f"{r['rss_server_mib']} | {r['rss_engine_mib']} |")
    print(f"\n{len(run.rollouts)} rollouts, {len(run.calls)} calls, {errors} errors, {breaks} continuity breaks; "
          f"RSS {first['rss_mib']} -> {last['rss_mib']} MiB ({growth:+.1%}, goal < {GROWTH_MAX:.0%}); p99 last/first "
          f"minute {drift:.2f} (goal <= {P99_DRIFT_MAX}); goals {'met' if summary['goals_met'] else 'NOT met'}")
    if "minute 1" in kinds:
        print("\nengine processes by mapping, MiB RSS (PSS), end of minute 1 -> end:")
        for name, end in kinds["end"].items():
            start = kinds["minute 1"].get(name, {})
            print(f"  {name}: " + "; ".join(
                f"{k} {start.get(k, {}).get('rss')} -> {v['rss']} ({start.get(k, {}).get('pss')} -> {v['pss']})"
                for k, v in end.items()))
    if args.heap:
        report = heap_growth(heap_dir)
        (args.out / "heap.txt").write_text(report + "\n")
        print("\n" + report)
    return 0 if summary["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
