"""Plans and launches of the FFT kernels (kernels/fft.py) over strided batches of rows.

An :class:`Opnd` describes complex rows in device memory in scalar units (see kernels/fft.py):
element ``j`` of row ``(b1, b2)`` is at ``ptr + (b1*bs1 + b2*bs2 + j*es)`` scalars, its imaginary
part ``im`` scalars further. :func:`c2c` computes a complex transform of length ``n`` from one
operand into another:

- lengths whose prime factors are 2, 3 and 5: Stockham passes of radix 8, 4, 2, 3, 5. On the cpu
  device a batch goes through the lanes kernel (kernels/fft_lanes.py: 8 or 4 rows at once, one per
  SIMD lane, the whole transform in one launch), and rows too long for it as two such batches
  (the four-step split, :func:`_four_step`). Otherwise all passes of a row (or of a panel of rows along
  a non-last axis) in one work item when they fit in cache, else one launch per pass with each
  pass cut in chunks;
- other lengths: Bluestein's algorithm, a chirp multiply into rows of a 5-smooth length
  ``M >= 2n - 1``, a forward Stockham FFT, a pointwise product with the transformed chirp, an
  inverse FFT and a last chirp multiply into the destination.

Tables (pass twiddles, chirps, the real-transform twiddles) are computed in float64 with NumPy,
rounded once to the working precision and kept on the device per (device, length, sign, dtype);
on devices with their own memory the upload is a profiled internal transfer, once per table.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import _dtypes as dt
from ._sorting import launch
from ._transfer import from_host, internal
from .backend.pool import on_memory_pressure
from .kernels.cache import get_program
from .kernels.fft import POINTWISE_FIXED, RADICES, FFTSpec
from .kernels.fft_lanes import LANES, LANES_FIXED

__all__ = ["Opnd", "c2c", "pointwise", "factor", "bluestein_length", "rows_layout", "real_table"]

#: bytes of a panel (rows of one fused work item) that still count as cache-resident
FUSE_BYTES = 1 << 18
#: bytes of one panel of rows transformed together along a non-last axis (at most), and of the
#: panel's whole transform (the panel narrows for long transforms)
PANEL_BYTES = 256
COL_FUSE_BYTES = 1 << 17
#: bytes of the two lane-layout buffers of a group of rows transformed in SIMD lanes (at most; an
#: L2 cache of the host: 4096-point rows measured 1.5-3x faster in lanes than in four steps)
LANES_BYTES = 1 << 19
#: rows too long for the lanes as two batches of lanes: the smaller factor's least, the least
#: bytes of the batch (smaller ones: the passes are as fast, measured), bytes per chunk of rows,
#: the longest rows (its twiddle table has n values, kept on the device)
FOUR_STEP_MIN = 64
FOUR_STEP_BYTES = 1 << 21
FOUR_STEP_CHUNK = 1 << 23
FOUR_STEP_MAX = 1 << 22


@dataclass(frozen=True)
class Opnd:
    """Strided complex rows: ``buf`` (kept alive), ``ptr`` (address of element 0 of row 0) and
    strides in scalars."""
    buf: object
    ptr: int
    es: int
    bs1: int
    bs2: int
    im: int = 1

    def slots(self) -> list:
        return [self.ptr, self.es, self.bs1, self.bs2, self.im]


def rows_layout(buf, dtype, B1: int, n: int, B2: int, real: bool = False) -> Opnd:
    """The C-contiguous ``(B1, n, B2)`` layout of ``buf`` (complex rows, or real rows read as
    packed complex pairs when ``real``: then ``n`` counts complex pairs)."""
    if real:
        return Opnd(buf, buf.ptr, 2 * B2, 2 * n * B2, 1, B2)
    return Opnd(buf, buf.ptr, 2 * B2, 2 * n * B2, 2, 1)


def factor(n: int, allow8: bool = True, first8: bool = False):
    """Stockham radices of ``n``, or None when ``n`` has a prime factor above 5. With ``allow8``
    the power of two is mostly radix 8, in the first pass only with ``first8`` (row order, unit
    source: kernels.fft.RADIX8_RULE); else radix 4 (and one 2)."""
    out = []
    a = (n & -n).bit_length() - 1
    n >>= a
    if allow8 and a >= 3:
        head = {0: [] if first8 else [4, 2], 1: [2], 2: [4]}[a % 3]
        out = head + [8] * ((a - sum(r.bit_length() - 1 for r in head)) // 3)
    else:
        out = [4] * (a // 2) + [2] * (a % 2)
    for r in (3, 5):
        while n % r == 0:
            out.append(r)
            n //= r
    return out if n == 1 else None


def bluestein_length(n: int) -> int:
    """The smallest 5-smooth length ``>= 2n - 1``."""
    target = 2 * n - 1
    best = 1 << max(0, (target - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < target:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _f64_bits(x: float) -> int:
    return int(np.array(x, dtype=np.float64).view(np.int64))


# ---- tables ---------------------------------------------------------------------------------------

#: tables kept per device (least recently used dropped beyond this many)
MAX_TABLES = 64
_tables: OrderedDict = OrderedDict()
_tables_lock = threading.Lock()


def _release_tables(device) -> None:
    """Drop the tables kept on ``device`` (its memory ran out: they are rebuilt when needed)."""
    with _tables_lock:
        for full in [k for k in _tables if k[0] == device]:
            del _tables[full]


on_memory_pressure(_release_tables)


def _table(device, key, dtype, build):
    """A cached device Array of complex ``dtype`` holding ``build()`` (complex128 from NumPy);
    rebuilt when its buffer was invalidated (a device reset)."""
    full = (device, dtype.name) + key
    with _tables_lock:
        arr = _tables.get(full)
        if arr is not None and arr._node.arg.buffer.valid:
            _tables.move_to_end(full)
            return arr
    host = np.ascontiguousarray(build(), dtype=dtype.np)
    if host.size == 0:
        host = np.zeros(1, dtype=dtype.np)
    with internal(f"fft.{key[0]} table"):
        arr = from_host(host, dtype, device)
    with _tables_lock:
        _tables[full] = arr
        while len(_tables) > MAX_TABLES:
            _tables.popitem(last=False)
    return arr


def _expi(num: np.ndarray, den: int, sign: int) -> np.ndarray:
    """exp(sign * 2*pi*i * num/den) with ``num`` reduced mod ``den`` exactly first."""
    num = np.mod(num.astype(np.int64), den)
    return np.exp(sign * 2j * np.pi * (num / den))


def _plan(n: int, radices: list) -> tuple:
    plan, off, ns = [], 0, 1
    for r in radices:
        plan.append((r, ns, off))
        off += 2 * ns * (r - 1)
        ns *= r
    return tuple(plan)


def _pass_twiddles(radices, sign: int):
    parts = []
    ns = 1
    for r in radices:
        rk = np.outer(np.arange(1, r), np.arange(ns)).reshape(-1)
        parts.append(_expi(rk, ns * r, sign))
        ns *= r
    return np.concatenate(parts) if parts else np.ones(1)


def real_table(device, dtype, n: int, sign: int):
    """exp(sign*2*pi*i*k/n) for k in [0, n//2] (the real transforms' pre/post step)."""
    return _table(device, ("real", n, sign), dtype, lambda: _expi(np.arange(n // 2 + 1), n, sign))


def _chirp(n: int, sign: int) -> np.ndarray:
    j = np.arange(n, dtype=np.int64)
    return _expi((j * j) % (2 * n), 2 * n, sign)


def _bluestein_kernel(n: int, m: int, sign: int) -> np.ndarray:
    b = np.zeros(m, dtype=np.complex128)
    w = np.conj(_chirp(n, sign))
    b[:n] = w
    b[m - n + 1:] = w[1:][::-1]
    return np.fft.fft(b) / m


# ---- launches -------------------------------------------------------------------------------------

def _threads(device) -> int:
    return getattr(device, "num_threads", 1)


def pointwise(device, dtype, phase: str, src: Opnd, dst: Opnd, B1: int, B2: int, length: int,
              lpad: int, scale: float, tab) -> None:
    """Launch a pointwise step (``cmul``, ``rpost``, ``rpre``, ``hext``) over ``B1 x B2`` rows.

    ``length`` is ``L`` (cmul), ``h`` (rpost/rpre) or ``n`` (hext); ``lpad`` the cmul padded length.
    """
    rows = B1 * B2
    out_len = lpad if phase == "cmul" else (length + 1 if phase == "rpost" else length)
    if rows == 0 or out_len == 0:
        return
    nchunk = max(1, min(out_len // 2048, -(-4 * _threads(device) // rows)))
    head = [length, lpad] if phase == "cmul" else [length]
    slots = head + [B1, B2, nchunk, _f64_bits(scale)] + src.slots() + dst.slots() + [tab._realize().buffer.ptr]
    assert len(head) + 4 == POINTWISE_FIXED[phase]
    prog = get_program(device, FFTSpec(dtype.name, phase))
    total = rows * out_len
    launch(device, prog, slots, rows * nchunk, total * dtype.itemsize * 2, total * 4)


def c2c(device, dtype, src: Opnd, dst: Opnd, B1: int, B2: int, n: int, sign: int, scale: float,
        post=None, pre=None) -> None:
    """``dst = scale * DFT_n(src)`` along the rows (kernel exp(sign*2*pi*i*jk/n)); ``dst`` must
    not overlap ``src``. ``post = (out, tab, scale)``: then the ``rpost`` step from ``dst`` into
    ``out`` (fused into the transform's launch when its rows are done one per work item or in
    lanes). ``pre`` (the ``rpre`` table): ``src`` holds ``n + 1`` values of half spectra per row
    and the ``rpre`` step makes the rows to transform (fused in the lanes kernel, else into a
    temporary ``(B1, n, B2)`` buffer)."""
    if B1 * B2 == 0:
        return
    if pre is not None:
        if n > 1 and factor(n) is not None and _lanes_fit(device, dtype, B1 * B2, n):
            _lanes(device, dtype, src, dst, B1 * B2, B2, n, sign, scale, post, pre=pre)
            return
        z = rows_layout(device.allocator.alloc(B1 * n * B2 * dtype.itemsize), dtype, B1, n, B2)
        pointwise(device, dtype, "rpre", src, z, B1, B2, n, 0, 1.0, pre)
        src = z
    if n == 1:
        ones = _table(device, ("one",), dtype, lambda: np.ones(1))
        pointwise(device, dtype, "cmul", src, dst, B1, B2, 1, 1, scale, ones)
    elif factor(n) is None:
        _bluestein(device, dtype, src, dst, B1, B2, n, sign, scale)
    else:
        post = _stockham(device, dtype, src, dst, B1, B2, n, sign, scale, post)
    if post is not None:
        out, tab, pscale = post
        pointwise(device, dtype, "rpost", dst, out, B1, B2, n, 0, pscale, tab)


def _stockham(device, dtype, src, dst, B1, B2, n, sign, scale, post=None):
    """Stockham passes (see c2c); returns ``post`` when it was not fused (the caller runs it)."""
    col = B2 > 1 and abs(dst.bs2) == 2 and dst.es != 2
    if _lanes_fit(device, dtype, B1 * B2, n):
        _lanes(device, dtype, src, dst, B1 * B2, B2, n, sign, scale, post)
        return None
    split = _four_step_split(device, dtype, B1 * B2, n)
    if split is not None:
        _four_step(device, dtype, src, dst, B1, B2, n, sign, scale, *split)
        return post
    unit_out = dst.im == 1 and (dst.bs2 if col else dst.es) == 2
    unit_in = src.im == 1 and (src.bs2 if col else src.es) == 2
    radices = tuple(factor(n, allow8=unit_out, first8=unit_in and not col))
    plan = _plan(n, radices)
    tw = _table(device, ("twiddle", radices, sign), dtype, lambda: _pass_twiddles(radices, sign))
    P = len(plan)
    item = dtype.itemsize
    # a panel of W rows along a non-last axis: W*item bytes adjacent, all of it cache-resident
    W = min(B2, max(64 // item, min(PANEL_BYTES // item, COL_FUSE_BYTES // (n * item)))) if col else 1
    panels = B1 * (-(-B2 // W))
    prog = get_program(device, FFTSpec(dtype.name, "stockham", "col" if col else "row"))
    flat_plan = [v for p in plan for v in p]
    threads = _threads(device)
    rows = B1 * B2
    nbytes = rows * n * item * 2
    fused = n * W * item <= max(FUSE_BYTES, COL_FUSE_BYTES if col else 0) and (panels >= threads or rows * n < (1 << 16))
    alloc = device.allocator.alloc
    # contiguous output rows have the compact layout: they serve as B (written before the last pass)
    out_b = fused and not col and B2 == 1 and dst.es == 2 and dst.im == 1 and dst.bs1 == 2 * n
    if fused:  # scratch: per panel, compact (n x W pairs)
        a, b = (alloc(panels * n * W * item) if P > k else None for k in (1, 2 if not out_b else P))
        if out_b:
            b = dst.buf
        scr = [2 * W, 2 * n * W, 2, 1]
    else:  # scratch: (B1, n, B2) rows
        a, b = (alloc(rows * n * item) if P > k else None for k in (1, 2))
        scr = [2 * B2, 2 * n * B2, 2, 0]
    ptrs = [a.ptr if a is not None else 0, (dst.ptr if out_b else b.ptr) if b is not None else 0]
    scr_unit = fused or col or B2 == 1
    if 8 in radices and not (unit_out and scr_unit and (radices[0] != 8 or (unit_in and not col))):
        raise RuntimeError(f"fft: internal error: radix-8 plan {radices} for a non-unit layout")

    def go(p0, p1, s: Opnd, nchunk, fuse_post=None):
        if fuse_post is None:
            tail = [0] * 8
        else:
            out, tab, pscale = fuse_post
            tail = [1] + out.slots() + [tab._realize().buffer.ptr, _f64_bits(pscale)]
        slots = ([n, B1, B2, W, nchunk, p0, p1, P, _f64_bits(scale), _f64_bits(float(sign))] + s.slots()
                 + dst.slots() + ptrs + scr + [tw._realize().buffer.ptr] + tail + flat_plan)
        launch(device, prog, slots, panels * nchunk, nbytes * (p1 - p0), rows * n * (p1 - p0))

    if fused:
        fuse = post is not None and not col
        go(0, P, src, 1, post if fuse else None)
        return None if fuse else post
    for p in range(P):
        m = n // plan[p][0]
        nchunk = max(1, min(m // 64, -(-8 * threads // panels)))
        if p == 0:
            s = src
        else:  # what pass p-1 wrote: A when P-p is odd, else B
            buf = a if (P - p) % 2 else b
            s = Opnd(buf, buf.ptr, 2 * B2, 2 * n * B2, 2, 1)
        go(p, p + 1, s, nchunk)
    return post


def _lanes_fit(device, dtype, rows: int, n: int) -> bool:
    """Whether a batch goes to the lanes kernel (kernels.fft_lanes): on the cpu device, at least
    half a group of rows and the group's two buffers within LANES_BYTES, along any axis (along a
    non-last axis a group's rows are adjacent, so its elements move as whole vectors too)."""
    L = LANES[dtype.name]
    return getattr(device, "kind", None) == "cpu" and 2 * rows >= L and 2 * n * L * dtype.itemsize <= LANES_BYTES


def _lanes(device, dtype, src, dst, rows, B2, n, sign, scale, post=None, pre=None):
    """The transform of ``rows`` rows (row ``r`` is ``(r // B2, r % B2)``) in SIMD lanes, one launch;
    with ``post`` its ``rpost`` step is fused (the transform goes from the lanes straight to
    ``post``'s output, ``dst`` is not written); with ``pre`` (the ``rpre`` table) the ``rpre``
    step on the source rows (``n + 1`` values each) is."""
    L = LANES[dtype.name]
    radices = tuple(factor(n))
    plan = _plan(n, radices)
    tw = _table(device, ("twiddle", radices, sign), dtype, lambda: _pass_twiddles(radices, sign))
    groups = -(-rows // L)
    threads = _threads(device)
    gpw = -(-groups // min(groups, 2 * threads))
    nwork = -(-groups // gpw)
    scr = device.allocator.alloc(nwork * 2 * (n + 1) * L * dtype.itemsize)
    if pre is not None:
        assert post is None
        out, ptab, flag = dst, pre._realize().buffer.ptr, 2
    elif post is None:
        out, ptab, flag = dst, 0, 0
    else:
        out, tab, pscale = post
        scale, ptab, flag = scale * pscale, tab._realize().buffer.ptr, 1
    slots = ([n, rows, B2, gpw, len(plan), _f64_bits(scale), _f64_bits(float(sign))] + src.slots()
             + out.slots() + [scr.ptr, tw._realize().buffer.ptr, flag, ptab])
    assert len(slots) == LANES_FIXED
    slots += [v for p in plan for v in p]
    prog = get_program(device, FFTSpec(dtype.name, "lanes"))
    nbytes = rows * n * dtype.itemsize * 2
    launch(device, prog, slots, nwork, nbytes, rows * n * len(plan))


def _four_step_split(device, dtype, rows: int, n: int):
    """``(n1, n2)`` with ``n = n1 * n2`` (n1 the divisor nearest below sqrt(n)) when rows go as
    two batches of lanes (:func:`_four_step`): on the cpu device, for rows too long for the lanes
    themselves, a batch of FOUR_STEP_BYTES at least, rows up to FOUR_STEP_MAX, both factors at
    least FOUR_STEP_MIN and within the lanes' size."""
    if (getattr(device, "kind", None) != "cpu" or rows * n * dtype.itemsize < FOUR_STEP_BYTES
            or n > FOUR_STEP_MAX):
        return None
    n1 = max((d for d in range(1, math.isqrt(n) + 1) if n % d == 0), default=1)
    n2 = n // n1
    if n1 < FOUR_STEP_MIN or not _lanes_fit(device, dtype, n1, n2) or not _lanes_fit(device, dtype, n2, n1):
        return None
    return n1, n2


def _four_step(device, dtype, src, dst, B1, B2, n, sign, scale, n1, n2):
    """Each row as the matrix ``x[j1*n2 + j2]`` (n1 x n2): transforms of length n1 down its
    columns (lanes, into ``t``), ``t[k1, j2] *= w^(k1*j2)`` (``w = exp(sign*2*pi*i/n)``, a cmul
    with a cached table), transforms of length n2 along the rows of the product, each written
    with the strides that put ``X[k1 + n1*k2]`` in place (lanes of adjacent outputs). The rows go
    in chunks of up to FOUR_STEP_CHUNK bytes, each chunk's rows one stride apart (the B1 groups of
    B2 rows, or the B1 rows when B2 is 1): three launches per chunk."""
    tab = _table(device, ("fourstep", n1, n2, sign), dtype,
                 lambda: _expi(np.outer(np.arange(n1), np.arange(n2)).reshape(-1), n, sign))
    outer, B, (ss, ds) = (1, B1, (src.bs1, dst.bs1)) if B2 == 1 else (B1, B2, (src.bs2, dst.bs2))
    chunk = max(1, min(B, FOUR_STEP_CHUNK // (n * dtype.itemsize)))
    alloc = device.allocator.alloc
    t, u = alloc(chunk * n * dtype.itemsize), alloc(chunk * n * dtype.itemsize)
    item = dtype.itemsize // 2
    for o in range(outer):
        for b0 in range(0, B, chunk):
            c = min(chunk, B - b0)
            so = (o * src.bs1 if B2 > 1 else 0) + b0 * ss
            do = (o * dst.bs1 if B2 > 1 else 0) + b0 * ds
            # columns: row b*n2 + j2 of the chunk is (b, j2); T[b, k1, j2] contiguous
            cols = Opnd(src.buf, src.ptr + so * item, src.es * n2, ss, src.es, src.im)
            _lanes(device, dtype, cols, Opnd(t, t.ptr, 2 * n2, 2 * n, 2), c * n2, n2, n1, sign, 1.0)
            pointwise(device, dtype, "cmul", Opnd(t, t.ptr, 2, 2 * n, 0), Opnd(u, u.ptr, 2, 2 * n, 0),
                      c, 1, n, n, 1.0, tab)
            # rows: row b*n1 + k1 is (b, k1); X[k1 + n1*k2] at (k1 + n1*k2) * es
            out = Opnd(dst.buf, dst.ptr + do * item, dst.es * n1, ds, dst.es, dst.im)
            _lanes(device, dtype, Opnd(u, u.ptr, 2, 2 * n, 2 * n2), out, c * n1, n1, n2, sign, scale)


def _bluestein(device, dtype, src, dst, B1, B2, n, sign, scale):
    m = bluestein_length(n)
    rows = B1 * B2
    chirp = _table(device, ("chirp", n, sign), dtype, lambda: _chirp(n, sign))
    kern = _table(device, ("bluestein", n, m, sign), dtype, lambda: _bluestein_kernel(n, m, sign))
    alloc = device.allocator.alloc
    a = alloc(rows * m * dtype.itemsize)
    c = alloc(rows * m * dtype.itemsize)
    la = Opnd(a, a.ptr, 2, 2 * m * B2, 2 * m)  # rows (b1, b2) of length m, contiguous
    lc = Opnd(c, c.ptr, 2, 2 * m * B2, 2 * m)
    pointwise(device, dtype, "cmul", src, la, B1, B2, n, m, 1.0, chirp)
    _stockham(device, dtype, la, lc, B1, B2, m, -1, 1.0)
    pointwise(device, dtype, "cmul", lc, la, B1, B2, m, m, 1.0, kern)
    _stockham(device, dtype, la, lc, B1, B2, m, 1, 1.0)
    pointwise(device, dtype, "cmul", lc, dst, B1, B2, n, n, scale, chirp)


def complex_of(dtype):
    """The complex dtype of ``dtype``'s precision."""
    return dt.complex64 if dtype in (dt.float32, dt.complex64) else dt.complex128


def real_of(dtype):
    """The real dtype of ``dtype``'s precision."""
    return dt.float32 if dtype in (dt.float32, dt.complex64) else dt.float64


def norm_scale(norm: str, n: int, inverse: bool, func: str) -> float:
    """The factor ``norm`` applies to a transform of logical length ``n``."""
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    if norm == "backward":
        return 1.0 / n if inverse else 1.0
    if norm == "forward":
        return 1.0 if inverse else 1.0 / n
    raise ValueError(f"{func}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")


assert set(RADICES) == {2, 3, 4, 5, 8}
