"""Large elementwise outputs stored with non-temporal (streaming) stores: the same bits as plain stores.

The threshold (``kernels.elementwise.STREAM_MIN_BYTES``) is forced to 0 here so that small arrays
take the streamed kernel: odd sizes and offsets (a head before the first cache line, a tail after
the last whole block), views, in-place writes, repeated ops (plans), casts.
"""
import platform

import numpy as np
import pytest

import egpu_array as xp
from egpu_array.kernels import elementwise as ew
from egpu_array.kernels.elementwise import generate_elementwise
from egpu_array.kernels.spec import ElementwiseSpec
from egpu_array.kernels.targets import host_target

X86 = platform.machine() in ("x86_64", "AMD64")
DTYPES = ["float32", "float64", "int16", "int32", "int64", "uint32", "uint8", "bool", "complex64"]
SIZES = [1, 7, 300, 1031, 4099]


def _both(monkeypatch, f):
    """``f()`` computed with plain stores and with streamed ones (threshold 0), as NumPy arrays."""
    monkeypatch.setattr(ew, "STREAM_MIN_BYTES", 1 << 62)
    plain = np.asarray(f())
    monkeypatch.setattr(ew, "STREAM_MIN_BYTES", 0)
    streamed = np.asarray(f())
    return plain, streamed


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_streamed_add_same_bits(monkeypatch, dtype):
    rng = np.random.default_rng(1)
    n = max(SIZES) + 16
    h = [(rng.standard_normal(n) * 100).astype(dtype) for _ in range(2)]
    a, b = (xp.asarray(x) for x in h)
    op = (lambda x, y: x ^ y) if dtype == "bool" else (lambda x, y: x + y)
    for size in SIZES:
        for off in (0, 1, 3, 5):  # views starting off the cache line
            s = slice(off, off + size)
            plain, streamed = _both(monkeypatch, lambda: op(a[s], b[s]))
            _same_bits(plain, streamed)
            _same_bits(streamed, op(h[0][s], h[1][s]))


def test_streamed_plan_switches_with_size(monkeypatch):
    """A repeated op over leaves (a plan) takes the streamed kernel only above the threshold."""
    h = np.arange(5000, dtype=np.float32)
    a = xp.asarray(h)
    monkeypatch.setattr(ew, "STREAM_MIN_BYTES", 4 * 2000)
    for n in (10, 5000, 1999, 2000, 17, 4097):
        _same_bits(np.asarray(xp.asarray(h[:n]) * a[:n] + 1.5), h[:n] * h[:n] + np.float32(1.5))


def test_streamed_in_place_and_strided(monkeypatch):
    rng = np.random.default_rng(2)
    h = rng.standard_normal(3001)
    monkeypatch.setattr(ew, "STREAM_MIN_BYTES", 0)
    x = xp.asarray(h)
    v = x[3:2990]
    v += x[5:2992]  # in place into a misaligned view, the input overlapping the output
    ref = h.copy()
    ref[3:2990] += h[5:2992].copy()
    _same_bits(np.asarray(x), ref)
    y = xp.asarray(h)
    _same_bits(np.asarray(y[::2] * 2.0), h[::2] * 2.0)  # a strided output: not streamed, still right
    m = xp.asarray(rng.standard_normal((37, 41)))
    _same_bits(np.asarray(m[:, 1:] - 1.0), np.asarray(m)[:, 1:] - 1.0)


def test_streamed_mixed_chain_same_bits(monkeypatch):
    """A memory-bound chain with a cast and a broadcast scalar; math kernels are not streamed."""
    rng = np.random.default_rng(3)
    h32, h64 = rng.standard_normal(2053).astype(np.float32), rng.standard_normal(2053)
    a, b = xp.asarray(h32)[1:], xp.asarray(h64)[2:]
    plain, streamed = _both(monkeypatch, lambda: xp.astype(a[:2050], xp.float64) * b[:2050] + 0.25 - b[1:2051])
    _same_bits(plain, streamed)
    _same_bits(streamed, h32[1:2051].astype(np.float64) * h64[2:2052] + 0.25 - h64[3:2053])
    add = (("in", 0), ("in", 1), ("add", "float64", 0, 1))
    chain = add + (("sin", "float64", 2),)
    x86 = "x86_64-unknown-linux-gnu"
    assert ew.streams_output(x86, add, xp.float64, 0) and not ew.streams_output(x86, chain, xp.float64, 0)


def _add_spec(dtype, stream):
    return ElementwiseSpec((("in", 0), ("in", 1), ("add", dtype, 0, 1)), (dtype, dtype), (), 0, dtype, 1,
                           ("c",) * 3, stream=stream)


@pytest.mark.skipif(not X86, reason="inspects x86-64 assembly")
@pytest.mark.parametrize("dtype,insn", [("float32", "vmovntps"), ("float64", "vmovntpd"), ("int32", "vmovntdq")])
def test_streamed_kernel_has_non_temporal_stores(dtype, insn):
    t = host_target()
    asm = {}
    for stream in (False, True):
        m = t.new_module("t")
        generate_elementwise(_add_spec(dtype, stream), m, "kern")
        asm[stream] = t.assembly(m)
    assert insn in asm[True] and "sfence" in asm[True]
    assert "vmovnt" not in asm[False] and "sfence" not in asm[False]


def test_streaming_is_host_x86_only():
    from egpu_array.kernels.targets import nvptx_target
    m = nvptx_target().new_module("t")
    generate_elementwise(_add_spec("float32", True), m, "kern")
    text = str(m)
    assert "nontemporal" not in text and "sfence" not in text
    add = (("in", 0), ("in", 1), ("add", "float32", 0, 1))
    x86 = "x86_64-unknown-linux-gnu"
    assert not ew.streams_output("nvptx64-nvidia-cuda", add, xp.float32, 1 << 30)
    assert ew.streams_output(x86, add, xp.float32, ew.STREAM_MIN_BYTES)
    assert not ew.streams_output(x86, add, xp.float32, ew.STREAM_MIN_BYTES - 1)
    assert not ew.streams_output(x86, add, xp.complex64, 1 << 30)
