"""Lifetimes of the DLPack capsules egpu_array._dlpack builds (no GPU needed).

* A consumer that refuses a capsule drops it while its exception is set: the caller gets exactly
  that exception (no SystemError, nothing reported as unraisable) and the tensor is released once.
  Refusers: NumPy (a kDLCUDA tensor from a stand-in cuda device) and Python functions that raise
  while the capsule is on the interpreter's stack.
* A consumed capsule (NumPy, our reader) is released once, by its consumer, not by the capsule.
* A capsule dropped without a consumer (in this thread or another) releases its tensor once.
"""
from __future__ import annotations

import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import egpu_array as xp
from egpu_array import _dlpack
from egpu_array._dlpack import KDLCPU, KDLCUDA, make_capsule, read_capsule
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.device import get_device, register_device
from egpu_array.kernels.targets import HostTarget


class Refusing(CPUDevice):
    """Host memory that calls itself (kDLCUDA, 0), so NumPy refuses its capsules."""

    kind = "refusecuda"
    dlpack_code = (KDLCUDA, 0)
    stream_handle = 0x5150

    def __init__(self, index: int = 0):
        super().__init__(target=HostTarget(), num_threads=1)  # its own target machine: its engine owns it
        self.name = f"refusecuda:{index}"

    def stream_wait(self, waiter, on=None):
        pass


register_device("refusecuda", Refusing, lambda: [])
DEV = "refusecuda:0"


@pytest.fixture
def unraisable():
    """Everything reported through ``sys.unraisablehook`` during the test (and the tensors exported
    before it, see :func:`new_exports`)."""
    global _before
    _before = set(_dlpack._exported)
    seen, old = [], sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(f"{u.err_msg}: {u.exc_type.__name__}: {u.exc_value}")
    try:
        yield seen
    finally:
        gc.collect()
        sys.unraisablehook = old


_before: set = set()


def new_exports() -> set:
    """Our exported tensors not yet released that the current test made."""
    return set(_dlpack._exported) - _before


class Owner:
    """What a capsule keeps alive; counts its releases."""

    def __init__(self):
        self.h = np.arange(6.0)
        self.released = 0

    def release(self):
        self.released += 1

    def capsule(self, device=(KDLCPU, 0), versioned=True):
        h = self.h
        return make_capsule(h.ctypes.data, h.shape, (1,), h.dtype, device, self, versioned=versioned,
                            on_release=self.release)


class Producer:
    """Exports ``owner``'s array through our capsules as ``device`` (legacy: never versioned)."""

    def __init__(self, device, legacy=False):
        self.owner, self.device, self.legacy = Owner(), device, legacy

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        return self.owner.capsule(self.device, versioned=max_version is not None and not self.legacy)


def _refuse(capsule):
    raise BufferError("refused by the test consumer")


def _hold(capsule, error):
    raise AssertionError("never reached: the second argument raises first")


def refusing_consumer(x, **kwargs):
    """Takes the capsule, then raises while the capsule is still on the interpreter's stack (so it is
    dropped with the exception set, as a C consumer drops it)."""
    return _hold(x.__dlpack__(**kwargs), _refuse(None))


def _no_system_error(e: BaseException) -> None:
    while e is not None:
        assert not isinstance(e, SystemError), repr(e)
        e = e.__context__ or e.__cause__


@pytest.mark.parametrize("legacy", [False, True])
def test_numpy_refusing_our_capsule_raises_only_its_error(legacy, unraisable):
    p = Producer((KDLCUDA, 0), legacy=legacy)
    with pytest.raises((BufferError, RuntimeError), match="Unsupported device") as info:
        np.from_dlpack(p)
    _no_system_error(info.value)
    del info
    gc.collect()
    assert unraisable == []
    assert p.owner.released == 1 and not new_exports()


@pytest.mark.parametrize("kwargs", [{}, {"max_version": (1, 0)}, {"stream": -1, "max_version": (1, 0)}])
def test_refused_exports_of_a_cuda_array(kwargs, unraisable):
    x = xp.asarray(np.arange(5.0), device=DEV)
    ref = weakref.ref(x)
    with pytest.raises(BufferError, match="refused by the test consumer") as info:
        refusing_consumer(x, **kwargs)
    assert type(info.value) is BufferError and info.value.__context__ is None
    with pytest.raises((BufferError, RuntimeError), match="Unsupported device") as info2:
        np.from_dlpack(x)  # NumPy asks for the versioned struct, then refuses kDLCUDA
    _no_system_error(info2.value)
    del info, info2
    gc.collect()
    assert unraisable == []
    assert not new_exports()  # both tensors released (each capsule kept x alive until then)
    del x
    gc.collect()
    assert ref() is None


