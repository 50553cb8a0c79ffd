"""The Array object: attributes, conversions, DLPack, NumPy interop, namespace inspection."""
import operator

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp


def test_array_namespace_via_array_api_compat():
    array_api_compat = pytest.importorskip("array_api_compat")
    x = xp.asarray([1.0, 2.0])
    assert array_api_compat.array_namespace(x) is xp
    assert array_api_compat.is_array_api_obj(x)
    assert array_api_compat.device(x) == x.device
    assert array_api_compat.size(x) == 2
    assert x.__array_namespace__(api_version="2025.12") is xp
    with pytest.raises(ValueError):
        x.__array_namespace__(api_version="1999.01")


def test_attributes():
    h = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    x = xp.asarray(h)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and x.dtype == xp.int16
    assert x.device == xp.__array_namespace_info__().default_device()
    np.testing.assert_array_equal(np.asarray(x.mT), np.swapaxes(h, -1, -2))
    np.testing.assert_array_equal(np.asarray(xp.asarray(h[0]).T), h[0].T)
    with pytest.raises(ValueError):
        x.T


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "uint64", "float32", "float64",
                                   "complex64", "complex128"])
def test_numpy_round_trip_exact(dtype):
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((5, 7)) * 100).astype(dtype)
    x = xp.asarray(h)
    np.testing.assert_array_equal(np.asarray(x), h)
    np.testing.assert_array_equal(np.asarray(x[::-2, 1::3]), h[::-2, 1::3])


@pytest.mark.parametrize("dtype", ["bool", "int32", "uint8", "float32", "float64", "complex128"])
def test_dlpack_round_trips(dtype):
    """NumPy <-> the cpu device (whatever the default device is)."""
    h = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    x = xp.asarray(h, device="cpu")
    back = np.from_dlpack(x)
    np.testing.assert_array_equal(back, h)
    assert x.__dlpack_device__() == (1, 0)
    y = xp.from_dlpack(h)          # NumPy -> egpu_array shares memory on the cpu device
    assert y.device == "cpu"       # (the producer's device, whatever the default device is)
    np.testing.assert_array_equal(np.asarray(y), h)
    z = xp.from_dlpack(x, copy=True)
    np.testing.assert_array_equal(np.asarray(z), h)
    cap = x.__dlpack__(max_version=(1, 0))
    assert type(cap).__name__ == "PyCapsule"


def test_from_dlpack_shares_memory_on_cpu():
    h = np.zeros(4)
    y = xp.from_dlpack(h)
    h[1] = 5
    assert float(y[1]) == 5.0


def test_format_specs():
    """f-strings with a format spec work on 0-d arrays as on their Python scalars (TypeError
    before); other arrays take only the empty spec."""
    assert f"{xp.asarray(3.14159):.2f}|{xp.asarray(7, dtype=xp.int8):>3d}|{xp.asarray(1 + 2j):.1f}" == "3.14|  7|1.0+2.0j"
    assert f"{xp.asarray([1, 2])}" == str(xp.asarray([1, 2]))
    with pytest.raises(TypeError, match="__format__: only 0-dimensional"):
        f"{xp.asarray([1.0]):.2f}"


def test_scalar_conversions():
    assert bool(xp.asarray(True)) is True
    assert int(xp.asarray(7, dtype=xp.uint8)) == 7
    assert float(xp.asarray(2.5)) == 2.5
    assert complex(xp.asarray(1 + 2j)) == 1 + 2j
    assert [10, 20, 30][xp.asarray(1)] == 20          # __index__
    with pytest.raises(TypeError):
        float(xp.asarray([1.0, 2.0]))
    with pytest.raises(TypeError):
        xp.asarray(1.5).__index__()
    with pytest.raises(ValueError):
        int(xp.asarray(float("nan")))


