"""Backend interfaces: Device, Allocator, Buffer, Program; and the device registry.

A new device is one file that implements :class:`Device` (and an :class:`Allocator`); the
namespace never talks to hardware except through these.
"""
from __future__ import annotations

import abc
import threading

from .._errors import DeviceError

__all__ = ["Device", "Allocator", "Buffer", "Program", "get_device", "register_device", "all_devices"]


class Buffer:
    """A block of device memory: ``nbytes`` at ``ptr`` (an address the device's kernels take).

    ``valid`` is False after a failed write; reading such a buffer raises. ``readers`` holds the
    pending lazy arrays that read it, so an in-place write first computes them.
    """

    __slots__ = ("device", "nbytes", "ptr", "handle", "valid", "readers", "__weakref__")

    def __init__(self, device, nbytes: int, ptr: int, handle):
        self.device = device
        self.nbytes = nbytes
        self.ptr = ptr
        self.handle = handle
        self.valid = True
        self.readers = []  # weak references to pending lazy Arrays that read this buffer

    def __del__(self):
        try:
            self.device.allocator.free(self)
        except Exception:  # interpreter shutdown: nothing to return memory to
            pass

    def __repr__(self) -> str:
        return f"Buffer({self.device}, {self.nbytes} bytes at {self.ptr:#x})"


class Allocator(abc.ABC):
    """Raw device memory: ``alloc(nbytes) -> (ptr, handle)`` and ``release(ptr, handle)``."""

    @abc.abstractmethod
    def alloc(self, nbytes: int):
        """``(ptr, handle)`` of a new block of ``nbytes``; MemoryError when the device is full."""

    @abc.abstractmethod
    def release(self, ptr: int, handle) -> None:
        """Give a block back to the device."""


class Program:
    """A loaded kernel: ``device.launch(program, args, n)`` runs it over ``n`` work items, then
    ``tail(args)`` once if the kernel has a second phase (a chunked reduction's finalize step).
    ``addr`` is the kernel's address where it is native code the host can call (0 otherwise)."""

    __slots__ = ("name", "fn", "spec", "tail", "addr")

    def __init__(self, name: str, fn, spec, tail=None, addr: int = 0):
        self.name = name
        self.fn = fn
        self.spec = spec
        self.tail = tail
        self.addr = addr


class _DeviceType(type):
    """``Device("sim")`` looks the device up by name (what its repr shows), as ``x.device`` or
    ``get_device`` would; the device classes themselves construct as usual."""

    def __call__(cls, *args, **kwargs):
        if cls is not Device:
            return super().__call__(*args, **kwargs)
        if len(args) != 1 or kwargs:
            raise TypeError("Device(name): expected one device name such as 'cpu', 'sim' or 'cuda:0'")
        return get_device(args[0], "Device")


class Device(metaclass=_DeviceType):
    """A place where arrays live and kernels run. Compares equal by name; hashable.
    ``Device(name)`` is the device of that name (one object per device in a process).

    Subclasses provide ``target`` (kernels.targets.Target), ``allocator`` (a pool),
    ``load(binary, fname, spec) -> Program``, ``launch(program, args, n)``,
    ``copy_in(buffer, offset, host_view)``, ``copy_out(buffer, offset, host_view)``,
    ``synchronize()`` and ``capabilities``.
    """

    name: str = "?"
    kind: str = "?"
    #: the device memory is the host's (no bytes cross a link to reach it)
    host_memory: bool = False

    def __eq__(self, other) -> bool:
        if isinstance(other, Device):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __copy__(self):
        """A device is one per process: copies (``copy.deepcopy`` of a config or of estimator
        parameters that name it) are the device itself."""
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        """Pickled as its name; unpickled as that device of the loading process."""
        return get_device, (self.name,)

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __str__(self) -> str:
        return self.name

    @property
    def capabilities(self) -> dict:
        """The ``capabilities()`` dict of ``__array_namespace_info__`` for this device."""
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def synchronize(self) -> None:
        """Wait for all work queued on this device."""


_factories: dict = {}
_instances: dict = {}
_reg_lock = threading.Lock()


def register_device(kind: str, factory, lister) -> None:
    """Register a device kind: ``factory(index) -> Device``, ``lister() -> list of names``."""
    _factories[kind] = (factory, lister)


def all_devices() -> list:
    """Every device present, cpu first."""
    out = []
    for kind, (_, lister) in _factories.items():
        for name in lister():
            out.append(get_device(name))
    return out


def get_device(device=None, func: str = "device"):
    """The Device for ``device``: None (the default), a name like ``"cpu"`` / ``"cuda:0"``, or a Device."""
    if isinstance(device, Device):
        return device
    if device is None:
        from .._info import config, scoped_default_device
        scoped = scoped_default_device()
        if scoped is not None:
            return scoped
        device = config().default_device
        func = f"{func} (the default device, EGPU_ARRAY_DEVICE={device!r})"
    if not isinstance(device, str):
        raise TypeError(f"{func}: expected a Device, a device name or None, got {type(device).__name__}")
    dev = _instances.get(device)
    if dev is not None:
        return dev
    kind, _, index = device.partition(":")
    if kind not in _factories:
        raise ValueError(f"{func}: unknown device {device!r}; devices present: "
                         f"{[d.name for d in all_devices()]}")
    if index and not (index.isascii() and index.isdigit()) or (kind == "cpu" and index and int(index)):
        raise ValueError(f"{func}: bad device name {device!r}: expected KIND or KIND:INDEX with INDEX a "
                         "number from 0 (cpu: only 0)")
    idx = int(index) if index else 0
    with _reg_lock:
        canonical = kind if kind == "cpu" else f"{kind}:{idx}"
        dev = _instances.get(canonical)
        if dev is None:
            try:
                dev = _factories[kind][0](idx)
            except DeviceError:
                raise
            _instances[canonical] = dev
        _instances[device] = dev
    return dev
