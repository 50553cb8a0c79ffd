"""Interop: array-api-compat's helpers and array-api-extra's functions on egpu_array arrays.

array-api-extra (installed by the ``test`` extra) is written against the standard only, so each of
its functions is run on our arrays (cpu and sim) and on NumPy's, and the results compared.
"""
import numpy as np
import pytest

import egpu_array as xp

compat = pytest.importorskip("array_api_compat")
xpx = pytest.importorskip("array_api_extra")

RNG = np.random.default_rng(1)
A = RNG.standard_normal((5, 4))
AN = A.copy()
AN[1, 2] = np.nan
I = np.array([3, 1, 2, 3, 1, 5])

# name -> function of (namespace, converter); results compared with NumPy's
CASES = {
    "atleast_nd": lambda m, t: xpx.atleast_nd(t(A)[0, 0], ndim=3, xp=m),
    "cov": lambda m, t: xpx.cov(t(A), xp=m),
    "create_diagonal": lambda m, t: xpx.create_diagonal(t(A)[0], xp=m),
    "isclose": lambda m, t: xpx.isclose(t(A), t(A) + 1e-9, xp=m),
    "kron": lambda m, t: xpx.kron(t(A)[:2, :2], t(A)[:3, :1], xp=m),
    "nunique": lambda m, t: xpx.nunique(t(I), xp=m),
    "pad": lambda m, t: xpx.pad(t(A), 2, xp=m),
    "setdiff1d": lambda m, t: xpx.setdiff1d(t(I), t(np.array([1, 2])), xp=m),
    "union1d": lambda m, t: xpx.union1d(t(np.array([3, 1])), t(np.array([1, 2])), xp=m),
    "sinc": lambda m, t: xpx.sinc(t(A), xp=m),
    "one_hot": lambda m, t: xpx.one_hot(t(np.array([0, 2, 1])), 3, xp=m),
    "nan_to_num": lambda m, t: xpx.nan_to_num(t(AN), xp=m),
    "nanmean": lambda m, t: xpx.nanmean(t(AN), xp=m),
    "nanmax": lambda m, t: xpx.nanmax(t(AN), xp=m),
    "nanmin": lambda m, t: xpx.nanmin(t(AN), xp=m),
    "isin": lambda m, t: xpx.isin(t(np.array([3, 1])), t(np.array([1, 2])), xp=m),
    "searchsorted": lambda m, t: xpx.searchsorted(t(np.array([1.0, 2, 3])), t(np.array([2.5, 0.0])), xp=m),
    "angle": lambda m, t: xpx.angle(t(A + 1j * A[::-1]), xp=m),
    "deg2rad": lambda m, t: xpx.deg2rad(t(A), xp=m),
    "apply_where": lambda m, t: xpx.apply_where(t(A) > 0, t(A), lambda v: v ** 0.5, fill_value=-1.0, xp=m),
    "at.set": lambda m, t: xpx.at(t(A), (slice(None), 1)).set(7.0, copy=True, xp=m),
    "at.add(mask)": lambda m, t: xpx.at(t(A), t(A) > 0).add(1.0, copy=True, xp=m),
    "at.multiply": lambda m, t: xpx.at(t(A), (1, slice(None, 2))).multiply(3.0, copy=True, xp=m),
    "unravel_index": lambda m, t: xpx.unravel_index(t(np.array([5, 7])), (3, 4), xp=m),
    "tril_indices": lambda m, t: xpx.tril_indices(4, xp=m),
    "partition(kth)": lambda m, t: xpx.partition(t(A[0]), 2, xp=m)[2],
    "argpartition(kth)": lambda m, t: t(A[0])[xpx.argpartition(t(A[0]), 2, xp=m)[2]],
}


def _np(v):
    if isinstance(v, tuple):
        return tuple(_np(e) for e in v)
    if isinstance(v, xp.Array):
        return np.asarray(v.to_device("cpu"))
    return np.asarray(v)


