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


def _sliced(data) -> tuple:
    """(dtype, big, key): a filled array of any width and a key slicing a 2-3-D view of it out
    (start offsets, steps of 1, -1 or 2), shapes drawn around the block edges."""
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
    return dtype, big, key


@FAST
@given(st.data())
def test_transposed_views_copy_bit_for_bit(data):
    """A permuted view of a sliced array (start offsets, steps of 1, -1 or 2) copied into a new
    array and assigned into a view of a bigger array (at an offset, maybe walked backwards)."""
    dtype, big, key = _sliced(data)
    nd = big.ndim
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


# ---- expressions over transposed views: the tiled elementwise kernel (kernels.elementwise_tiles)

@contextlib.contextmanager
def _tiled_from(items=1, side=1, stream_bytes=None):
    """Tile expressions from ``items`` elements and ``side`` per blocked dimension on (small arrays
    take that path too); ``stream_bytes``: stream outputs from that many bytes on."""
    from egpu_array import _schedule_layout
    from egpu_array.kernels import elementwise
    saved = _schedule_layout.TILED_MIN_ITEMS, _schedule_layout.TILED_MIN_SIDE, elementwise.STREAM_MIN_BYTES
    _schedule_layout.TILED_MIN_ITEMS, _schedule_layout.TILED_MIN_SIDE = items, side
    if stream_bytes is not None:
        elementwise.STREAM_MIN_BYTES = stream_bytes
    try:
        yield
    finally:
        _schedule_layout.TILED_MIN_ITEMS, _schedule_layout.TILED_MIN_SIDE, elementwise.STREAM_MIN_BYTES = saved


@contextlib.contextmanager
def _specs():
    """The elementwise specs of the kernels requested meanwhile (a list filled as they come)."""
    from egpu_array.kernels import cache
    seen = []

    def record(device, spec):
        if spec.kind == "elementwise":
            seen.append(spec)
    cache.recorders.append(record)
    try:
        yield seen
    finally:
        cache.recorders.remove(record)


def _apply(x, y, dtype):
    """An expression of ``x`` (and of ``y`` where given) of each kind, in the namespace of the
    arrays (NumPy or ours), exact in both (no rounding differences)."""
    if dtype == "bool":
        return ~x if y is None else (x ^ y) | ~x
    if np.dtype(dtype).kind in "iu":
        return x * 3 + 1 if y is None else x * 3 - y
    if np.dtype(dtype).kind == "c":  # (complex products may round differently: fused multiply-adds)
        return x * 2 - 1 if y is None else (x + 1) - y
    return x * 2 - 1 if y is None else (x + 1) * y


def same_values(got, expected) -> None:
    """Equal values, dtypes and shapes, zeros of the same sign (NaNs equal whatever their sign
    and payload: complex arithmetic sets them as its formulas do)."""
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, got.dtype, expected.shape)
    np.testing.assert_array_equal(got, expected)
    if got.dtype.kind in "fc":
        for g, e in ((got.real, expected.real), (got.imag, expected.imag)):
            np.testing.assert_array_equal(np.signbit(g) | np.isnan(g), np.signbit(e) | np.isnan(e))


CONTEXTS = [contextlib.nullcontext, _tiled_from, lambda: _tiled_from(stream_bytes=0)]


@FAST
@given(st.data())
def test_expressions_over_transposed_views_match_numpy(data):
    """An expression over a permuted view of a sliced array (start offsets, steps of 1, -1 or 2),
    alone and with a C-contiguous array of the result's shape, into a new array and into a
    view of a bigger one; each way tiled or not, streamed or not."""
    dtype, big, key = _sliced(data)
    nd = big.ndim
    perm = tuple(data.draw(st.permutations(range(nd))))
    a = np.transpose(big[key], perm)
    b = filled(a.shape, dtype, seed=2)
    with data.draw(st.sampled_from(CONTEXTS))():
        x = xp.permute_dims(xp.asarray(big)[key], perm)
        with np.errstate(all="ignore"):
            same_values(_apply(x, None, dtype), _apply(a, None, dtype))
            same_values(_apply(x, xp.asarray(b), dtype), _apply(a, b, dtype))
            pad = data.draw(st.integers(0, 5))
            out = filled(a.shape[:-1] + (a.shape[-1] + pad,), dtype, seed=1)
            y = xp.asarray(out)
            y[..., pad:] = _apply(x, None, dtype)
            out[..., pad:] = _apply(a, None, dtype)
        same_values(y, out)


