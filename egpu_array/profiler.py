"""The profiler: ``with egpu_array.profile() as prof: ...`` counts what the library did.

Counters: ``launches``, ``compiles``, ``cache_hits``, ``bytes_to_device``, ``bytes_from_device``,
``allocations`` and ``bytes_allocated``; ``kernels`` maps a kernel name to its launches, time and
bytes; ``transfers`` maps a direction to its copies, bytes and time. ``print(prof)`` shows them as a
report (:meth:`Profile.report`): a per-kernel table and the achieved bandwidth of each direction.

``export_chrome_trace(path)`` writes a trace for Perfetto / chrome://tracing (:meth:`Profile.trace`):
one process per device (``device=`` of the recording call; ``egpu_array`` when not given) and one
thread track per queue: ``compute``, ``copy to_device``, ``copy from_device``, ``compile`` and
``host``, so copies in either direction and kernels show on separate rows. When no profile is
active, recording costs one check.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

__all__ = ["profile", "Profile", "count", "span", "record_launch", "record_transfer", "note",
           "QUEUES"]

_active: list = []
_lock = threading.Lock()
#: trace track (thread id) of each queue, in display order
QUEUES = {"compute": 1, "copy to_device": 2, "copy from_device": 3, "compile": 4, "host": 5}
_OTHER_TID = 9
_HOST_PROCESS = "egpu_array"


class Profile:
    """What happened while the profile was active (see the module docstring)."""

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
        #: every copy over a link: dicts of direction, bytes, seconds, ``device`` (the name of the
        #: device at the other end of the link) and ``internal`` (None for a copy the caller asked
        #: for; else the library function that needed the data, which also leaves a note saying
        #: why). A copy that fails leaves a note instead.
        self.transfer_log: list[dict] = []
        self.notes: list[str] = []
        self.events: list[dict] = []
        self._pids: dict[str, int] = {_HOST_PROCESS: 1}
        self._t0 = time.perf_counter()

    def _event(self, name, queue, t0, t1, args=None, device=None):
        process = _HOST_PROCESS if device is None else str(device)
        pid = self._pids.setdefault(process, len(self._pids) + 1)
        self.events.append({"name": name, "cat": queue.split()[0], "ph": "X", "pid": pid,
                            "tid": QUEUES.get(queue, _OTHER_TID), "ts": (t0 - self._t0) * 1e6,
                            "dur": max(t1 - t0, 0.0) * 1e6, "args": args or {}})

    def trace(self) -> dict:
        """The Chrome trace (JSON object format) as a dict: metadata naming each process (device)
        and thread (queue) that has events, then the complete ("X") events, times in microseconds."""
        used = {(e["pid"], e["tid"]) for e in self.events}
        names = {pid: process for process, pid in self._pids.items()}
        tracks = {tid: queue for queue, tid in QUEUES.items()}
        meta = []
        for pid in sorted({pid for pid, _ in used}):
            meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                         "args": {"name": names[pid]}})
        for pid, tid in sorted(used):
            meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                         "args": {"name": tracks.get(tid, "other")}})
            meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                         "args": {"sort_index": tid}})
        return {"traceEvents": meta + self.events, "displayTimeUnit": "ms"}

    @property
    def internal_transfers(self) -> list:
        """The copies the library made on its own (data-dependent sizes, host LAPACK steps)."""
        return [t for t in self.transfer_log if t["internal"]]

    def export_chrome_trace(self, path) -> None:
        """Write :meth:`trace` as JSON to ``path`` (open it in Perfetto or chrome://tracing)."""
        with open(path, "w") as f:
            json.dump(self.trace(), f)

    def __repr__(self) -> str:
        return (f"Profile(launches={self.launches}, compiles={self.compiles}, "
                f"cache_hits={self.cache_hits}, bytes_to_device={self.bytes_to_device}, "
                f"bytes_from_device={self.bytes_from_device})")

    def report(self) -> str:
        """The text ``print(prof)`` shows: totals, one row per kernel (launches, total and mean
        time, bytes touched, achieved GB/s; slowest first), one row per transfer direction
        (copies, bytes, time, achieved GB/s), then the notes."""
        lines = [f"{self.launches} launches of {len(self.kernels)} kernels, {self.compiles} compiles, "
                 f"{self.cache_hits} cache hits, {self.allocations} allocations "
                 f"({_mb(self.bytes_allocated)} MB)", ""]
        lines.append(f"{'kernel':44s} {'launches':>8s} {'total ms':>10s} {'mean us':>10s} "
                     f"{'MB':>10s} {'GB/s':>8s}")
        for name, (n, sec, nbytes) in sorted(self.kernels.items(), key=lambda kv: -kv[1][1]):
            short = name if len(name) <= 44 else name[:41] + "..."
            lines.append(f"{short:44s} {n:8d} {sec * 1e3:10.3f} {sec / n * 1e6:10.1f} "
                         f"{_mb(nbytes):>10s} {_gbps(nbytes, sec):>8s}")
        if not self.kernels:
            lines.append("(no kernel launches)")
        lines += ["", f"{'transfer':44s} {'copies':>8s} {'total ms':>10s} {'mean us':>10s} "
                      f"{'MB':>10s} {'GB/s':>8s}"]
        for direction, (n, nbytes, sec) in self.transfers.items():
            mean = f"{sec / n * 1e6:10.1f}" if n else f"{'-':>10s}"
            lines.append(f"{direction:44s} {n:8d} {sec * 1e3:10.3f} {mean} {_mb(nbytes):>10s} "
                         f"{_gbps(nbytes, sec):>8s}")
        if self.notes:
            lines += ["", "notes:"] + [f"  {text}" for text in self.notes]
        return "\n".join(lines)

    __str__ = report


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f}"