@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_scalar_conversions_of_every_dtype(device):
    """float/int/bool/complex of 0-d arrays (read in place on host-memory devices, copied out on
    the others): the value NumPy's .item() gives, edge values, signed zeros, NaN, strided views."""
    import math
    values = {"bool": [True, False], "int8": [-128, 127], "uint8": [255], "int16": [-32768], "uint16": [65535],
              "int32": [-2**31], "uint32": [2**32 - 1], "int64": [-2**63, 2**63 - 1], "uint64": [2**64 - 1],
              "float32": [1.1, -0.0, float("inf"), float("nan")], "float64": [1e-310, -0.0, float("nan")],
              "complex64": [1.1 - 2.2j], "complex128": [complex(-0.0, float("inf"))]}
    convert = {"b": bool, "i": int, "u": int, "f": float, "c": complex}
    for dtype, vs in values.items():
        for v in vs:
            a = np.asarray([0, v, 0], dtype=dtype)
            got = convert[a.dtype.kind](xp.asarray(a, device=device)[1])
            want = a[1].item()
            assert type(got) is type(want) and repr(got) == repr(want), (dtype, v, got, want)
            if isinstance(want, float) and want == 0:
                assert math.copysign(1, got) == math.copysign(1, want)


def test_len_iter_repr():
    x = xp.asarray([[1, 2], [3, 4]])
    assert len(x) == 2
    rows = [np.asarray(r).tolist() for r in x]
    assert rows == [[1, 2], [3, 4]]
    r = repr(x)
    assert f"device='{x.device.name}'" in r and "int64" in r and "[3, 4]" in r


@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("shape", [(5,), (2000,), (1001,), (7, 200), (200, 7), (10, 10, 11), (0, 2000), (),
                                   (7, 7, 7, 7)])
