"""The cpu device's threads: workers that share a launch's chunks through kernels.workqueue.

Each worker is a Python thread that spends its time in native code (``wq_spin``, GIL released):
it runs chunks of whatever launch is posted and, after ``spin_seconds`` without one, says it
sleeps and waits on an event that the next launch sets. The calling thread never waits for a
worker to wake: it starts on the chunks at once, and a worker that wakes late takes fewer.
A launch made while another thread's launch holds the queue runs on its calling thread alone.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import os
import threading
import time
import weakref

import llvmlite.binding as llvm
import numpy as np

from .. import _native_stack as native_stack
from ..kernels import workqueue as wq

__all__ = ["WorkQueue"]


_CTYPES = {"i64": ctypes.c_int64, "ptr": ctypes.c_void_p, None: None}
_PAUSES_PER_SECOND = None
_QUEUES: "weakref.WeakSet[WorkQueue]" = weakref.WeakSet()


class WorkQueue:
    """``workers`` threads plus the caller, sharing launches chunk by chunk (see the module)."""

    def __init__(self, target, workers: int, spin_seconds: float):
        """``spin_seconds``: how long a worker keeps looking for the next launch after its last
        chunk (then it sleeps, and waking it costs the next launch ~0.1-0.4 ms of that worker's
        time on this machine's VM, not of the caller's: config's EGPU_ARRAY_SPIN_US)."""
        self._engine = target.jit_engine()  # the workers' code lives as long as the queue
        self._engine.add_object_file(llvm.ObjectFileRef.from_data(_object_code(target)))
        self._engine.finalize_object()
        for name, (res, argtypes) in wq.FUNCTIONS.items():
            proto = ctypes.CFUNCTYPE(_CTYPES[res], *(_CTYPES[a] for a in argtypes))
            setattr(self, "_" + name[3:], proto(self._engine.get_function_address(name)))
        self.workers = workers
        raw = np.zeros(wq.State.words(workers) + 8, dtype=np.int64)
        skip = (-raw.ctypes.data % 64) // 8  # the counter on a cache line of its own
        self.state = raw[skip:skip + wq.State.words(workers)]
        self._addr = self.state.ctypes.data
        self.spin_steps = self._steps_for(spin_seconds)
        _QUEUES.add(self)
        self._start()

    def _steps_for(self, seconds: float) -> int:
        """Pause steps that take about ``seconds`` here (a pause is 10-150 cycles by CPU model;
        timed once per process)."""
        global _PAUSES_PER_SECOND
        if _PAUSES_PER_SECOND is None:
            steps, took = 1000, 0.0
            while took < 2e-4 and steps < 1 << 30:
                steps *= 4
                t0 = time.perf_counter()
                self._pause(self._addr, steps)
                took = time.perf_counter() - t0
            _PAUSES_PER_SECOND = steps / max(took, 1e-6)
        return max(1000, int(_PAUSES_PER_SECOND * seconds))

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._events = [threading.Event() for _ in range(self.workers)]
        self.state[:] = 0
        self.state[wq.State.SLEEPING:wq.State.SLEEPING + self.workers] = 1
        self._threads = [native_stack.start_thread(_worker, (self, w), f"egpu-cpu-{w}")
                         for w in range(self.workers)]

    def run(self, fn_addr: int, args_addr: int, n: int, grain: int) -> bool:
        """Run ``kernel(args, s, e)`` over chunks of ``grain`` items covering ``[0, n)`` on the
        workers and this thread; False (nothing run) while another thread's launch holds the queue."""
        if n >= wq.MAX_ITEMS or not self._lock.acquire(blocking=False):
            return False
        try:
            if self._post(self._addr, fn_addr, args_addr, n, grain, self.workers):
                flags = self.state[wq.State.SLEEPING:wq.State.SLEEPING + self.workers].tolist()
                for event, asleep in zip(self._events, flags):  # (a snapshot: workers change them)
                    if asleep:
                        event.set()
            self._work(self._addr)
        finally:
            self._lock.release()
        return True

    def close(self, wait: bool = True) -> None:
        """Stop the workers (they leave their spin loop and their wait); ``wait``: join them."""
        self.state[wq.State.STOP] = 1
        for e in self._events:
            e.set()
        for t in self._threads if wait else ():
            if t is not threading.current_thread():
                t.join(timeout=1.0)


@functools.cache
def _object_code(target) -> bytes:
    return target.compile(wq.generate(target.new_module("egpu_workqueue")))


def _worker(queue: WorkQueue, w: int) -> None:
    spin, addr, limit, event = queue._spin, queue._addr, queue.spin_steps, queue._events[w]
    state = queue.state
    while True:
        spin(addr, w, limit)
        if state[wq.State.STOP]:
            return
        event.wait()
        event.clear()


def _restart_after_fork() -> None:
    for q in list(_QUEUES):  # the child has none of the parent's threads
        if not q.state[wq.State.STOP]:
            q._start()


@atexit.register
def _close_all() -> None:
    for q in list(_QUEUES):
        q.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)