@pytest.mark.parametrize("dtype", WIDTHS)
def test_transposed_expressions_edge_shapes(dtype):
    """Empty and single-element dimensions, one-row / one-column results and odd extents around
    the block edges, two transposed inputs (one leaf twice), tiled, streamed or not."""
    for shape in [(0, 0), (0, 70), (1, 1), (1, 300), (300, 1), (2, 0, 40), (3, 1, 129), (33, 65), (129, 31),
                  (97, 2, 67), (64, 96)]:
        a, b = filled(shape, dtype), filled(shape, dtype, seed=4)
        perm = tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)
        at, bt = np.transpose(a, perm), np.transpose(b, perm)
        for ctx in CONTEXTS:
            with ctx(), np.errstate(all="ignore"):
                x, y = xp.permute_dims(xp.asarray(a), perm), xp.permute_dims(xp.asarray(b), perm)
                same_values(_apply(x, y, dtype), _apply(at, bt, dtype))
                same_values(_apply(x, x, dtype), _apply(at, at, dtype))
                same_values(_apply(x, xp.asarray(a), dtype) if shape[-1] == shape[-2] else x, _apply(at, a, dtype)
                     if shape[-1] == shape[-2] else at)


@pytest.mark.parametrize("src,dst", [("float32", "float64"), ("float64", "float32"), ("int8", "float64"),
                                     ("complex128", "complex64"), ("float32", "bool"), ("bool", "int16"),
                                     ("uint16", "complex128"), ("int64", "int8")])
def test_transposed_casts(src, dst):
    """astype of a transposed view, every width mixing (the block edge follows the widest)."""
    a = filled((67, 130), src)
    for ctx in CONTEXTS:
        with ctx(), np.errstate(all="ignore"):
            same_values(xp.astype(xp.asarray(a).T, getattr(xp, dst)), a.T.astype(dst))


def test_transposed_expressions_with_broadcasts_scalars_and_indices():
    """Broadcast leaves along either dimension (one of them constant along the output's rows),
    0-d arrays, index leaves (arange), a transposed leaf broadcast along a third dimension."""
    a = filled((90, 70), "float64")
    row, col = filled((90,), "float64", seed=5), filled((70, 1), "float64", seed=6)
    x = xp.asarray(a)
    for ctx in CONTEXTS:
        with ctx(), np.errstate(all="ignore"):
            same_values(x.T * xp.asarray(row) + xp.asarray(col), a.T * row + col)
            same_values(x.T - xp.asarray(np.float64(3.5)), a.T - 3.5)
            same_values(x.T * xp.arange(90, dtype=xp.float64), a.T * np.arange(90.0))
            same_values(x.T + xp.reshape(xp.arange(70, dtype=xp.float64), (70, 1)), a.T + np.arange(70.0)[:, None])
            same_values(xp.broadcast_to(x.T, (3, 70, 90)) * 2.0, np.broadcast_to(a.T, (3, 70, 90)) * 2.0)
            same_values(xp.where(x.T > 0, x.T, -1.0), np.where(a.T > 0, a.T, -1.0))