def test_repr_prints_as_numpy_and_copies_only_what_it_shows(device, shape):
    """repr is NumPy's printing of the values (summarized past the print threshold, the format
    chosen from the elements shown: an elided 1e300 changes nothing); of a large array only the
    edges shown cross the link (a 1000 x 1000 array moved 8 MB to print 36 numbers)."""
    rng = np.random.default_rng(1)
    h = rng.standard_normal(shape) * 10.0 ** rng.integers(-5, 5, shape)
    if h.size > 3:
        h.flat[h.size // 2] = 1e300
    x = xp.asarray(h, device=device)
    with xp.profile() as prof:
        r = repr(x)
    assert r == f"Array({np.array2string(h, separator=', ', prefix='Array(')}, dtype=float64, device={device!r})"
    assert prof.bytes_from_device <= (h.nbytes if h.size <= 1000 else 8 * 7 ** h.ndim)
    with np.printoptions(threshold=5, edgeitems=1):  # (the print options in effect are followed)
        assert repr(x).startswith("Array(" + np.array2string(h, separator=", ", prefix="Array("))


@pytest.mark.parametrize("source", ["numpy", "array", "list", "list of 0-d arrays", "scalar"])
def test_asarray_of_complex_values_to_a_real_dtype(source):
    """Complex values asked to become a real dtype are refused by every path of asarray, as
    astype refuses them (NumPy arrays and Arrays dropped the imaginary part; a list of 0-d
    arrays raised NumPy's own ValueError); to bool they are ``!= 0``."""
    make = {"numpy": lambda: np.array([1 + 2j, 0j]), "array": lambda: xp.asarray(np.array([1 + 2j, 0j])),
            "list": lambda: [1 + 2j, 0j], "list of 0-d arrays": lambda: [xp.asarray(1 + 2j), xp.asarray(0j)],
            "scalar": lambda: 1 + 2j}[source]
    for dtype in (xp.float64, xp.float32, xp.int32):
        with pytest.raises(TypeError, match="asarray: complex values cannot become"):
            xp.asarray(make(), dtype=dtype)
    expected = [True, False] if source != "scalar" else True
    np.testing.assert_array_equal(np.asarray(xp.asarray(make(), dtype=xp.bool)), expected)


def test_asarray_dtypes_and_copy():
    assert xp.asarray(True).dtype == xp.bool
    assert xp.asarray(3).dtype == xp.int64
    assert xp.asarray(3.0).dtype == xp.float64
    assert xp.asarray([1, 2.5]).dtype == xp.float64
    assert xp.asarray(1j).dtype == xp.complex128
    # NumPy scalars that subclass Python's (numpy.float64 is a float): their kind, not complex128
    assert xp.asarray(np.float64(2.0)).dtype == xp.float64 and float(xp.asarray(np.float64(2.0))) == 2.0
    assert xp.asarray([np.float64(1.0), 2]).dtype == xp.float64
    assert xp.asarray(np.complex128(1j)).dtype == xp.complex128
    h = np.arange(3.0)
    shared = xp.asarray(h, copy=False, device="cpu")  # host memory: shared
    h[0] = 9
    assert float(shared[0]) == 9.0
    copied = xp.asarray(h, device="cpu")
    h[0] = 1
    assert float(copied[0]) == 9.0
    with pytest.raises(TypeError):
        xp.asarray(np.array(["a"]))
    with pytest.raises(ValueError):
        xp.asarray([1, 2], copy=False)


def test_to_device_and_unknown_devices():
    x = xp.asarray([1.0])
    assert x.to_device(x.device) is x and x.to_device(x.device.name) is x
    with pytest.raises(ValueError):
        xp.asarray([1.0], device="nosuch")


#: functions of two or more arrays, called with ``a`` on cpu and ``b`` on sim
TWO_DEVICE_CALLS = {
    "add": lambda a, b: xp.add(a, b), "where": lambda a, b: xp.where(a > 0, a, b),
    "concat": lambda a, b: xp.concat([a, b]), "stack": lambda a, b: xp.stack([a, b]),
    "clip": lambda a, b: xp.clip(a, b, None), "matmul": lambda a, b: a @ b,
    "tensordot": lambda a, b: xp.tensordot(a, b, axes=1), "vecdot": lambda a, b: xp.vecdot(a, b),
    "isin": lambda a, b: xp.isin(a, b), "searchsorted": lambda a, b: xp.searchsorted(a[0], b[0]),
    "linalg.solve": lambda a, b: xp.linalg.solve(a, b),
    "linalg.solve (blocked)": lambda a, b: xp.linalg.solve(
        xp.eye(130, device=a.device) * 2, xp.ones((130, 2), device=b.device)),
    "linalg.cross": lambda a, b: xp.linalg.cross(a[:, :3], b[:, :3]),
}


@pytest.mark.parametrize("name", list(TWO_DEVICE_CALLS))
def test_arrays_on_two_devices_are_refused(name):
    """The standard: an operation on arrays of different devices raises (no implicit transfer);
    linalg.solve copied one operand over and put the result on either device."""
    a = xp.asarray(np.eye(3) * 2 + 1, device="cpu")
    b = xp.asarray(np.ones((3, 3)), device="sim")
    with pytest.raises(ValueError, match="different devices"):
        TWO_DEVICE_CALLS[name](a, b)


@pytest.mark.parametrize("make", [
    lambda d: xp.asarray(np.arange(12.0).reshape(3, 4), device=d)[:, ::-2].mT,   # a strided view
    lambda d: xp.asarray(np.array([1 + 2j, -0.0j, complex("nan")], np.complex64), device=d),
    lambda d: xp.asarray(np.array([True, False]), device=d), lambda d: xp.asarray(np.int8(-7), device=d),
    lambda d: xp.zeros((0, 3), dtype=xp.uint16, device=d),
    lambda d: xp.sin(xp.asarray(np.linspace(0, 1, 5, dtype=np.float32), device=d)) + 1,  # pending
], ids=["view", "complex64", "bool", "0-d", "empty", "pending"])
@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_copy_deepcopy_and_pickle(make, device):
    """copy.copy/deepcopy (scikit-learn's clone) make device-side copies, independent of the
    original; pickling brings the values to the host (the profiler lists the copy) and unpickling
    puts them back on the device they came from."""
    import copy
    import pickle
    x = make(device)
    ref = np.asarray(x).copy()
    for dup in (copy.copy(x), copy.deepcopy(x)):
        assert dup is not x and dup.device == x.device and dup.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(dup), ref)
    with xp.profile() as prof:
        data = pickle.dumps(x)
    assert prof.transfers["from_device"][0] == (1 if device == "sim" and ref.size else 0)
    back = pickle.loads(data)
    assert back.device == x.device and back.dtype == x.dtype and back.shape == x.shape
    np.testing.assert_array_equal(np.asarray(back), ref)
    with xp.default_device("cpu"):  # a default_device block says where unpickled arrays go
        assert pickle.loads(data).device == "cpu"


def test_copies_are_independent_and_unknown_devices_unpickle_to_the_default():
    import copy
    from egpu_array._array import _unpickle
    x = xp.asarray([1.0, 2.0])
    dup = copy.deepcopy(x)
    x[0] = 5.0
    np.testing.assert_array_equal(np.asarray(dup), [1.0, 2.0])
    with pytest.warns(RuntimeWarning, match="pickled on nosuch:0, which this process does not have"):
        y = _unpickle(np.arange(3.0), "nosuch:0")
    assert y.device == xp.__array_namespace_info__().default_device()
    np.testing.assert_array_equal(np.asarray(y), np.arange(3.0))