@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_array_api_extra(name, device):
    f = CASES[name]
    ref = _np(f(np, np.asarray))
    with xp.default_device(device):  # functions that create arrays (tril_indices) use the default
        got = f(xp, lambda a: xp.asarray(a, device=device))
    for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
        if isinstance(g, xp.Array):
            assert g.device == device
        np.testing.assert_allclose(_np(g), r, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_array_api_extra_finds_our_namespace():
    """Without ``xp=``, array-api-extra discovers the namespace through array-api-compat."""
    x = xp.asarray(A)
    np.testing.assert_allclose(_np(xpx.cov(x)), np.cov(A), rtol=1e-12)


@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_array_api_compat_helpers(device):
    x = xp.asarray(A, device=device)
    assert compat.array_namespace(x) is xp
    assert compat.array_namespace(x, x[0]) is xp
    assert compat.is_array_api_obj(x) and not compat.is_numpy_array(x)
    assert compat.device(x) == x.device == device
    assert compat.size(x) == A.size
    y = compat.to_device(x, "cpu")
    assert y.device == "cpu"
    np.testing.assert_array_equal(np.asarray(y), A)
    assert compat.is_writeable_array(x)
    assert compat.is_lazy_array(x) is False


@pytest.mark.parametrize("dtype", ["float32", "int16", "complex128", "bool"])
def test_dlpack_with_numpy(dtype):
    h = (RNG.standard_normal((3, 4)) * 10).astype(dtype)
    x = xp.from_dlpack(h)                       # NumPy -> us (a view on the cpu device)
    np.testing.assert_array_equal(np.asarray(x), h)
    back = np.from_dlpack(x[:, ::2])             # us -> NumPy, strided
    np.testing.assert_array_equal(back, h[:, ::2])
    on_sim = xp.from_dlpack(h, device="sim")    # NumPy -> sim copies over the link
    assert on_sim.device == "sim"
    np.testing.assert_array_equal(np.from_dlpack(on_sim, device="cpu"), h)


def test_read_only_producers_are_copied_not_shared(tmp_path):
    """A read-only producer (a read-only NumPy array, bytes, a read-only memmap) is copied on
    import (``copy=False``: BufferError): our arrays are writable, and writing through shared
    read-only memory changed immutable bytes or crashed the process on a read-only mapping."""
    ro = np.arange(3.0)
    ro.flags.writeable = False
    a = xp.from_dlpack(ro)
    a[0] = 100.0
    np.testing.assert_array_equal(ro, [0.0, 1.0, 2.0])
    with pytest.raises(BufferError, match="read-only"):
        xp.from_dlpack(ro, copy=False)
    raw = bytes(24)
    b = xp.from_dlpack(np.frombuffer(raw, np.float64))
    b[1] = 5.0
    assert raw == bytes(24)
    path = tmp_path / "m.bin"
    np.arange(4.0).tofile(path)
    m = xp.from_dlpack(np.memmap(path, np.float64, mode="r"))
    m[0] = 7.0  # a write into a read-only mapping was a segmentation fault
    np.testing.assert_array_equal(np.fromfile(path), np.arange(4.0))
    writable = np.zeros(2)
    xp.from_dlpack(writable, copy=False)[0] = 1.0  # writable producers are still shared
    assert writable[0] == 1.0


def test_dlpack_export_computes_pending_readers_first():
    """A consumer may write the memory a cpu array shares: expressions created before the export
    are computed first, so the write does not reach them (it did: z showed 1001)."""
    y = xp.asarray([0.0, 1.0, 2.0], copy=True)
    z = y + 1
    s = xp.sum(y)
    shared = np.from_dlpack(y)
    shared[0] = 1000.0
    np.testing.assert_array_equal(np.asarray(z), [1.0, 2.0, 3.0])
    assert float(s) == 3.0
    assert float(y[0]) == 1000.0  # the memory is shared


def test_dlpack_stream_and_array_copy_rules():
    """The standard: on CPU only stream=None; ``np.asarray(x, dtype=other, copy=False)`` must
    refuse (a dtype change is a copy), as NumPy's own arrays do."""
    x = xp.asarray([1.0, 2.0])
    for stream in (1, -1, 5):
        with pytest.raises(ValueError, match="stream=None"):
            x.__dlpack__(stream=stream)
    with pytest.raises(ValueError, match="needs a copy"):
        np.asarray(x, dtype=np.float32, copy=False)
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64, copy=False), [1.0, 2.0])


@pytest.mark.parametrize("name", ["cpu", "sim"])
def test_devices_copy_and_pickle_as_themselves(name):
    """Configs and estimator parameters naming a device are deep-copied and pickled: the device
    is one per process (deepcopy raised a ctypes pickling error)."""
    import copy
    import pickle
    dev = xp.asarray([1.0], device=name).device
    assert copy.copy(dev) is dev and copy.deepcopy({"device": dev})["device"] is dev
    assert pickle.loads(pickle.dumps(dev)) is dev


@pytest.mark.parametrize("name", ["cpu", "sim"])
def test_device_by_name_is_what_its_repr_shows(name):
    """``Device('sim')`` (what ``repr`` prints) is the device itself; it raised "Device() takes
    no arguments". Bad calls name the constructor."""
    dev = xp.asarray([1.0], device=name).device
    assert xp.Device(name) is dev and eval(repr(dev), {"Device": xp.Device}) is dev
    with pytest.raises(TypeError, match="Device"):
        xp.Device()
    with pytest.raises(ValueError, match="Device: unknown device 'tpu'"):
        xp.Device("tpu")


