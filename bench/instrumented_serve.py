"""`ecr-catalog serve`, with every event-loop callback timed: the longest ones are what blocked it.

The lag probe on /metrics also counts time spent queueing behind many short callbacks, which a
saturating load test causes by design; this measures blocking itself. Written for benchmarks
only: it wraps asyncio's Handle._run, which the service never does.
"""

from __future__ import annotations

import asyncio.events
import gc
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import uvicorn

from service.cli import main

slowest: list[tuple[float, str]] = []
counts = {"callbacks": 0, "over_50ms": 0}
_original_run = asyncio.events.Handle._run


def _timed_run(self: Any) -> None:
    if threading.current_thread() is not threading.main_thread():
        # Worker threads (to_thread: builds, state saves) run no loop callbacks of ours.
        _original_run(self)
        return
    # CPU time of this thread: what the callback itself cost. Wall time would also count the
    # OS preempting the process and waits for the GIL, which a crowded 2-core machine causes.
    started = time.thread_time()
    wall_started = time.perf_counter()
    _original_run(self)
    elapsed = time.thread_time() - started
    wall = time.perf_counter() - wall_started
    counts["callbacks"] += 1
    counts["max_wall_ms"] = max(counts.get("max_wall_ms", 0), round(wall * 1000, 1))
    if elapsed > 0.05:
        counts["over_50ms"] += 1
    if elapsed > 0.005 and (len(slowest) < 10 or elapsed > slowest[-1][0]):
        owner = getattr(self._callback, "__self__", None)
        coro = getattr(owner, "get_coro", lambda: None)()
        where = getattr(getattr(coro, "cr_code", None), "co_qualname", None)
        slowest.append((elapsed, f"{where or ''} {self!r}"[:300]))
        slowest.sort(reverse=True)
        del slowest[10:]


_gc_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[:] = [time.thread_time()]
    elif _gc_started:
        pause = time.thread_time() - _gc_started[0]
        key = f"max_gc_gen{info['generation']}_ms"
        if pause * 1000 > counts.get(key, 0):
            counts[key] = round(pause * 1000, 1)
            counts[f"{key}_objects"] = len(gc.get_objects(info["generation"]))
            counts[f"{key}_collected"] = info["collected"]


gc.callbacks.append(_on_gc)


# SIGUSR1 closes the first phase (the cold read, until the first snapshot) and starts counting
# the refreshes after it afresh; the report then holds both.
phases: dict[str, Any] = {}


def _next_phase(_signal: int, _frame: Any) -> None:
    phases["cold"] = {**counts, "slowest": list(slowest)}
    counts.clear()
    counts.update({"callbacks": 0, "over_50ms": 0})
    slowest.clear()


signal.signal(signal.SIGUSR1, _next_phase)


def _write() -> None:
    path = os.environ.get("ECR_CATALOG_CALLBACK_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump({**counts, "slowest": slowest, **phases}, handle, indent=1)


def _write_every_second() -> None:
    # uvicorn re-raises SIGTERM after its graceful shutdown, so atexit never runs: write often.
    while True:
        time.sleep(1)
        _write()


asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
# uvloop's handles are C objects that cannot be timed; measure on asyncio's own loop.
_original_uvicorn_run = uvicorn.run
uvicorn.run = lambda app, **kwargs: _original_uvicorn_run(app, **{**kwargs, "loop": "asyncio"})
threading.Thread(target=_write_every_second, daemon=True).start()

if __name__ == "__main__":
    sys.exit(main())
