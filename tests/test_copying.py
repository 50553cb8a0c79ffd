"""``concat``, ``stack`` and ``roll`` (one multi-copy kernel each) against NumPy: axes, dtypes
(mixed-dtype promotion for concat/stack), empty pieces, strided and pending inputs, errors."""
from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import egpu_array as xp

FAST = settings(max_examples=30, deadline=None, derandomize=True)
# kinds the standard promotes within (no cross-kind promotion between arrays)
FAMILIES = [["bool"], ["int8", "int16", "int32", "int64"], ["uint8", "uint16", "uint32", "uint64"],
            ["int8", "uint8", "int16"], ["float32", "float64"], ["float32", "complex64", "complex128"]]


def check(out, expected) -> None:
    expected = np.asarray(expected)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert str(out.dtype).split(".")[-1] == expected.dtype.name, (out.dtype, expected.dtype)
    np.testing.assert_array_equal(np.asarray(out), expected)


def elements(dtype):
    kind = np.dtype(dtype).kind
    if kind == "c":  # (inf * 1 is not inf in complex arithmetic: pending inputs multiply by 1)
        return hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False)
    return hnp.from_dtype(np.dtype(dtype), allow_nan=False) if kind == "f" else hnp.from_dtype(np.dtype(dtype))


@st.composite
def inputs(draw, shapes):
    """Arrays of the given shapes with dtypes from one promotable family; each given to xp as a
    contiguous array, a strided view (transposed / every other element) or a pending expression."""
    family = draw(st.sampled_from(FAMILIES))
    arrays, ours = [], []
    for shape in shapes:
        dtype = draw(st.sampled_from(family))
        a = draw(hnp.arrays(dtype, shape, elements=elements(dtype)))
        form = draw(st.sampled_from(["plain", "plain", "strided", "pending"]))
        if form == "strided" and a.ndim:
            big = np.repeat(a, 2, axis=-1)  # take every other element back: a strided view
            x = xp.asarray(big)[..., ::2]
        elif form == "pending" and dtype != "bool":
            x = xp.asarray(a) * xp.asarray(np.ones((), dtype=dtype))[()]
        else:
            x = xp.asarray(a)
        arrays.append(a)
        ours.append(x)
    return arrays, ours


@FAST
@given(st.data())
def test_concat_matches_numpy(data):
    nd = data.draw(st.integers(1, 3))
    base = list(data.draw(hnp.array_shapes(min_dims=nd, max_dims=nd, min_side=0, max_side=4)))
    axis = data.draw(st.integers(-nd, nd - 1))
    k = data.draw(st.integers(1, 5))
    shapes = []
    for _ in range(k):
        s = list(base)
        s[axis] = data.draw(st.integers(0, 4))  # empty pieces too
        shapes.append(tuple(s))
    arrays, ours = data.draw(inputs(shapes))
    check(xp.concat(ours, axis=axis), np.concatenate(arrays, axis=axis))
    check(xp.concat(ours, axis=None), np.concatenate([a.ravel() for a in arrays]))


@FAST
@given(st.data())
def test_stack_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays, ours = data.draw(inputs([shape] * data.draw(st.integers(1, 5))))
    check(xp.stack(ours, axis=axis), np.stack(arrays, axis=axis))


@FAST
@given(st.data())
def test_roll_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    (a,), (x,) = data.draw(inputs([shape]))
    if not shape or data.draw(st.booleans()):
        shift = data.draw(st.integers(-12, 12))
        check(xp.roll(x, shift), np.roll(a, shift))
        return
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
    shifts = data.draw(st.lists(st.integers(-12, 12), min_size=len(axes), max_size=len(axes)))
    check(xp.roll(x, tuple(shifts), axis=tuple(axes)), np.roll(a, shifts, axis=axes))
    check(xp.roll(x, shifts[0], axis=axes[0]), np.roll(a, shifts[0], axis=axes[0]))


