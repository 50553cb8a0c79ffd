"""Configuration (read once from the environment) and ``__array_namespace_info__``."""
from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["config", "Config", "default_device", "scoped_default_device"]


@dataclass(frozen=True)
class Config:
    """Settings read from the environment when first needed.

    - ``EGPU_ARRAY_DEVICE``: the default device (``cpu`` if unset).
    - ``EGPU_ARRAY_NUM_THREADS``: threads of the cpu device (default: all cores).
    - ``EGPU_ARRAY_CACHE_DIR``: the kernel cache folder; ``off`` disables the disk cache.
    - ``EGPU_ARRAY_GRAPH_LIMIT``: pending ops in one lazy expression before it is computed.
    - ``EGPU_ARRAY_SPIN_US``: microseconds a cpu worker thread keeps looking for work after its
      last chunk before it sleeps (default 5000; 0: sleep at once, and a launch pays the wake-up).
    """
    default_device: str
    num_threads: int
    cache_dir: Path | None
    graph_limit: int
    spin_seconds: float = 0.005


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "egpu_array"


_scope = threading.local()


@contextmanager
def default_device(device):
    """``with egpu_array.default_device("sim"): ...``: inside the block, in this thread, arrays
    created without ``device=`` go to ``device`` (like ``jax.default_device``); yields the Device."""
    from .backend.device import get_device
    dev = get_device(device, "default_device")
    prev = getattr(_scope, "device", None)
    _scope.device = dev
    try:
        yield dev
    finally:
        _scope.device = prev


def scoped_default_device():
    """The device set by the innermost active ``default_device`` block of this thread, or None."""
    return getattr(_scope, "device", None)


def _env_number(name: str, default, kind=int, low=0):
    """The number in environment variable ``name`` (unset or empty: ``default``); a value that is
    not a finite ``kind`` of at least ``low`` is a ValueError naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")) or value < low:
        what = "an integer" if kind is int else "a finite number"
        raise ValueError(f"{name} must be {what} >= {low}, got {raw!r}")
    return value


@functools.cache
def config() -> Config:
    """The configuration of this process, read once (malformed numbers: a ValueError naming the variable)."""
    cache = os.environ.get("EGPU_ARRAY_CACHE_DIR", "")
    if cache.strip().lower() == "off":
        cache_dir = None
    else:
        cache_dir = Path(cache).expanduser() if cache else _default_cache_dir()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        cores = os.cpu_count() or 1
    return Config(
        default_device=os.environ.get("EGPU_ARRAY_DEVICE", "cpu") or "cpu",
        num_threads=_env_number("EGPU_ARRAY_NUM_THREADS", cores, low=1),
        cache_dir=cache_dir,
        graph_limit=max(2, _env_number("EGPU_ARRAY_GRAPH_LIMIT", 96)),
        spin_seconds=_env_number("EGPU_ARRAY_SPIN_US", 5000.0, float) * 1e-6,
    )


class __array_namespace_info__:
    """Inspection of the namespace: devices, their capabilities and dtypes."""

    def capabilities(self, *, device=None) -> dict:
        from .backend.device import get_device
        return dict(get_device(device, "capabilities").capabilities)

    def default_device(self):
        from .backend.device import get_device
        return get_device(None)

    def default_dtypes(self, *, device=None) -> dict:
        from . import _dtypes as dt
        from .backend.device import get_device
        get_device(device, "default_dtypes")
        return {"real floating": dt.float64, "complex floating": dt.complex128,
                "integral": dt.int64, "indexing": dt.int64}

    def devices(self) -> tuple:
        """Every device present (a tuple, as 2025.12 specifies)."""
        from .backend.device import all_devices
        return tuple(all_devices())

    def dtypes(self, *, device=None, kind=None) -> dict:
        from . import _dtypes as dt
        from ._data_type import isdtype
        from .backend.device import get_device
        get_device(device, "dtypes")
        return {d.name: d for d in dt.ALL_DTYPES if kind is None or isdtype(d, kind)}