def test_a_refused_capsule_runs_python_in_its_deleter(unraisable):
    """on_release runs Python code with the consumer's exception set aside, then it is restored."""
    calls = []

    def on_release():
        calls.append(sum(range(10)))  # plain Python: would fail with an exception pending

    def consumer():
        h = np.arange(3.0)
        _hold(make_capsule(h.ctypes.data, (3,), (1,), h.dtype, (KDLCUDA, 0), h, versioned=True,
                           on_release=on_release), _refuse(None))

    with pytest.raises(BufferError, match="refused") as info:
        consumer()
    assert info.value.__context__ is None
    assert calls == [45] and unraisable == []


def test_refused_sim_export_raises_only_the_consumers_error(unraisable):
    """sim exports a host copy through NumPy's capsule (kDLCPU): a refusal is just as clean."""
    pytest.importorskip("usb")  # the sim device's emulated bridge is a pyusb backend
    x = xp.asarray(np.arange(4.0), device="sim")
    assert x.__dlpack_device__() == (KDLCPU, 0)
    with pytest.raises(BufferError, match="refused") as info:
        refusing_consumer(x, max_version=(1, 0))
    assert info.value.__context__ is None and unraisable == []
    np.testing.assert_array_equal(np.from_dlpack(x), np.arange(4.0))


@pytest.mark.parametrize("legacy", [False, True])
def test_numpy_consumes_our_capsules_and_releases_them_once(legacy, unraisable):
    p = Producer((KDLCPU, 0), legacy=legacy)
    got = np.from_dlpack(p)
    np.testing.assert_array_equal(got, np.arange(6.0))
    assert got.ctypes.data == p.owner.h.ctypes.data and p.owner.released == 0
    gc.collect()
    assert p.owner.released == 0  # the capsule is gone, NumPy's array holds the tensor
    del got
    gc.collect()
    assert p.owner.released == 1 and not new_exports() and unraisable == []


@pytest.mark.parametrize("max_version", [None, (1, 0)])
def test_numpy_consumes_cpu_arrays(max_version, unraisable):
    x = xp.asarray(np.arange(8, dtype=np.int32))
    kwargs = {} if max_version is None else {"max_version": max_version}
    got = np.from_dlpack(_Fixed(x, kwargs))
    np.testing.assert_array_equal(got, np.arange(8))
    assert got.ctypes.data == x._realize().buffer.ptr + x._realize().offset * 4  # shared memory
    ref = weakref.ref(got)
    del got
    gc.collect()
    assert ref() is None and unraisable == []


class _Fixed:
    """Passes ``x.__dlpack__`` fixed keyword arguments (a legacy or a versioned request)."""

    def __init__(self, x, kwargs):
        self.x, self.kwargs = x, kwargs

    def __dlpack_device__(self):
        return self.x.__dlpack_device__()

    def __dlpack__(self, **_):
        return self.x.__dlpack__(**self.kwargs)


@pytest.mark.parametrize("versioned", [True, False])
def test_our_reader_consumes_and_the_capsule_does_not_release(versioned, unraisable):
    x = xp.asarray(np.arange(4.0), device=DEV)
    t = read_capsule(x.__dlpack__(max_version=(1, 0) if versioned else None))
    gc.collect()
    assert len(new_exports()) == 1  # consumed: the dropped capsule left the tensor alone
    assert t.versioned == versioned
    t.release()
    t.release()
    assert not new_exports() and unraisable == []


@pytest.mark.parametrize("versioned", [True, False])
def test_unconsumed_capsules_release_once(versioned, unraisable):
    owner = Owner()
    ref = weakref.ref(owner)
    cap = owner.capsule((KDLCUDA, 0), versioned=versioned)
    kept = owner.release.__self__
    del owner
    assert ref() is not None
    del cap
    assert kept.released == 1 and not new_exports()
    del kept
    gc.collect()
    assert ref() is None and unraisable == []


def test_a_capsule_dropped_in_another_thread_releases_once(unraisable):
    owner = Owner()
    box = [owner.capsule((KDLCUDA, 0))]
    worker = threading.Thread(target=box.clear)
    worker.start()
    worker.join()
    assert owner.released == 1 and not new_exports() and unraisable == []


def test_the_native_destructor_is_built_once():
    from egpu_array import _native
    assert _dlpack._capsule_destructor() == _dlpack._capsule_destructor() != 0
    assert _native.capsule_destructor.cache_info().currsize == 1
    assert get_device(DEV).dlpack_code == (KDLCUDA, 0)
