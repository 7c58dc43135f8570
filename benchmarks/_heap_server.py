"""``gym-conformance serve`` with Python's heap traced, for the soak benchmark's ``--heap`` (issue 13).

    python benchmarks/_heap_server.py DIR serve --model ... (the serve command's own arguments)

tracemalloc records where every live Python allocation of the server process was made. The first SIGUSR1 starts
tracing; each later one writes a snapshot to DIR/heap-<n>.snapshot (n = 0, 1, ...). The soak sends the first once
the server answers, so start-up (importing torch, vLLM and transformers, loading the model) runs untraced: traced
from the first line, start-up took longer than the benchmark waits for a server, and its allocations never grow
anyway. The soak compares an early snapshot with the last one to name the lines whose memory grew. Only the
server's own process is traced: vLLM's engine runs in child processes. Tracing slows the server (every allocation
pays for its stack), so a --heap soak measures memory, not latency.
"""
from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path

FRAMES = 12  # deep enough to get from a dict or list growth up to the server's own code


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    count = 0

    def snapshot(signum, frame) -> None:
        nonlocal count
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
            return
        path = out / f"heap-{count}.snapshot"
        tracemalloc.take_snapshot().dump(str(path) + ".part")
        Path(str(path) + ".part").replace(path)  # the benchmark reads only whole snapshots
        count += 1

    os.register_at_fork(after_in_child=tracemalloc.stop)  # a forked engine process is not ours to trace
    signal.signal(signal.SIGUSR1, snapshot)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gym_conformance.cli import main as cli
    return cli(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