def test_one_kernel_for_ten_arrays_and_for_roll():
    parts = [np.random.default_rng(k).random((3, k + 1)).astype(np.float32) for k in range(10)]
    xs = [xp.asarray(p) for p in parts]
    xs[3] = xp.asarray(np.asfortranarray(parts[3]))  # any strides
    with xp.profile() as p:
        out = xp.concat(xs, axis=1)
    assert p.launches == 1
    assert p.bytes_to_device == 0 and p.bytes_from_device == 0
    check(out, np.concatenate(parts, axis=1))
    with xp.profile() as p:
        out = xp.stack(xs[:1] * 10)
    assert p.launches == 1
    check(out, np.stack(parts[:1] * 10))
    grid = np.arange(35.0).reshape(5, 7)
    g = xp.asarray(grid)
    with xp.profile() as p:
        out = xp.roll(g, (2, -3), axis=(0, 1))  # four blocks, one kernel
    assert p.launches == 1
    check(out, np.roll(grid, (2, -3), axis=(0, 1)))


def test_mixed_dtypes_cast_in_the_kernel():
    parts = [np.array([1, -2], dtype=np.int8), np.array([300], dtype=np.int16),
             np.array([70000], dtype=np.int32)]
    with xp.profile() as p:
        out = xp.concat([xp.asarray(a) for a in parts])
    assert p.launches == 1
    check(out, np.concatenate(parts))
    c = xp.concat([xp.asarray(np.array([1.5], dtype=np.float32)),
                   xp.asarray(np.array([2 + 3j], dtype=np.complex64))])
    check(c, np.array([1.5, 2 + 3j], dtype=np.complex64))
    with pytest.raises(TypeError, match="concat"):
        xp.concat([xp.asarray([1]), xp.asarray([1.0])])  # no int/float promotion between arrays


def test_pending_inputs_keep_their_values():
    a = np.arange(6.0)
    x = xp.asarray(a)
    y = x + 1
    out = xp.concat([y, x, x[::-1]])
    x[0:2] = 50.0
    check(out, np.concatenate([a + 1, a, a[::-1]]))
    check(y, a + 1)
    r = xp.roll(x * 2, 1)
    check(r, np.roll(np.where(np.arange(6) < 2, 50.0, a) * 2, 1))


def test_errors():
    z = xp.reshape(xp.asarray([1.0]), ())
    with pytest.raises(ValueError, match="zero-dimensional"):
        xp.concat([z, z])
    with pytest.raises(ValueError, match="concat"):
        xp.concat([xp.zeros((2, 3)), xp.zeros((3, 2))], axis=0)
    with pytest.raises(ValueError, match="concat"):
        xp.concat([xp.zeros((2,)), xp.zeros((2, 1))])
    with pytest.raises(IndexError, match="concat"):
        xp.concat([xp.zeros((2,))], axis=1)
    with pytest.raises(ValueError, match="stack"):
        xp.stack([xp.zeros((2,)), xp.zeros((3,))])
    with pytest.raises(IndexError, match="stack"):
        xp.stack([xp.zeros((2,))], axis=2)
    with pytest.raises(ValueError):
        xp.concat([])
    with pytest.raises(TypeError):
        xp.concat(xp.zeros((2,)))
    with pytest.raises(ValueError, match="roll"):
        xp.roll(xp.zeros((2, 2)), (1, 2), axis=0)
    with pytest.raises(IndexError, match="roll"):
        xp.roll(xp.zeros((2, 2)), 1, axis=2)
    with pytest.raises(TypeError, match="roll"):
        xp.roll(xp.zeros((2,)), 1.5)
    check(xp.roll(z, 3), np.roll(np.array(1.0), 3))
    check(xp.stack([z, z]), np.array([1.0, 1.0]))


