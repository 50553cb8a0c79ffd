"""The cuda device on a real GPU (``pytest -m cuda``): namespace operations on ``cuda:0`` against
NumPy, and the namespace test files re-run with ``cuda:0`` as the default device.

Deselected by default (pyproject's addopts); skipped with the reason where no CUDA device exists.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import egpu_array as xp
from egpu_array.backend import cuda

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[2]
DEV = "cuda:0"

#: namespace test files re-run on cuda:0 (their arrays go to the default device)
NAMESPACE_TESTS = ["tests/test_array.py", "tests/test_elementwise.py", "tests/test_statistical.py",
                   "tests/test_manipulation.py", "tests/test_indexing.py", "tests/test_searching.py",
                   "tests/test_sorting.py", "tests/test_set.py", "tests/test_linalg.py",
                   "tests/test_fusion.py", "tests/test_dtypes.py"]


@pytest.fixture(scope="module", autouse=True)
def need_gpu():
    if not cuda.list_devices():
        from egpu_array.backend import cuda_driver
        try:
            cuda_driver.driver()
            why = "the driver sees no CUDA device"
        except xp.DeviceError as e:
            why = str(e)
        pytest.skip(f"no cuda device: {why}")


def _rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_chain(dtype):
    h = [_rand((1000, 333), dtype, s) for s in range(5)]
    a, b, c, d, e = (xp.asarray(v, device=DEV) for v in h)
    r = np.asarray(a * b + c * d - xp.sin(e) * xp.exp(-a))
    want = h[0] * h[1] + h[2] * h[3] - np.sin(h[4]) * np.exp(-h[0])
    np.testing.assert_allclose(r, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_huge_trig_arguments_take_the_retry_path():
    h = np.array([1e30, 3.0, -1e300, 0.5])
    np.testing.assert_allclose(np.asarray(xp.sin(xp.asarray(h, device=DEV))), np.sin(h), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("n", [0, 1, 1000, 1 << 20, (64 << 20) + 3])
def test_round_trip(n):
    h = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
    assert np.array_equal(np.asarray(xp.asarray(h, device=DEV)), h)


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "argmax", "cumulative_sum"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_reductions(op, axis):
    h = _rand((300, 1001), "float64")
    if op == "prod":
        h = 1 + h / 100
    x = xp.asarray(h, device=DEV)
    f = getattr(xp, op)
    if op == "cumulative_sum":
        axis = 0 if axis is None else axis
    got = np.asarray(f(x, axis=axis))
    npf = {"cumulative_sum": np.cumsum}.get(op, getattr(np, op))
    # a block scan adds in another order than NumPy's running sum: near-cancelling prefixes get an
    # absolute error of a few eps times the sum of magnitudes
    atol = 1e-13 * np.abs(h).sum(axis=axis).max() if op == "cumulative_sum" else 0
    np.testing.assert_allclose(got, npf(h, axis=axis), rtol=1e-10, atol=atol)


def test_big_sum_uses_the_chunked_reduction():
    h = _rand(1 << 24, "float32")
    got = float(xp.sum(xp.asarray(h, device=DEV)))
    assert abs(got - float(h.astype(np.float64).sum())) < 1e-3 * np.abs(h).sum() / np.sqrt(h.size)


@pytest.mark.parametrize("dtype", ["float32", "int64", "uint8"])
def test_sort_and_search(dtype):
    h = _rand(100_003, "float64").astype(dtype)
    x = xp.asarray(h, device=DEV)
    assert np.array_equal(np.asarray(xp.sort(x)), np.sort(h, kind="stable"))
    assert np.array_equal(np.asarray(xp.argsort(x)), np.argsort(h, kind="stable"))
    s = np.sort(h)
    assert np.array_equal(np.asarray(xp.searchsorted(xp.asarray(s, device=DEV), x)), np.searchsorted(s, h))
    assert np.array_equal(np.asarray(xp.unique_values(x)), np.unique(h))


def test_indexing_and_errors():
    h = _rand((50, 40), "float32")
    x = xp.asarray(h, device=DEV)
    idx = np.array([3, -1, 7])
    assert np.array_equal(np.asarray(x[xp.asarray(idx, device=DEV)]), h[idx])
    assert np.array_equal(np.asarray(x[x > 0]), h[h > 0])
    with pytest.raises(IndexError):
        np.asarray(x[xp.asarray(np.array([50]), device=DEV)])


def test_out_of_memory_is_a_memory_error():
    dev = xp.asarray(0.0, device=DEV).device
    with pytest.raises(MemoryError) as info:
        xp.synchronize(xp.empty(dev.total_memory * 2 // 4, dtype=xp.float32, device=DEV))
    assert isinstance(info.value, xp.DeviceOutOfMemoryError) and "requested" in str(info.value)


def test_namespace_suite_on_cuda():
    """The namespace test files, with cuda:0 as the default device."""
    env = dict(os.environ, EGPU_ARRAY_DEVICE=DEV, EGPU_HYPOTHESIS_PROFILE="quick")
    files = [f for f in NAMESPACE_TESTS if (ROOT / f).exists()]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]


# ---- the tiled GEMM (kernels.ptx_gemm) and DLPack exchange on the GPU ------------------------------
def _close(got, a, b, add=0):
    """Within 4 K eps (|a| @ |b|) of NumPy's a @ b + add (the bound of a K-term dot product)."""
    want = a @ b + add
    bound = 4 * a.shape[-1] * np.finfo(a.dtype).eps * (np.abs(a) @ np.abs(b) + np.abs(add)) + 1e-30
    assert np.all(np.abs(np.asarray(got) - want) <= bound)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k,batch", [(1, 2, 1, ()), (64, 64, 16, ()), (129, 67, 33, (3,)), (512, 384, 300, ())])
