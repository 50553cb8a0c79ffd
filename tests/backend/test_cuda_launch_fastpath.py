"""The cuda device's per-launch driver calls without ctypes argument conversion (Driver.raw), over
the fake driver of test_cuda_driver: NumPy integers still work as counts, and every failing call
still raises its mapped error."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from egpu_array import DeviceError, KernelLaunchError

from .test_cuda_driver import fake_device, fake_libcuda  # noqa: F401  (fixtures)


def _program(dev, monkeypatch, name="k_f", header=b"// egpu_array args=4 writes=0\n"):
    from egpu_array.kernels.spec import SortSpec
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    return dev.load(header, name, SortSpec("int8", 0, 0, "local"))


@pytest.mark.parametrize("n", [np.int64(1000), np.int32(7), 1000])
def test_counts_may_be_numpy_integers(fake_device, monkeypatch, n):
    from egpu_array.backend import cuda
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    prog = _program(dev, monkeypatch)
    dev.launch(prog, (ctypes.c_int64 * 4)(1, 2, 3, 4), n)
    assert lib.fake_last(0) == -(-int(n) // cuda.BLOCK) and lib.fake_last(3) == int(n)


def test_raw_functions_are_separate_from_the_checked_ones(fake_device):
    dev, _ = fake_device
    raw, checked = dev.drv.raw("cuEventRecord"), dev.drv.fn("cuEventRecord")
    assert raw is not checked and raw is dev.drv.raw("cuEventRecord")
    assert checked.argtypes and not raw.argtypes
    with pytest.raises(DeviceError, match="has no cuNoSuchCall"):
        dev.drv.raw("cuNoSuchCall")


def test_failing_launch_and_argument_copy_still_raise(fake_device, monkeypatch):
    dev, _ = fake_device
    prog = _program(dev, monkeypatch)
    slots = (ctypes.c_int64 * 4)(1, 2, 3, 4)
    dev.launch(prog, slots, 10)  # makes the launch state
    hot = dev._hot
    dev._hot = hot[:4] + ((lambda *a: 700),) + hot[5:]  # cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS
    with pytest.raises(KernelLaunchError, match="launching k_f"):
        dev.launch(prog, slots, 10)
    dev._hot = hot
    ring = hot[0]
    monkeypatch.setattr(ring, "_copy", lambda *a: 1)  # cuMemcpyHtoDAsync: CUDA_ERROR_INVALID_VALUE
    nxt = ring.next
    with pytest.raises(DeviceError, match="copying the arguments of k_f"):
        dev.launch(prog, slots, 10)
    assert ring.next == nxt  # nothing was queued: the entry is used again by the next launch