@FAST
@given(st.data())
def test_transposing_copies_match_numpy(data):
    """Copies of permuted (and partly reversed) views big enough for the tiled (blocked) path,
    edges not multiples of the block, any dtype; also a transposed view as a concat piece."""
    nd = data.draw(st.integers(2, 4))
    shape = tuple(data.draw(st.integers(1, 40)) for _ in range(nd - 2)) + (
        data.draw(st.integers(9, 70)), data.draw(st.integers(9, 70)))
    dtype = data.draw(st.sampled_from(["bool", "uint8", "int16", "float32", "float64", "complex128"]))
    a = data.draw(hnp.arrays(dtype, shape, elements=elements(dtype)))
    perm = tuple(data.draw(st.permutations(range(nd))))
    flip = tuple(slice(None, None, data.draw(st.sampled_from([1, 1, -1]))) for _ in range(nd))
    x = xp.permute_dims(xp.asarray(a)[flip], perm)  # reversed axes: negative strides
    a = a[flip]
    check(xp.asarray(x, copy=True), np.transpose(a, perm))
    check(xp.reshape(x, (-1,)), np.transpose(a, perm).ravel())
    if nd == 2:
        t = np.transpose(a, perm)
        check(xp.concat([x, x[::-1]], axis=1), np.concatenate([t, t[::-1]], axis=1))


def test_transposed_copy_is_one_tiled_launch():
    a = np.arange(300 * 200, dtype=np.float32).reshape(300, 200)
    x = xp.asarray(a)
    with xp.profile() as p:
        y = xp.asarray(x.T, copy=True)
        y._realize()
    assert p.launches == 1
    check(y, a.T)


# every element width the register transposes handle: 1, 2, 4, 8 and 16 bytes
WIDTHS = ["bool", "uint8", "int16", "float32", "int64", "complex64", "complex128"]


def _filled(shape, dtype):
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if dtype == "bool":
        return (a % 3 == 1)
    if dtype.startswith("complex"):
        return (a + 1j * (a[..., ::-1] if a.ndim else a)).astype(dtype)
    return (a % np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else a).astype(dtype)


@pytest.mark.parametrize("dtype", WIDTHS)
def test_transposed_copy_blocks_and_edges_every_width(dtype):
    """Full register-transposed blocks (shapes that are multiples of the block edge), partial edge
    blocks (one more or one fewer), a 3-D permutation, views at odd offsets (unaligned rows),
    reversed sources and destinations (unit stride -1) and a transposed copy into a view."""
    from egpu_array.kernels.copies import tile_of
    t = tile_of(np.dtype(dtype).itemsize)
    for shape in [(2 * t, 3 * t), (2 * t + 1, 3 * t - 1), (t - 1, 4 * t + 3), (3, 2 * t, t + 5)]:
        a = _filled(shape, dtype)
        perm = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
        x = xp.asarray(a)
        check(xp.asarray(xp.permute_dims(x, perm), copy=True), np.transpose(a, perm))
        if a.ndim == 3:
            check(xp.asarray(xp.permute_dims(x, (2, 0, 1)), copy=True), np.transpose(a, (2, 0, 1)))
            check(xp.asarray(xp.permute_dims(x, (1, 2, 0)), copy=True), np.transpose(a, (1, 2, 0)))
    a = _filled((3 * t + 2, 2 * t + 3), dtype)
    x = xp.asarray(a)
    check(xp.asarray(x[1:, 3:].T, copy=True), a[1:, 3:].T)
    check(xp.asarray(x[::-1].T, copy=True), a[::-1].T)  # unit stride -1: walked backwards
    check(xp.asarray(x[:, ::-1].T, copy=True), a[:, ::-1].T)
    check(xp.asarray(x[2::-1, ::-1].T, copy=True), a[2::-1, ::-1].T)
    check(xp.asarray(x[::-2].T, copy=True), a[::-2].T)  # no unit stride: not tiled
    back = np.zeros((2 * t + 3, 3 * t + 2), dtype=dtype)
    z = xp.asarray(back)
    z[::-1] = x[::-1].T
    back[::-1] = a[::-1].T
    check(z, back)
    out = np.zeros((2 * t + 5, 3 * t + 4), dtype=dtype)
    y = xp.asarray(out)
    y[1:2 * t + 4, 2:] = x.T
    out[1:2 * t + 4, 2:] = a.T
    check(y, out)