@pytest.mark.parametrize("scalar", [np.float32(2), np.float64(2), np.int64(2), np.int8(2), np.uint16(2), np.bool_(True),
                                    np.complex64(2)], ids=lambda s: type(s).__name__)
def test_numpy_scalars_are_python_scalars_in_operators(scalar):
    """A NumPy scalar (``g`` from ``np.unique(y)``) combines as the Python scalar of its value,
    on either side of every operator and in the functions; ``x == np.float32(2)`` returned a
    plain False (Python's identity fallback) and ``x * np.float32(2)`` a NumPy array."""
    v = scalar.item()
    kind = type(v)
    a = np.array([1, 2, 3], dtype={bool: np.bool_, int: np.int32, float: np.float32, complex: np.complex64}[kind])
    x = xp.asarray(a)
    ops = ["__eq__", "__ne__"] + (["__and__", "__or__"] if kind is bool else ["__add__", "__mul__", "__sub__"])
    for name in ops:
        for got, ref in ((getattr(x, name)(scalar), getattr(x, name)(v)),
                         (getattr(operator, name)(scalar, x), getattr(operator, name)(v, x))):
            assert isinstance(got, xp.Array) and got.dtype == ref.dtype, name
            np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    np.testing.assert_array_equal(np.asarray(xp.equal(x, scalar)), np.asarray(x == v))
    y = (operator.ior if kind is bool else operator.iadd)(xp.asarray(a), scalar)
    assert isinstance(y, xp.Array)
    np.testing.assert_array_equal(np.asarray(y), np.asarray((operator.or_ if kind is bool else operator.add)(x, v)))


@pytest.mark.parametrize("call", [lambda x, n: x == n, lambda x, n: n == x, lambda x, n: x + n, lambda x, n: n + x,
                                  lambda x, n: x @ n, lambda x, n: n @ x, lambda x, n: xp.add(x, n),
                                  lambda x, n: x * np.float64(1) - n])
def test_numpy_arrays_are_not_converted_implicitly(call):
    """NumPy arrays as operands are a TypeError naming the operation, from either side (they were
    converted through __array__ and gave NumPy results, or False for ==)."""
    with pytest.raises(TypeError, match="NumPy array is not converted implicitly|expected an Array"):
        call(xp.asarray([1.0, 2.0, 3.0]), np.ones(3))


@pytest.mark.parametrize("name", ["sim:-1", "sim:1_0", "sim: 1", "cpu:-7", "cpu:3", "sim:x"])
def test_malformed_device_names_are_refused(name):
    """Device indices are plain decimal numbers (cpu has only 0): ``cpu:-7`` was plain cpu and
    ``sim:1_0`` was sim:10."""
    with pytest.raises(ValueError, match="bad device name"):
        xp.asarray([1.0], device=name)


def test_further_sim_devices_are_listed_once_made():
    """``sim:N`` devices (each an independent emulated eGPU) are listed by devices() once used, so
    code that checks ``x.device in devices()`` accepts them (selftest --device sim:1 failed)."""
    x = xp.asarray([1.0], device="sim:3")
    devices = xp.__array_namespace_info__().devices()
    assert x.device in devices and devices.count(x.device) == 1
    assert xp.asarray([1.0], device="cpu:0").device == "cpu"


def test_namespace_info():
    info = xp.__array_namespace_info__()
    assert set(info.capabilities()) >= {"boolean indexing", "data-dependent shapes"}
    assert info.default_dtypes()["real floating"] == xp.float64
    assert info.dtypes()["int8"] == xp.int8
    assert set(info.dtypes(kind="real floating")) == {"float32", "float64"}
    assert any(d == "cpu" for d in info.devices())


def test_errors_name_the_function():
    with pytest.raises(TypeError, match="sin"):
        xp.sin(xp.asarray([1, 2]))
    with pytest.raises(ValueError, match="add"):
        xp.add(xp.asarray([1.0, 2.0]), xp.asarray([1.0, 2.0, 3.0]))
    assert issubclass(xp.DeviceOutOfMemoryError, xp.DeviceError)
    assert issubclass(xp.DeviceOutOfMemoryError, MemoryError)


@pytest.mark.parametrize("make", [lambda v: v * 2, lambda v: v @ xp.asarray(np.eye(2) * 2)],
                         ids=["elementwise", "matmul"])
