"""The kernel cache: compiled kernels in memory per device, and their binaries on disk.

The disk cache lives under ``EGPU_ARRAY_CACHE_DIR`` (default: the user's cache folder,
``$XDG_CACHE_HOME/egpu_array`` or ``~/.cache/egpu_array``; ``off`` disables it). A file is named by
the SHA-256 of (spec, target key), and holds a header with the SHA-256 of its payload: a corrupt or
truncated file fails that check and is recompiled, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from .. import _native_stack as native_stack, profiler
from .._info import config
from .elementwise import generate_elementwise
from .reduction import generate_reduction

__all__ = ["get_program", "cache_dir", "clear_memory_cache", "GENERATORS"]

_MAGIC = b"EGPUK1\n"
GENERATORS = {"elementwise": generate_elementwise, "reduce": generate_reduction}
from .sort import generate_sort  # noqa: E402
GENERATORS["sort"] = generate_sort
from .search import generate_compact, generate_search  # noqa: E402
GENERATORS["search"] = generate_search
GENERATORS["compact"] = generate_compact


def generator_for(kind: str):
    """The IR generator for kernels of ``kind``: from :data:`GENERATORS`, else the function
    ``generate`` of the module ``egpu_array.kernels.<kind>`` (so a new kernel kind is one new module)."""
    gen = GENERATORS.get(kind)
    if gen is None:
        import importlib
        try:
            gen = importlib.import_module(f"{__package__}.{kind}").generate
        except (ImportError, AttributeError):
            raise KeyError(f"get_program: no kernel generator for kind {kind!r}") from None
        GENERATORS[kind] = gen
    return gen

_memory: dict = {}
_lock = threading.Lock()


def cache_dir() -> Path | None:
    """The on-disk cache folder, or None when disabled."""
    return config().cache_dir


def _code_version() -> str:
    """A digest of the kernel generators' source: changing a generator invalidates old binaries."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


_CODE_VERSION = _code_version()


def _key(spec, target) -> str:
    return hashlib.sha256(f"{spec!r}|{target.key}|{_CODE_VERSION}".encode()).hexdigest()


def _digest(key: str, payload: bytes) -> bytes:
    """The header's check of a kernel file: the payload and the key it was stored under (a file
    copied or renamed to another kernel's name is a miss, not a wrong kernel)."""
    return hashlib.sha256(key.encode() + payload).hexdigest().encode()


def _read_disk(path: Path, key: str) -> bytes | None:
    """The kernel stored at ``path`` for ``key``, or None (absent, not a regular file, damaged,
    another kernel's): a miss only costs a compile."""
    try:
        if not path.is_file():  # (a FIFO would block the read; a folder or a dead link fails it)
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 64:
        return None
    payload = data[len(_MAGIC) + 64:]
    if data[len(_MAGIC):len(_MAGIC) + 64] != _digest(key, payload):
        return None
    return payload


def _write_disk(path: Path, key: str, payload: bytes) -> None:
    """Store ``payload`` for ``key`` at ``path`` atomically; a read-only or full disk only costs
    recompiles, and leaves no partial temporary file behind."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + _digest(key, payload) + payload)
        os.replace(tmp, path)  # atomic: readers never see a half-written file
    except OSError:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


#: callables ``f(device, spec)`` told of every spec requested (tests record the suite's specs)
recorders: list = []


def get_program(device, spec):
    """The loaded Program for ``spec`` on ``device``: from memory, disk, or a fresh compile."""
    if recorders:
        for r in recorders:
            r(device, spec)
    target = device.target
    mkey = (device, spec)
    prog = _memory.get(mkey)
    if prog is not None:
        profiler.count("cache_hits")
        return prog
    with _lock:
        prog = _memory.get(mkey)
        if prog is not None:
            profiler.count("cache_hits")
            return prog
        key = _key(spec, target)
        fname = f"k_{key[:24]}"
        folder = cache_dir()
        path = folder / f"{key}.bin" if folder is not None else None
        binary = _read_disk(path, key) if path is not None else None
        if binary is None:
            with profiler.span("compile", spec.name):
                module = target.new_module(fname)
                # a target may bring its own generator of a kind (NVPTXTarget.generators)
                gen = getattr(target, "generators", {}).get(spec.kind) or generator_for(spec.kind)
                gen(spec, module, fname)
                binary = native_stack.call(target.compile, module)  # LLVM's stack need
            profiler.count("compiles")
            if path is not None:
                _write_disk(path, key, binary)
        else:
            profiler.count("cache_hits")
        prog = device.load(binary, fname, spec)
        _memory[mkey] = prog
        return prog


def clear_memory_cache() -> None:
    """Forget loaded programs (the disk cache stays)."""
    with _lock:
        _memory.clear()
    from .._schedule_plans import clear_plans  # the scheduler's plans hold loaded programs too
    clear_plans()