def test_transposed_pieces_with_casts_and_mixed_widths():
    """Tiled pieces of another dtype (cast element by element) next to same-dtype ones."""
    a = _filled((70, 45), "float32")
    b = _filled((70, 33), "float64")
    got = xp.concat([xp.asarray(a).T, xp.asarray(b).T], axis=0)
    check(got, np.concatenate([a.T, b.T], axis=0))
    c = _filled((40, 50), "int16")
    check(xp.stack([xp.asarray(c).T, xp.asarray(c.astype(np.int8)).T]),
          np.stack([c.T, c.astype(np.int8).T]))


def test_tiled_kernel_transposes_in_vector_registers():
    """The float32 multi-copy kernel's full blocks are shuffles of 256-bit registers on an AVX2 host."""
    from egpu_array.kernels import copies
    from egpu_array.kernels.targets import host_target
    target = host_target()
    if "+avx2" not in target.features:
        pytest.skip("host without AVX2")
    module = target.new_module("copies_asm")
    copies.generate(copies.CopiesSpec(out_dtype="float32", src_dtypes=("float32",), ndim=2), module, "k")
    asm = target.assembly(module)
    # (float or integer domain, as the host CPU model prefers: vperm2f128 / vperm2i128, vunpcklps /
    # vpunpcklqdq; AVX-512 hosts also use vpermt2d)
    assert re.search(r"\bvperm(2[fi]128|t2)", asm) and re.search(r"\bv(p?unpck|shufps)", asm), \
        "no register transpose in the kernel"


# --- streamed transposing copies (non-temporal stores of whole destination lines) ---------------

@contextlib.contextmanager
def _streaming_from(nbytes):
    """Stream tiled pieces from ``nbytes`` of destination on (small arrays take that path too)."""
    from egpu_array.kernels import copies
    saved = copies.STREAM_MIN_BYTES
    copies.STREAM_MIN_BYTES = nbytes
    try:
        yield
    finally:
        copies.STREAM_MIN_BYTES = saved


def _walks(fn):
    """The tiling fields of the tiled pieces ``fn()`` copies (kernels.copies.tiled_walk's answers)."""
    from egpu_array import _copying
    seen, orig = [], _copying.tiled_walk

    def spy(*args):
        out = orig(*args)
        seen.append(out[0])
        return out
    _copying.tiled_walk = spy
    try:
        fn()
    finally:
        _copying.tiled_walk = orig
    return seen


def test_tiled_walk_streams_only_large_aligned_destinations():
    from egpu_array.kernels.copies import STREAMED, STREAM_MIN_BYTES, tiled_walk
    x86, big = "x86_64-unknown-linux-gnu", [4096, 4096]
    assert tiled_walk(big, 4, 1 << 20, [4096, 1], 32, 1 << 15, x86) == (STREAMED, 128 * 128, 32)
    assert tiled_walk([2, 64, 64], 4, 1 << 20, [4096, 64, 1], 32, 1 << 15, x86)[0] != STREAMED  # small
    assert tiled_walk(big, 4, 1 << 20, [4100, 1], 32, 1 << 15, x86)[0] != STREAMED  # rows not 32-byte aligned
    assert tiled_walk(big, 4, 1 << 20, [4104, 1], 32, 1 << 15, x86)[0] != STREAMED  # 32 but not 64
    assert tiled_walk(big, 4, (1 << 20) + 32, [4096, 1], 32, 1 << 15, x86)[0] != STREAMED  # start unaligned
    assert tiled_walk(big, 4, 1 << 20, [-4096, 1], 32, 1 << 15, x86)[0] == STREAMED  # rows walked backwards
    assert tiled_walk(big, 1, 1 << 20, [4096, 1], 32, 1 << 15, x86)[0] != STREAMED  # 1-byte elements
    assert tiled_walk(big, 4, 1 << 20, [4096, 1], 32, 1 << 15, "nvptx64-nvidia-cuda")[0] != STREAMED
    assert tiled_walk(big, 4, 1 << 20, [4096, 1], 32, 1 << 15, "")[0] != STREAMED  # not host memory
    assert STREAM_MIN_BYTES <= 4096 * 4096 * 4