@pytest.mark.parametrize("share", ["asarray", "from_dlpack"])
def test_imports_of_one_numpy_array_alias_each_other(share):
    """Arrays sharing one NumPy allocation (imported twice, or as two views) are views of one
    buffer: in-place writes between them go through a temporary where they overlap, and writes
    compute the pending readers of the other first (each import was a buffer of its own:
    ``xa[...] = xb[::-1]`` gave [5, 4, 3, 3, 4, 5])."""
    wrap = (lambda h: xp.asarray(h, copy=False)) if share == "asarray" else xp.from_dlpack
    n = np.arange(6.0)
    xa, xb = wrap(n), wrap(n)
    xa[...] = xb[::-1]
    np.testing.assert_array_equal(np.asarray(xa), [5.0, 4, 3, 2, 1, 0])
    n = np.arange(6.0)
    xa, xb = wrap(n), wrap(n)
    xa[1:] += xb[:-1]
    np.testing.assert_array_equal(np.asarray(xa), [0.0, 1, 3, 5, 7, 9])
    n = np.array([1.0, 2.0, 3.0])
    xa, xb = wrap(n), wrap(n)
    q = xa + 1
    xb += 5
    np.testing.assert_array_equal(np.asarray(q), [2.0, 3.0, 4.0])
    n = np.arange(8.0)
    head, evens = wrap(n[1:]), wrap(n[::2])
    later = evens * 1
    head[...] = head[::-1]
    np.testing.assert_array_equal(np.asarray(later), [0.0, 2, 4, 6])
    np.testing.assert_array_equal(n, [0.0, 7, 6, 5, 4, 3, 2, 1])


def test_our_exported_memory_coming_back_is_the_same_buffer():
    """A cpu array exported through DLPack and imported back (``xp.from_dlpack(np.from_dlpack(x))``,
    ``asarray(..., copy=False)``: what SciPy and scikit-learn helpers do) is a view of the same
    buffer: overlapping in-place writes between the two go through a temporary (they gave
    [0, 1, 3, 6, 10, 15])."""
    x = xp.arange(6.0)
    back = xp.from_dlpack(np.from_dlpack(x))
    back[1:] += x[:-1]
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1, 3, 5, 7, 9])
    x = xp.arange(6.0)
    x[...] = xp.asarray(np.from_dlpack(x)[::-1], copy=False)
    np.testing.assert_array_equal(np.asarray(x), [5.0, 4, 3, 2, 1, 0])


def test_read_only_numpy_memory_is_imported_read_only(tmp_path):
    """``asarray(copy=False)`` / ``from_dlpack`` of read-only memory give read-only arrays: writes
    raise as NumPy's do (a write through a read-only memmap crashed the process, and one through
    ``np.frombuffer(bytes)`` changed an immutable bytes object); reading works."""
    path = tmp_path / "m.bin"
    np.arange(4.0).tofile(path)
    m = np.memmap(path, dtype=np.float64, mode="r")
    frozen = bytes(32)
    for h in (m, np.frombuffer(frozen, np.float64)):
        x = xp.asarray(h, copy=False)
        for write in (lambda: x.__setitem__(0, 5.0), lambda: x.__iadd__(1.0), lambda: x.__setitem__(x > -1, 0.0)):
            with pytest.raises(ValueError, match="read-only"):
                write()
        np.testing.assert_array_equal(np.asarray(x + 1), np.asarray(h) + 1)
    assert frozen == bytes(32)
    with pytest.raises(BufferError, match="copy=False"):
        xp.broadcast_to(xp.asarray([1.0, 2.0]), (2, 2)).__dlpack__(max_version=(1, 0), copy=False)


def test_aliasing_is_seen_through_every_way_memory_is_shared():
    """Memory that left through ``np.asarray`` (not only DLPack) and comes back, a view at an
    offset that is not a whole number of elements from its allocation, and one allocation
    imported as two dtypes: in-place writes between them go through a temporary (each gave
    wrong values)."""
    x = xp.arange(6.0)
    x[...] = xp.asarray(np.asarray(x), copy=False)[::-1]
    np.testing.assert_array_equal(np.asarray(x), [5.0, 4, 3, 2, 1, 0])
    raw = np.zeros(81, np.uint8)
    h = raw[1:].view(np.float64)
    h[:] = np.arange(10.0)
    a, b = xp.asarray(h, copy=False), xp.asarray(h[::-1], copy=False)
    a[...] = b
    np.testing.assert_array_equal(np.asarray(a), np.arange(10.0)[::-1])
    h = np.arange(20000, dtype=np.float64)
    want = h.view(np.int32)[:20000].astype(np.float64)
    xf, xi = xp.asarray(h, copy=False), xp.asarray(h.view(np.int32), copy=False)
    xf[...] = xp.astype(xi[:20000], xp.float64)
    np.testing.assert_array_equal(np.asarray(xf), want)
