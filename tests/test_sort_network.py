"""Short rows of keys of at most 4 bytes: bitonic networks (kernels/sort_network.py) against
NumPy's stable order: every network width and the lengths around them, NaN, -0.0, +-inf, ties
(the position breaks them: stable), both directions, the dtypes' extremes, argsort with sort."""
import numpy as np
import pytest

import egpu_array as xp
from egpu_array._sorting import network_applies
from egpu_array.kernels.sort_network import NETWORK_SIZES, network_size

from test_radix_sort import _desc_argsort


def _check(h, descending):
    x = xp.asarray(h)
    ref = _desc_argsort(h, -1) if descending else np.argsort(h, axis=-1, kind="stable")
    np.testing.assert_array_equal(np.asarray(xp.argsort(x, axis=-1, descending=descending)), ref)
    got = np.asarray(xp.sort(x, axis=-1, descending=descending))
    want = np.take_along_axis(h, ref, axis=-1)
    np.testing.assert_array_equal(got, want)
    if h.dtype.kind == "f":  # -0.0 and NaN keep their place among equals: the signs match too
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def _phases(fn):
    from egpu_array.kernels import cache
    seen = []
    cache.recorders.append(lambda dev, spec: seen.append(getattr(spec, "phase", None)))
    try:
        fn()
    finally:
        cache.recorders.pop()
    return set(seen)


@pytest.mark.parametrize("descending", [False, True])
def test_every_network_width(descending):
    """float32 rows of every length around each width (a width's last lane; one more: the next)."""
    rng = np.random.default_rng(1)
    specials = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1.0, -1.0], np.float32)
    widths = NETWORK_SIZES
    lengths = sorted({1, 2, 3} | {m for n in widths for m in (n - 1, n, n + 1)} - {widths[-1] + 1})
    for length in lengths:
        h = rng.standard_normal((5, length)).astype(np.float32)
        h[1] = rng.choice(specials, length)              # ties, NaNs, zeros of both signs
        h[2] = np.round(h[2])                             # many ties
        h[3] = -np.arange(length, dtype=np.float32)      # reversed
        _check(h, descending)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "float32",
                                   "int64", "uint64", "float64"])
def test_network_dtypes(dtype):
    rng = np.random.default_rng(2)
    for length in (3, 37, 128):
        if dtype == "bool":
            h = rng.integers(0, 2, (6, length)).astype(bool)
        elif dtype.startswith("float"):
            h = rng.standard_normal((6, length)).astype(dtype)
            h[0, :3] = [np.finfo(dtype).max, np.nan, -np.nan]
        else:
            info = np.iinfo(dtype)
            h = rng.integers(info.min, info.max, (6, length), endpoint=True, dtype=dtype)
            h[0, :3] = [info.max, info.min, info.max]
            h[1] = h[1, 0]
        for descending in (False, True):
            _check(h, descending)


def test_networks_are_the_path_for_short_narrow_rows():
    """Rows of up to the largest width (argsort of 8-byte keys: WIDE_MAX) take a network of the
    next power of two (on host targets); longer rows and complex values do not."""
    from egpu_array.kernels.sort_network import WIDE_MAX
    x = xp.asarray(np.random.default_rng(3).standard_normal((40, 37)).astype(np.float32))
    if not network_applies(x.dtype, 37, x.device, False):
        pytest.skip("the default device's target has no sorting networks")
    assert network_size(x.dtype, 37, True) == 64 and network_size(x.dtype, NETWORK_SIZES[-1] + 1, True) is None
    assert network_size(x.dtype, NETWORK_SIZES[-1], False) == NETWORK_SIZES[-1]
    assert network_size(x.dtype, NETWORK_SIZES[-1] + 1, False) is None
    assert "net64" in _phases(lambda: np.asarray(xp.sort(x)))
    assert "net64" in _phases(lambda: np.asarray(xp.argsort(xp.astype(x, xp.float64))))
    wide = xp.asarray(np.random.default_rng(4).standard_normal((3, WIDE_MAX + 1)))
    assert not any(p and p.startswith("net") for p in _phases(lambda: np.asarray(xp.argsort(wide))))
    assert f"net{2 * WIDE_MAX}" in _phases(lambda: np.asarray(xp.sort(wide)))   # keys alone: wider
    assert network_size(xp.float64, WIDE_MAX + 1, True) is None and network_size(xp.complex64, 8, False) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sort_restores_zeros_and_nans(dtype):
    """sort without indices sorts the keys alone and turns them back into values; the row's own
    zeros (both signs) and NaNs (sign and payload) come back in their order."""
    rng = np.random.default_rng(5)
    payload = np.array([0x7FF8000000000001, 0xFFF8000000000002, 0x7FF0000000000003], np.uint64).view(np.float64) \
        if dtype == "float64" else np.array([0x7FC00001, 0xFFC00002, 0x7F800003], np.uint32).view(np.float32)
    for length in (5, 100, 300, 1000):
        h = rng.standard_normal((6, length)).astype(dtype)
        h[0, rng.integers(0, length, 4)] = [-0.0, 0.0, -0.0, 0.0]
        h[1] = np.where(rng.random(length) < 0.5, -0.0, 0.0)          # zeros only
        h[2, rng.integers(0, length, 3)] = payload                      # NaNs with payloads
        h[3] = payload[rng.integers(0, 3, length)]                      # NaNs only
        for descending in (False, True):
            ref = _desc_argsort(h, -1) if descending else np.argsort(h, axis=-1, kind="stable")
            got = np.asarray(xp.sort(xp.asarray(h), axis=-1, descending=descending))
            bits = f"u{h.itemsize}"
            np.testing.assert_array_equal(got.view(bits), np.take_along_axis(h, ref, -1).view(bits))