def test_value_written_into_its_own_source_keeps_its_values(make):
    """``m = x[v] op ...; x[v] = m``: m is computed straight into x, yet stays m: later reads of m,
    and later writes to x, must not change it."""
    base = np.arange(16.0).reshape(4, 4)
    x = xp.asarray(base)
    m = make(x[2:, :2])
    x[2:, :2] = m
    expected = base[2:, :2] * 2
    np.testing.assert_array_equal(np.asarray(x)[2:, :2], expected)
    x[2:, :2] = 0
    np.testing.assert_array_equal(np.asarray(m), expected)
    np.testing.assert_array_equal(np.asarray(x)[2:, :2], 0)


def test_writes_of_products_and_gathers_of_the_target_itself():
    """``x[...] = f(x)`` where f reads other elements of x than the one written (a product, a
    gather) must read x as it was before the write."""
    base = np.arange(9.0).reshape(3, 3)
    x = xp.asarray(base)
    x[...] = x @ x
    np.testing.assert_array_equal(np.asarray(x), base @ base)
    rows = np.array([2, 0, 1])
    x = xp.asarray(base)
    x[1:, :] = xp.take_along_axis(x[1:, :], xp.asarray(np.array([[1], [0]])), axis=-2)
    np.testing.assert_array_equal(np.asarray(x), base[[0, 2, 1]])
    x = xp.asarray(base)
    y = xp.take_along_axis(x, xp.asarray(rows[:, None]), axis=0)
    x[...] = 0
    np.testing.assert_array_equal(np.asarray(y), base[rows])


@pytest.mark.parametrize("rows, cols", [((slice(128, None), slice(None, 128)), (slice(None, 128), slice(128, None))),
                                        ((slice(None, -1), slice(None, 100)), (slice(None, 100), slice(None, -1)))],
                         ids=["disjoint blocks", "overlapping"])
def test_product_written_into_its_own_matrix(rows, cols):
    """``A[e:, e:] = A[e:, e:] - A[e:, :k] @ A[:k, e:]`` (a blocked factorization's update) is one
    GEMM when the operands are other blocks of A; overlapping operands go through a temporary."""
    base = np.random.default_rng(0).standard_normal((300, 300))
    start = 128 if rows[0].start == 128 else 1
    x = xp.asarray(base)
    xp.synchronize(x)
    with xp.profile() as prof:
        x[start:, start:] = x[start:, start:] - x[rows] @ x[cols]
        xp.synchronize(x)
    ref = base.copy()
    ref[start:, start:] -= base[rows] @ base[cols]
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-12, atol=1e-12)
    assert prof.launches == (1 if start == 128 else 2)


_N = 9


def _axis_key(draw, length):
    """A slice of `length` elements of an axis of _N (step +-1 or +-2)."""
    step = draw(st.sampled_from([1, 2, -1, -2]))
    span = (length - 1) * abs(step) + 1
    start = draw(st.integers(0, _N - span))
    if step > 0:
        return slice(start, start + span, step)
    return slice(start + span - 1, (start - 1) if start > 0 else None, step)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_writes_from_other_views_of_the_same_buffer(data):
    """x[t] = f(x[s]) for random views t, s of one buffer (overlapping or not, transposed, negative
    steps): elementwise values, and C - A @ A products, against NumPy's copy semantics."""
    kind = data.draw(st.sampled_from(["elementwise", "matmul"]))
    h = data.draw(st.integers(1, 4))
    w = h if kind == "matmul" else data.draw(st.integers(1, 4))
    kt = (_axis_key(data.draw, h), _axis_key(data.draw, w))
    flip = data.draw(st.booleans())
    ks = (_axis_key(data.draw, w if flip else h), _axis_key(data.draw, h if flip else w))
    base = np.arange(_N * _N, dtype=np.float64).reshape(_N, _N)
    ref = base.copy()
    x = xp.asarray(base)
    s_ref = ref[ks].T if flip else ref[ks]
    s_x = x[ks].T if flip else x[ks]
    if kind == "elementwise":
        ref[kt] = s_ref * 2 + 1
        x[kt] = s_x * 2 + 1
    else:
        ref[kt] = ref[kt] - s_ref @ s_ref
        x[kt] = x[kt] - s_x @ s_x
    np.testing.assert_array_equal(np.asarray(x), ref)