def test_tiled_gemm(dtype, m, n, k, batch):
    a, b, c = _rand(batch + (m, k), dtype, 1), _rand((k, n), dtype, 2), _rand(n, dtype, 3)
    x, w, bias = (xp.asarray(v, device=DEV) for v in (a, b, c))
    _close(x @ w, a, b)
    _close(x @ w + bias, a, b, c)  # fused epilogue
    if not batch:
        _close(x.mT @ x, a.T, a)  # A contiguous along M
        _close(x @ w[::-1].mT.mT, a, b[::-1])


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    return torch


def _cupy():
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception as e:
        pytest.skip(f"CuPy cannot use the GPU: {e}")
    return cp


def test_dlpack_device_pointer_is_exported():
    x = xp.asarray(np.arange(12.0).reshape(3, 4), device=DEV) * 2
    assert x.__dlpack_device__() == (2, 0)
    from egpu_array._dlpack import read_capsule
    t = read_capsule(x.__dlpack__(stream=-1, max_version=(1, 0)))
    view = x._node.arg
    assert t.device == (2, 0) and t.ptr == view.buffer.ptr + 8 * view.offset and t.shape == (3, 4)
    t.release()


def test_dlpack_with_torch():
    torch = _torch_cuda()
    h = _rand((64, 33), "float32")
    x = xp.asarray(h, device=DEV) + 1  # pending when exported: the export computes it
    t = torch.from_dlpack(x)
    assert t.is_cuda and t.data_ptr() == x._node.arg.buffer.ptr + 4 * x._node.arg.offset
    np.testing.assert_allclose(t.cpu().numpy(), h + 1)
    src = torch.arange(20, dtype=torch.float64, device="cuda").reshape(4, 5)[:, ::2]
    y = xp.from_dlpack(src)
    assert y.device == DEV and y._node.arg.buffer.ptr == src.data_ptr()  # no copy
    np.testing.assert_array_equal(np.asarray(y * 1), src.cpu().numpy())
    src.add_(1)  # shared memory: torch's in-place write is seen (after its stream is ordered)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(np.asarray(y * 1), src.cpu().numpy())


def test_dlpack_with_cupy():
    cp = _cupy()
    h = _rand((50, 7), "float64")
    x = xp.asarray(h, device=DEV)
    c = cp.from_dlpack(x)
    assert c.data.ptr == x._node.arg.buffer.ptr
    np.testing.assert_array_equal(cp.asnumpy(c), h)
    src = cp.arange(30, dtype=cp.float32).reshape(5, 6)
    y = xp.from_dlpack(src)
    assert y._node.arg.buffer.ptr == src.data.ptr
    np.testing.assert_array_equal(np.asarray(xp.sum(y, axis=0)), cp.asnumpy(src).sum(axis=0))