def test_transposed_math_and_wide_trig_retry():
    """Transcendental functions of transposed views (the row loop of the staged block), within
    the float tolerances; sin of huge arguments takes the wide range reduction (the fast-trig
    kernel's retry flag set from a tiled walk)."""
    a = filled((300, 200), "float32").astype(np.float64) / 1e3
    a32 = a.astype(np.float32)
    for ctx in CONTEXTS:
        with ctx(), np.errstate(all="ignore"):
            np.testing.assert_allclose(np.asarray(xp.exp(xp.asarray(a32).T)), np.exp(a32.T), rtol=2e-6)
            np.testing.assert_allclose(np.asarray(xp.log1p(xp.abs(xp.asarray(a).T))), np.log1p(np.abs(a.T)),
                                       rtol=1e-14)
            huge = a * 1e25
            huge[5, 7] = 1e300
            np.testing.assert_allclose(np.asarray(xp.sin(xp.asarray(huge).T)), np.sin(huge.T), rtol=1e-12,
                                       atol=1e-15)
            c = (a + 1j * a[::-1]).astype(np.complex128)
            np.testing.assert_allclose(np.asarray(xp.exp(xp.asarray(c).T)), np.exp(c.T), rtol=1e-13)


def test_inplace_writes_through_transposed_views():
    """Writes into transposed views (``x.mT[...] = y``, ``x.mT += 1``, ``x.mT *= x``) and into a
    view with an expression over the transposed buffer it belongs to (computed through a copy)."""
    a = filled((70, 90), "float32")
    b = filled((90, 70), "float32", seed=7)
    for ctx in CONTEXTS:
        with ctx(), np.errstate(all="ignore"):
            x, e = xp.asarray(a), a.copy()
            x.mT[...] = xp.asarray(b) * 2
            e.T[...] = b * 2
            same_values(x, e)
            x.mT[...] += 1
            e.T[...] += 1
            same_values(x, e)
            x2 = xp.asarray(a)
            x2.mT[...] = x2.mT * x2.mT + 1
            same_values(x2, a * a + 1)
            sq = xp.asarray(filled((64, 64), "float32"))
            esq = np.asarray(sq).copy()
            sq[...] = sq.mT - sq  # (reads the buffer it writes, transposed)
            same_values(sq, esq.T - esq)


def test_tiled_kernel_is_chosen_for_transposed_reads():
    """The kernel of an expression over a transposed view walks blocks and stages that input
    (class "t"); C-contiguous and thin ones are not tiled; one tiled kernel serves every shape
    of the same structure; GPU targets never tile."""
    x = xp.asarray(filled((300, 400), "float32"))
    with _specs() as seen:
        (x.mT * 2.0)._realize()
        (x.mT + x.mT * 2.0)._realize()
        (x * 2.0)._realize()
        (xp.asarray(filled((3, 2000), "float32")).mT * 2.0)._realize()
    assert [s.tiled for s in seen] == [True, True, False, False], seen
    assert seen[0].classes == ("c", "t")
    with _specs() as again:
        (xp.asarray(filled((500, 123), "float32")).mT * 3.0)._realize()
    assert again == [seen[0]]
    from egpu_array.kernels.elementwise_tiles import tiles
    assert not tiles("nvptx64-nvidia-cuda") and tiles("x86_64-unknown-linux-gnu")


def test_large_transposed_expressions_default_thresholds():
    """Outputs past the streamed threshold: rows on cache lines (streamed blocks), rows off them,
    a mixed expression with a C-contiguous operand, float64 (16-element blocks)."""
    for shape, dtype in [((1024, 2048), "float32"), ((1023, 2049), "float32"), ((1024, 1536), "float64")]:
        a, b = filled(shape, dtype), filled(shape[::-1], dtype, seed=8)
        x = xp.asarray(a)
        with _specs() as seen, np.errstate(all="ignore"):
            same_values(x.T * 2, a.T * 2)
            same_values(x.T + xp.asarray(b), a.T + b)
        assert seen[0].tiled and seen[0].stream == (shape[1] % 16 == 0), seen
