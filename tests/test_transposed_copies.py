"""Transposed copies (``asarray(x.T, copy=True)``, ``y[...] = x.T``) against NumPy, bit for bit:
every element width (1, 2, 4, 8, 16 bytes), 0- and 1-sized dimensions, odd extents, sources and
destinations that are views at offsets or walked backwards, below and above the sizes that take
the tiled (register-transposed) and the streamed (non-temporal stores) kernels."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from test_copying import _streaming_from  # (tests/ is on sys.path: pytest imports its conftest from there)

FAST = settings(max_examples=25, deadline=None, derandomize=True)
#: one dtype per element width (and bool, a 1-byte kind of its own)
WIDTHS = ["bool", "int8", "uint16", "float32", "int64", "float64", "complex128"]


def bits(a) -> np.ndarray:
    """The bytes of ``a`` in C order (so -0.0, NaN payloads and the like must match exactly)."""
    a = np.ascontiguousarray(np.asarray(a))
    return a.reshape(-1).view(np.uint8) if a.size else np.zeros(0, np.uint8)


def same(got, expected) -> None:
    expected = np.asarray(expected)
    got = np.asarray(got)
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, got.dtype, expected.shape)
    np.testing.assert_array_equal(bits(got), bits(expected))


def filled(shape, dtype, seed=0) -> np.ndarray:
    """Distinct values of ``dtype`` (special float values mixed in) so a misplaced element shows."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool":
        return rng.random(shape) < 0.5
    kind = np.dtype(dtype).kind
    if kind in "iu":
        return rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
    a = rng.standard_normal(n) * 1e3
    if n:
        a[:: 7] = np.array([-0.0, np.inf, -np.inf, np.nan, 5e-324, 0.0, -1.0])[np.arange(len(a[:: 7])) % 7]
    out = np.empty(n, dtype=dtype)
    if kind == "c":
        out.real, out.imag = a, a[::-1]
    else:
        out[...] = a
    return out.reshape(shape)


side = st.one_of(st.sampled_from([0, 1, 2, 15, 16, 17, 31, 32, 33, 64, 65]), st.integers(0, 90))


@FAST
@given(st.data())
def test_transposed_views_copy_bit_for_bit(data):
    """A permuted view of a sliced array (start offsets, steps of 1, -1 or 2) copied into a new
    array and assigned into a view of a bigger array (at an offset, maybe walked backwards)."""
    dtype = data.draw(st.sampled_from(WIDTHS))
    nd = data.draw(st.integers(2, 3))
    shape = tuple(data.draw(side) for _ in range(nd - 2)) + (data.draw(side), data.draw(side))
    shape = shape if np.prod(shape) <= 40_000 else shape[-2:]
    nd = len(shape)
    starts = [data.draw(st.integers(0, 3)) for _ in range(nd)]
    steps = [data.draw(st.sampled_from([1, 1, 1, -1, 2])) for _ in range(nd)]
    big = filled(tuple(s * abs(k) + 3 + o for s, k, o in zip(shape, steps, starts)), dtype)
    key = tuple(slice(o, o + s * k, k) if k > 0 else slice(o + s - 1 if s else o, (o - 1) if o else None, -1)
                for s, k, o in zip(shape, steps, starts))
    a = big[key]
    perm = tuple(data.draw(st.permutations(range(nd))))
    stream = data.draw(st.booleans())
    with _streaming_from(0) if stream else contextlib.nullcontext():
        x = xp.permute_dims(xp.asarray(big)[key], perm)
        expected = np.transpose(a, perm)
        same(xp.asarray(x, copy=True), expected)
        pad = data.draw(st.integers(0, 5))
        flip = data.draw(st.booleans())
        out = filled(expected.shape[:-1] + (expected.shape[-1] + pad,), dtype, seed=1)
        y = xp.asarray(out)
        dst = (Ellipsis, slice(pad, None) if not flip else slice(None, pad - 1 if pad else None, -1))
        y[dst] = x
        out[dst] = expected
        same(y, out)


@pytest.mark.parametrize("dtype", WIDTHS)
def test_edge_sized_transposes_every_width(dtype):
    """Empty and single-element dimensions, one-row / one-column transposes and odd extents
    around the block edges, default path and streamed path."""
    for shape in [(0, 0), (0, 70), (70, 0), (1, 1), (1, 300), (300, 1), (2, 0, 40), (3, 1, 129),
                  (33, 65), (129, 31), (97, 2, 67)]:
        a = filled(shape, dtype)
        perm = tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)
        for ctx in (contextlib.nullcontext(), _streaming_from(0)):
            with ctx:
                same(xp.asarray(xp.permute_dims(xp.asarray(a), perm), copy=True), np.transpose(a, perm))
                y = xp.asarray(np.zeros(np.transpose(a, perm).shape, dtype=a.dtype))
                y[...] = xp.permute_dims(xp.asarray(a), perm)
                same(y, np.transpose(a, perm))


def test_large_transposes_default_thresholds():
    """Sizes past the streamed threshold (8 MiB): aligned float32 (streamed), rows off cache lines
    (4095: the grouped walk), 1-byte elements, each also assigned into an existing array."""
    for shape, dtype in [((2048, 1024), "float32"), ((1023, 2049), "float32"), ((2048, 4096), "uint8"),
                         ((1024, 1024), "complex128")]:
        a = filled(shape, dtype)
        x = xp.asarray(a)
        same(xp.asarray(x.T, copy=True), a.T)
        y = xp.asarray(np.zeros(a.T.shape, dtype=a.dtype))
        y[...] = x.T
        same(y, a.T)
        same(xp.asarray(x[::-1].T, copy=True), a[::-1].T)


def test_random_bits_of_every_width_survive():
    """Arbitrary bit patterns (NaN payloads, signalling NaNs) are moved, not converted."""
    raw = np.random.default_rng(3).integers(0, 256, size=(96, 1040), dtype=np.uint8)  # rows of 96: whole lines
    for dtype in ["float32", "float64", "complex64", "complex128", "int16"]:
        a = raw.view(dtype)
        for ctx in (contextlib.nullcontext(), _streaming_from(0)):
            with ctx:
                same(xp.asarray(xp.asarray(a).T, copy=True), a.T)
