"""The profiler: ``with egpu_array.profile() as prof: ...`` counts what the library did.

Counters: ``launches``, ``compiles``, ``cache_hits``, ``bytes_to_device``, ``bytes_from_device``,
``allocations`` and ``bytes_allocated``; ``kernels`` maps a kernel name to its launches, time and
bytes. ``export_chrome_trace(path)`` writes a trace for Perfetto / chrome://tracing with compute,
copy and compile work on separate tracks. When no profile is active, recording costs one check.
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager

__all__ = ["profile", "Profile", "count", "span", "record_launch", "record_transfer", "note"]

_active: list = []
_lock = threading.Lock()
_TRACKS = {"compute": 1, "copy": 2, "compile": 3, "host": 4}


class Profile:
    """What happened while the profile was active."""

    def __init__(self):
        self.launches = 0
        self.compiles = 0
        self.cache_hits = 0
        self.bytes_to_device = 0
        self.bytes_from_device = 0
        self.allocations = 0
        self.bytes_allocated = 0
        self.kernels: dict[str, list] = {}   # name -> [launches, seconds, bytes]
        self.transfers: dict[str, list] = {"to_device": [0, 0, 0.0], "from_device": [0, 0, 0.0]}
        self.notes: list[str] = []
        self.events: list[dict] = []
        self._t0 = time.perf_counter()

    def _event(self, name, cat, t0, t1, args=None):
        self.events.append({"name": name, "cat": cat, "ph": "X", "pid": os.getpid(),
                            "tid": _TRACKS.get(cat, 9), "ts": (t0 - self._t0) * 1e6,
                            "dur": max(t1 - t0, 0.0) * 1e6, "args": args or {}})

    def export_chrome_trace(self, path) -> None:
        """Write the events as a Chrome trace (JSON object format) to ``path``."""
        meta = [{"name": "thread_name", "ph": "M", "pid": os.getpid(), "tid": tid,
                 "args": {"name": track}} for track, tid in _TRACKS.items()]
        with open(path, "w") as f:
            json.dump({"traceEvents": meta + self.events, "displayTimeUnit": "ms"}, f)

    def __repr__(self) -> str:
        return (f"Profile(launches={self.launches}, compiles={self.compiles}, "
                f"cache_hits={self.cache_hits}, bytes_to_device={self.bytes_to_device}, "
                f"bytes_from_device={self.bytes_from_device})")

    def __str__(self) -> str:
        lines = [repr(self), "", f"{'kernel':40s} {'launches':>8s} {'total ms':>10s} {'mean us':>10s} {'MB':>10s}"]
        for name, (n, sec, nbytes) in sorted(self.kernels.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"{name[:40]:40s} {n:8d} {sec * 1e3:10.3f} {sec / n * 1e6:10.1f} {nbytes / 1e6:10.2f}")
        lines.append("")
        for direction, (n, nbytes, sec) in self.transfers.items():
            bw = f"{nbytes / sec / 1e9:.2f} GB/s" if sec > 0 else "-"
            lines.append(f"{direction:12s} {n:6d} copies {nbytes / 1e6:12.2f} MB  {bw}")
        lines.extend(self.notes)
        return "\n".join(lines)


@contextmanager
def profile():
    """Profile everything the library does inside the ``with`` block (nesting is allowed)."""
    prof = Profile()
    with _lock:
        _active.append(prof)
    try:
        yield prof
    finally:
        with _lock:
            _active.remove(prof)


def count(counter: str, n: int = 1) -> None:
    """Add ``n`` to a counter of every active profile."""
    if _active:
        for p in _active:
            setattr(p, counter, getattr(p, counter) + n)


@contextmanager
def span(cat: str, name: str, **args):
    """Time a block of work on track ``cat`` ("compile", "host", ...)."""
    if not _active:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        t1 = time.perf_counter()
        for p in _active:
            p._event(name, cat, t0, t1, args)


def record_launch(name: str, t0: float, t1: float, nbytes: int) -> None:
    """A kernel ran from ``t0`` to ``t1`` (perf_counter seconds) touching ``nbytes``."""
    if _active:
        for p in _active:
            p.launches += 1
            k = p.kernels.setdefault(name, [0, 0.0, 0])
            k[0] += 1
            k[1] += t1 - t0
            k[2] += nbytes
            p._event(name, "compute", t0, t1, {"bytes": nbytes})


def record_transfer(direction: str, nbytes: int, t0: float, t1: float) -> None:
    """A copy of ``nbytes`` in ``direction`` ("to_device" / "from_device") over the link."""
    if _active:
        for p in _active:
            setattr(p, f"bytes_{direction}", getattr(p, f"bytes_{direction}") + nbytes)
            t = p.transfers[direction]
            t[0] += 1
            t[1] += nbytes
            t[2] += t1 - t0
            p._event(f"copy {direction}", "copy", t0, t1, {"bytes": nbytes})


def note(text: str) -> None:
    """A line for the report (e.g. what a data-dependent function had to read)."""
    if _active:
        for p in _active:
            p.notes.append(text)