STREAM_WIDTHS = ["int16", "float32", "int64", "complex64", "complex128", "uint8", "bool"]


@FAST
@given(st.data())
def test_streamed_transposing_copies_match_numpy(data):
    """Streamed pieces (threshold lowered to 0): extents around multiples of the streamed block,
    every element width (1-byte ones are never streamed), leading batch dimensions, strided and
    reversed sources, rows on cache-line boundaries or not (then the grouped walk), copies into views."""
    from egpu_array.kernels.copies import tile_of
    dtype = data.draw(st.sampled_from(STREAM_WIDTHS))
    t = tile_of(np.dtype(dtype).itemsize, stream=True)
    edge = st.builds(lambda k, d: max(1, k * t + d), st.integers(1, 3), st.sampled_from([-1, 0, 0, 1, 5]))
    batch = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    shape = batch + (data.draw(edge), data.draw(edge))
    step = data.draw(st.sampled_from([1, 1, 2, -1]))  # in the source rows: -1 reversed, 2 not tiled
    flip = data.draw(st.booleans())  # reverse the source rows axis too (negative row stride)
    a = _filled(tuple(shape[:-1]) + (shape[-1] * abs(step),), dtype)
    view_a = a[..., ::step] if step != -1 else a[..., ::-1]
    x = xp.asarray(a)
    view = x[..., ::step] if step != -1 else x[..., ::-1]
    if flip:
        view, view_a = view[..., ::-1, :], view_a[..., ::-1, :]
    perm = tuple(range(len(batch))) + (len(batch) + 1, len(batch))
    expected = np.transpose(view_a, perm)
    with _streaming_from(0):
        walks = _walks(lambda: check(xp.asarray(xp.permute_dims(view, perm), copy=True), expected))
        out = np.zeros(expected.shape[:-1] + (expected.shape[-1] + 3,), dtype=dtype)
        y = xp.asarray(out)
        y[..., 3:] = xp.permute_dims(view, perm)  # rows start 3 elements in: unaligned
        out[..., 3:] = expected
        check(y, out)
    aligned = (expected.shape[-1] * np.dtype(dtype).itemsize) % 64 == 0
    if walks and np.dtype(dtype).itemsize > 1 and aligned and xp.asarray(a).device.target.triple.startswith("x86_64"):
        assert walks[0] == -1, walks  # the fresh output's rows are aligned: streamed


def test_streamed_copy_at_the_default_threshold():
    """A transposed copy past the default threshold (8 MiB) streams, batched and reversed too."""
    a = np.arange(1536 * 1408, dtype=np.float32).reshape(1536, 1408)
    x = xp.asarray(a)
    walks = _walks(lambda: check(xp.asarray(x.T, copy=True), a.T))
    if x.device.target.triple.startswith("x86_64"):
        assert walks == [-1]
    check(xp.asarray(x[::-1].T, copy=True), a[::-1].T)
    b = a.reshape(2, 768, 1408)
    check(xp.asarray(xp.permute_dims(xp.asarray(b), (0, 2, 1)), copy=True), np.transpose(b, (0, 2, 1)))


def test_streamed_stores_only_in_the_x86_form():
    """Non-temporal stores and the store fence are in the x86-64 kernel, not in the NVPTX one."""
    from egpu_array.kernels import copies
    from egpu_array.kernels.targets import host_target, nvptx_target
    spec = copies.CopiesSpec(out_dtype="float32", src_dtypes=("float32",), ndim=2)
    gpu = nvptx_target().new_module("copies_ptx")
    copies.generate(spec, gpu, "k")
    assert "nontemporal" not in str(gpu) and "x86" not in str(gpu)
    target = host_target()
    if not target.triple.startswith("x86_64") or "+avx2" not in target.features:
        pytest.skip("host without AVX2")
    module = target.new_module("copies_asm")
    copies.generate(spec, module, "k")
    asm = target.assembly(module)
    assert re.search(r"\bvmovnt(ps|dq)\b", asm) and "sfence" in asm  # (float or integer domain)