def _gbps(nbytes: int, sec: float) -> str:
    return f"{nbytes / sec / 1e9:.2f}" if sec > 0 and nbytes else "-"


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
def span(cat: str, name: str, device=None, **args):
    """Time a block of work on track ``cat`` ("compile", "host", ...; see :data:`QUEUES`)."""
    if not _active:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        t1 = time.perf_counter()
        for p in _active:
            p._event(name, cat, t0, t1, args, device)


def record_launch(name: str, t0: float, t1: float, nbytes: int, device=None) -> None:
    """A kernel ran from ``t0`` to ``t1`` (perf_counter seconds) touching ``nbytes``, on the
    compute queue of ``device`` (its trace process; the host process when None)."""
    if _active:
        for p in _active:
            p.launches += 1
            k = p.kernels.setdefault(name, [0, 0.0, 0])
            k[0] += 1
            k[1] += t1 - t0
            k[2] += nbytes
            p._event(name, "compute", t0, t1, {"bytes": nbytes}, device)


def record_transfer(direction: str, nbytes: int, t0: float, t1: float, internal: str | None = None,
                    device=None, over=None) -> None:
    """A copy of ``nbytes`` in ``direction`` ("to_device" / "from_device") over the link to
    ``over`` (a device; its name goes in the log and the trace event's arguments), on the copy
    queue of that direction of ``device``'s trace process (None: the host's). ``internal``: None
    for a copy the caller asked for, else the library function that needed the data (see
    ``Profile.transfer_log``)."""
    if _active:
        where = None if over is None else str(over)
        for p in _active:
            setattr(p, f"bytes_{direction}", getattr(p, f"bytes_{direction}") + nbytes)
            t = p.transfers[direction]
            t[0] += 1
            t[1] += nbytes
            t[2] += t1 - t0
            p.transfer_log.append({"direction": direction, "bytes": nbytes, "seconds": t1 - t0,
                                   "internal": internal, "device": where})
            args = {"bytes": nbytes, "device": where}
            if internal is not None:
                args["internal"] = internal
            p._event(f"copy {direction}", f"copy {direction}", t0, t1, args, device)


def record_virtual(name: str, queue: str, t0: float, t1: float, process: str, args=None) -> None:
    """A trace event on ``queue`` of ``process`` with times from a device's virtual clock (the
    ``sim`` device's modeled timeline); counters are not touched (the real launch or copy records
    those). The process's first event in a profile sets its time origin."""
    if _active:
        for p in _active:
            origins = p.__dict__.setdefault("_virtual_t0", {})
            base = origins.setdefault(process, t0)
            p._event(name, queue, p._t0 + t0 - base, p._t0 + t1 - base, args, process)


def note(text: str) -> None:
    """A line for the report (e.g. what a data-dependent function had to read)."""
    if _active:
        for p in _active:
            p.notes.append(text)
