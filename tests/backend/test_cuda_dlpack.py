"""DLPack device exchange (egpu_array._dlpack) without a GPU.

* The capsules :func:`make_capsule` builds are read by NumPy (kDLCPU: the layout of
  DLManagedTensor and DLManagedTensorVersioned, shapes, strides, dtypes, the deleter) and by our
  own reader (kDLCUDA fields); NumPy's capsules are read by ours.
* A stand-in device (``fakecuda``: host memory, ``dlpack_code`` (kDLCUDA, 0), streams recorded
  instead of synchronized) runs the export and import paths of a cuda device: the pointer is
  shared, the stream argument maps to the waits the standard asks for, and the producer's tensor is
  released when no array uses it.
* Importing a kDLCUDA tensor where no cuda device exists raises a clear BufferError.

The real exchange with CuPy and PyTorch on a GPU is in test_cuda_device.py (``-m cuda``).
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import egpu_array as xp
from egpu_array import _dlpack
from egpu_array._dlpack import KDLCPU, KDLCUDA, make_capsule, read_capsule
from egpu_array.backend import cuda
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.device import get_device, register_device
from egpu_array.kernels.targets import HostTarget

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex64", "complex128"]


class Owner:
    """Keeps a NumPy array alive for a capsule; counts its releases."""

    def __init__(self, h):
        self.h = h
        self.released = 0

    def release(self):
        self.released += 1


class Producer:
    """An object exporting ``owner.h`` through our capsules, as device ``device``."""

    def __init__(self, h, device=(KDLCPU, 0), flags=0, legacy=False):
        self.owner, self.device, self.flags, self.calls = Owner(h), device, flags, []
        self.legacy = legacy

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        self.calls.append({"stream": stream, "max_version": max_version})
        h = self.owner.h
        item = h.itemsize
        return make_capsule(h.ctypes.data, h.shape, tuple(s // item for s in h.strides), h.dtype, self.device,
                            self.owner, versioned=max_version is not None and not self.legacy, flags=self.flags,
                            on_release=self.owner.release)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_reads_our_capsules(dtype, legacy):
    h = (np.arange(24).reshape(4, 6) % 5).astype(dtype)[:, ::2]  # strided
    p = Producer(h, legacy=legacy)
    got = np.from_dlpack(p)
    assert p.calls[-1]["max_version"] is not None  # NumPy 2 asks for the versioned struct
    np.testing.assert_array_equal(got, h)
    assert got.ctypes.data == h.ctypes.data  # shared, not copied
    assert p.owner.released == 0
    del got
    gc.collect()
    assert p.owner.released == 1  # NumPy called our deleter


def test_legacy_capsule_and_unconsumed_capsules_release():
    h = np.arange(6.0)
    owner = Owner(h)
    ref = weakref.ref(owner)
    cap = make_capsule(h.ctypes.data, h.shape, (1,), h.dtype, (KDLCPU, 0), owner, versioned=False,
                       on_release=owner.release)
    kept = owner
    del owner
    assert ref() is not None  # the capsule keeps its owner
    del cap  # never consumed: the capsule's destructor runs the deleter
    gc.collect()
    assert kept.released == 1 and not _dlpack._exported


@pytest.mark.parametrize("versioned", [True, False])
def test_our_reader_on_a_cuda_capsule(versioned):
    owner = Owner(None)
    cap = make_capsule(0x7F0000001000, (3, 5), (10, 2), np.dtype("float32"), (KDLCUDA, 3), owner,
                       versioned=versioned, flags=_dlpack.FLAG_READ_ONLY, on_release=owner.release)
    t = read_capsule(cap)
    assert (t.device, t.shape, t.strides, t.dtype, t.ptr) == ((2, 3), (3, 5), (10, 2), np.float32, 0x7F0000001000)
    assert t.versioned == versioned and t.version == ((1, 0) if versioned else (0, 0))
    assert t.flags == (_dlpack.FLAG_READ_ONLY if versioned else 0)
    with pytest.raises(BufferError, match="unconsumed"):
        read_capsule(cap)  # renamed used_dltensor...
    del cap
    gc.collect()
    assert owner.released == 0  # consumed: only the consumer's release deletes it
    t.release()
    t.release()
    assert owner.released == 1


def test_our_reader_on_numpys_capsules():
    h = np.arange(12, dtype=np.int16).reshape(3, 4)
    t = read_capsule(h.__dlpack__(max_version=(1, 0)))
    assert (t.device, t.shape, t.dtype, t.ptr) == ((1, 0), (3, 4), np.int16, h.ctypes.data)
    assert t.strides == (4, 1)
    t.release()


def test_dl_dtype_codes():
    assert _dlpack.dl_dtype(np.dtype(bool)) == (6, 8, 1)
    assert _dlpack.dl_dtype(xp.complex64) == (5, 64, 1)
    assert _dlpack.dl_dtype(xp.uint32) == (1, 32, 1)
    with pytest.raises(BufferError):
        _dlpack.dl_dtype(np.dtype("M8[s]"))


# ---- a stand-in cuda device ------------------------------------------------------------------
class FakeCuda(CPUDevice):
    """Host memory that calls itself (kDLCUDA, 0); records stream waits and synchronizations."""

    kind = "fakecuda"

    def __init__(self, index: int = 0):
        super().__init__(target=HostTarget(), num_threads=1)  # its own target machine: its engine owns it
        self.name = f"fakecuda:{index}"
        self.waits, self.syncs = [], 0

    dlpack_code = (KDLCUDA, 0)
    stream_handle = 0xABC0

    def stream_wait(self, waiter, on=None):
        self.waits.append((waiter, on))

    def synchronize(self):
        self.syncs += 1


register_device("fakecuda", FakeCuda, lambda: [])
FAKE = "fakecuda:0"


@pytest.mark.parametrize("stream,waits", [(None, [(1, None)]), (1, [(1, None)]), (2, [(2, None)]),
                                          (0xBEEF, [(0xBEEF, None)]), (-1, [])])
def test_export_shares_the_pointer_and_orders_the_consumer(stream, waits):
    h = np.arange(20.0).reshape(4, 5)
    x = xp.asarray(h, device=FAKE) * 2  # pending: the export computes it
    dev = get_device(FAKE)
    dev.waits.clear()
    assert x.__dlpack_device__() == (KDLCUDA, 0)
    cap = x.__dlpack__(stream=stream, max_version=(1, 0))
    assert dev.waits == waits  # the consumer's stream waits for our queued work
    t = read_capsule(cap)
    view = x._node.arg
    assert t.device == (KDLCUDA, 0) and t.ptr == view.buffer.ptr + view.offset * 8  # our memory, no copy
    assert t.shape == (4, 5) and t.strides == (5, 1) and t.flags == 0
    dev.waits.clear()
    t.release()  # the consumer is done: our stream waits for its stream
    assert dev.waits == ([(FakeCuda.stream_handle, waits[0][0])] if waits else [(None, None)])


def test_export_errors_and_copies():
    x = xp.asarray(np.arange(6.0), device=FAKE)
    with pytest.raises(BufferError, match="stream"):
        x.__dlpack__(stream=0)
    with pytest.raises(BufferError):
        x.__dlpack__(dl_device=(KDLCUDA, 1))
    t = read_capsule(x.__dlpack__(copy=True, max_version=(1, 0)))
    assert t.flags & _dlpack.FLAG_IS_COPIED and t.ptr != x._node.arg.buffer.ptr
    t.release()
    legacy = read_capsule(x.__dlpack__())  # no max_version: DLManagedTensor
    assert not legacy.versioned
    legacy.release()
    host = np.from_dlpack(x, device="cpu")  # dl_device=(kDLCPU, 0): a host copy, as before
    np.testing.assert_array_equal(host, np.arange(6.0))


def test_import_wraps_the_producers_memory():
    h = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::-1]  # negative strides
    p = Producer(h, device=(KDLCUDA, 0))
    x = xp.from_dlpack(p, device=FAKE)
    assert p.calls[-1]["stream"] == FakeCuda.stream_handle  # the producer orders its work before ours
    assert x.device == FAKE and x.dtype == xp.float32
    np.testing.assert_array_equal(np.asarray(x), h)
    h[0, 0] = 99  # shared memory: no copy was made
    assert float(x[0, 0]) == 99
    y = x + 1
    assert p.owner.released == 0
    dev = get_device(FAKE)
    syncs = dev.syncs
    del x
    gc.collect()
    assert p.owner.released == 0  # y's pending expression still reads the memory
    np.asarray(y)
    del y
    gc.collect()
    assert p.owner.released == 1 and dev.syncs == syncs + 1  # queued work done, then released


def test_import_copy_and_read_only():
    h = np.arange(6.0)
    p = Producer(h, device=(KDLCUDA, 0))
    x = xp.from_dlpack(p, device=FAKE, copy=True)
    h[0] = 5
    assert float(x[0]) == 0.0
    gc.collect()
    assert p.owner.released == 1  # the copy does not hold the producer's tensor
    ro = Producer(h, device=(KDLCUDA, 0), flags=_dlpack.FLAG_READ_ONLY)
    y = xp.from_dlpack(ro, device=FAKE)  # ours are writable: a read-only tensor is copied
    h[1] = 7
    assert float(y[1]) == 1.0
    with pytest.raises(BufferError, match="read-only"):
        xp.from_dlpack(ro, device=FAKE, copy=False)


def test_import_of_a_cuda_tensor_without_a_cuda_device():
    if cuda.list_devices():
        pytest.skip("a cuda device exists here")
    p = Producer(np.arange(3.0), device=(KDLCUDA, 0))
    with pytest.raises(BufferError, match=r"CUDA device 0 \(kDLCUDA\).*device='cpu'"):
        xp.from_dlpack(p)
    assert not p.calls  # nothing was exported, nothing leaks


# ---- the real cuda device's hooks, over the fake driver of test_cuda_driver ------------------------
from .test_cuda_driver import fake_device, fake_libcuda  # noqa: E402,F401  (fixtures)


def test_cuda_device_export_and_import_over_the_fake_driver(fake_device):
    """CUDADevice's DLPack hooks: (kDLCUDA, 0), the consumer's stream waits on an event, the
    exported pointer is the buffer's; an imported tensor is read through the device's copies."""
    dev, lib = fake_device
    x = xp.asarray(np.arange(8.0), device=dev)
    assert x.__dlpack_device__() == (KDLCUDA, 0)
    waits = lib.fake_waits()
    t = read_capsule(x.__dlpack__(stream=0x1000, max_version=(1, 0)))
    assert lib.fake_waits() == waits + 1 and t.ptr == x._node.arg.buffer.ptr
    t.release()
    assert lib.fake_waits() == waits + 2  # released: our compute stream waits for the consumer's
    h = np.arange(12, dtype=np.int32).reshape(3, 4)[::-1]  # the fake's device memory is host memory
    p = Producer(h, device=(KDLCUDA, 0))
    y = xp.from_dlpack(p, device=dev)
    assert p.calls[-1]["stream"] == dev.compute and y._node.arg.buffer.ptr != 0
    np.testing.assert_array_equal(np.asarray(y), h)  # cuMemcpyDtoH of the producer's memory
    del y
    gc.collect()
    assert p.owner.released == 1
