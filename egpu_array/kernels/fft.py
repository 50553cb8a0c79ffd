"""Generator of FFT kernels (kind ``"fft"``): Stockham passes here, the pointwise steps around them in
kernels.fft_pointwise.

Every kernel is ``void NAME(i64* args, i64 start, i64 stop)`` over work items. Data are complex
values stored as pairs of floats; an operand is described in *scalar* units by five slots
``ptr, es, bs1, bs2, im``: element ``j`` of row ``(b1, b2)`` has its real part at
``ptr[b1*bs1 + b2*bs2 + j*es]`` and its imaginary part ``im`` scalars further. A complex array has
``im == 1``; a real array read as complex pairs (``z[m] = x[2m] + i*x[2m+1]``, the packing of the
real transforms) has ``es == 2*s`` and ``im == s`` for a real element stride ``s``. Batches are
``B1 x B2`` rows, so an axis of a C-contiguous array (dims before it: ``b1``, dims after: ``b2``)
is transformed in place of its strides, never transposed.

Phases (``FFTSpec.phase``):

- ``"stockham"``: passes ``[p0, p1)`` of a Stockham autosort FFT of length ``n`` with radices
  2, 3, 4, 5 and 8. Slots: ``n, B1, B2, W, nchunk, p0, p1, P, scale, sign`` (the last two as
  float64 bits; sign -1.0 forward, 1.0 inverse), the source and output operands, scratch
  pointers A and B with ``es, bs1, bs2, compact`` (compact: panel ``w`` owns ``bs1`` scalars at
  ``w*bs1``, pair ``(j, c)`` at ``j*es + (c-c0)*bs2``; else operand strides), the twiddle table
  pointer, ``post`` (1: after the last pass, each row of length ``n = h`` goes through the
  ``rpost`` step into the operand that follows, with its table and scale; row order, one chunk),
  and per pass ``(R, Ns, twoff)``. Pass ``p`` reads the source (``p == p0``) or the
  previous pass's result and writes the output when it is the last pass (times ``scale``), else
  A when ``P-1-p`` is odd, B when even. Work item ``w``: panel ``w // nchunk`` (a row ``b1``
  and ``W`` rows ``b2``) and chunk ``w % nchunk`` of the butterflies (``nchunk > 1`` only with
  one pass per launch). Order ``"row"`` loops over butterflies innermost; ``"col"`` over the
  ``W`` rows ``b2`` (transforms along a non-last axis). Each pass has a variant for the unit
  layout (pairs adjacent along the inner loop: constant strides, it vectorizes) and a generic
  one. Pass twiddles: ``tw[twoff + 2*((r-1)*Ns + k)]`` = exp(sign*2*pi*i*r*k/(Ns*R)).
- ``"cmul"``: ``dst[j] = src[j] * tab[j] * scale`` for ``j < L``, zero for ``L <= j < Lpad``
  (Bluestein's chirps and its pointwise product, padding, scaling; ``src`` and ``dst`` must not
  overlap). Slots ``L, Lpad, B1, B2, nchunk, scale``, src, dst, tab.
- ``"rpost"``: the spectrum ``X[0..h]`` of a real length-``2h`` row from the FFT ``Z`` of its
  packing; ``"rpre"``: the inverse step (``Z[0..h)`` from ``X[0..h]``, imaginary parts of
  ``X[0]``, ``X[h]`` ignored). Slots ``h, B1, B2, nchunk, scale``, src, dst, tab (``tab[k]`` =
  exp(sign*2*pi*i*k/(2h))).
- ``"lanes"``: a whole batched transform (and the ``rpost`` step) with 8 or 4 rows in the lanes
  of SIMD vectors: kernels.fft_lanes.
- ``"hext"``: a full Hermitian row of length ``n`` from its first ``n//2 + 1`` values
  (``dst[j] = conj(src[n-j])`` above). Slots ``n, B1, B2, nchunk, scale``, src, dst, tab (unused).

Only loads, stores, add/sub/mul and integer arithmetic: nothing host-only (lowerable for NVPTX).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from llvmlite import ir

from .irb import F32, F64, I64, const, for_range, kernel_entry

__all__ = ["FFTSpec", "generate", "RADICES", "STOCKHAM_FIXED", "POINTWISE_FIXED"]

#: radices the Stockham kernel has butterflies for
RADICES = (8, 4, 2, 3, 5)
#: radix 8 has only unit-layout variants (a large butterfly compiles slowly): plans use it
#: only where the layouts are unit, in the first pass only in row order
RADIX8_RULE = "unit layouts only; the first pass only in row order"
#: number of slots before the operands in the stockham and pointwise layouts
STOCKHAM_FIXED = 10
POINTWISE_FIXED = {"cmul": 6, "rpost": 5, "rpre": 5, "hext": 5}


@dataclass(frozen=True)
class FFTSpec:
    """One FFT kernel: ``dtype`` (complex64/complex128), ``phase`` (see the module docstring),
    and ``order`` (``"row"`` or ``"col"``; Stockham only). The direction is a runtime value."""
    dtype: str
    phase: str
    order: str = "row"

    kind = "fft"

    @property
    def name(self) -> str:
        extra = f"_{self.order}" if self.phase == "stockham" else ""
        return f"fft_{self.phase}{extra}_{self.dtype}"


# ---- complex arithmetic on (re, im) pairs ---------------------------------------------------------

class _C:
    """Complex helpers bound to a builder and a float type."""

    def __init__(self, b: ir.IRBuilder, ft):
        self.b, self.ft = b, ft

    def k(self, v):
        return const(self.ft, v)

    def add(self, x, y):
        return (self.b.fadd(x[0], y[0]), self.b.fadd(x[1], y[1]))

    def sub(self, x, y):
        return (self.b.fsub(x[0], y[0]), self.b.fsub(x[1], y[1]))

    def mul(self, x, y):
        b = self.b
        return (b.fsub(b.fmul(x[0], y[0]), b.fmul(x[1], y[1])),
                b.fadd(b.fmul(x[0], y[1]), b.fmul(x[1], y[0])))

    def scale(self, x, s):
        return (self.b.fmul(x[0], s), self.b.fmul(x[1], s))

    def rmul(self, x, c: float):
        return self.scale(x, self.k(c))

    def muli(self, x, c: float):
        """``x * (i*c)`` for a real constant c."""
        b = self.b
        return (b.fmul(x[1], self.k(-c)), b.fmul(x[0], self.k(c)))

    def muli_s(self, x, c: float, sg):
        """``x * (i*c*sg)`` for a real constant c and a float value sg."""
        b = self.b
        cs = b.fmul(self.k(c), sg)
        return (b.fmul(x[1], b.fneg(cs)), b.fmul(x[0], cs))

    def conj(self, x):
        return (x[0], self.b.fneg(x[1]))


def butterfly(C: _C, v: list, sg) -> list:
    """The R-point DFT (R = len(v)) of the values ``v`` with kernel exp(sign*2*pi*i*jk/R); ``sg``
    is the sign as a float value of the kernel (-1.0 forward, 1.0 inverse)."""
    R = len(v)
    if R == 2:
        return [C.add(v[0], v[1]), C.sub(v[0], v[1])]
    if R == 4:
        t0, t1 = C.add(v[0], v[2]), C.sub(v[0], v[2])
        t2, t3 = C.add(v[1], v[3]), C.muli_s(C.sub(v[1], v[3]), 1.0, sg)
        return [C.add(t0, t2), C.add(t1, t3), C.sub(t0, t2), C.sub(t1, t3)]
    if R == 8:  # two radix-4 halves (even, odd inputs), odd half rotated by w8^k
        e, o = butterfly(C, v[0::2], sg), butterfly(C, v[1::2], sg)
        h = math.sqrt(0.5)
        sh = C.b.fmul(C.k(h), sg)
        o = [o[0], C.mul(o[1], (C.k(h), sh)), C.muli_s(o[2], 1.0, sg), C.mul(o[3], (C.k(-h), sh))]
        return [C.add(e[k], o[k]) for k in range(4)] + [C.sub(e[k], o[k]) for k in range(4)]
    if R == 3:
        t = C.add(v[1], v[2])
        u = C.add(v[0], C.rmul(t, -0.5))
        d = C.muli_s(C.sub(v[1], v[2]), math.sin(2 * math.pi / 3), sg)
        return [C.add(v[0], t), C.add(u, d), C.sub(u, d)]
    if R == 5:
        c1, c2 = math.cos(2 * math.pi / 5), math.cos(4 * math.pi / 5)
        s1, s2 = math.sin(2 * math.pi / 5), math.sin(4 * math.pi / 5)
        a1, a2 = C.add(v[1], v[4]), C.add(v[2], v[3])
        b1, b2 = C.sub(v[1], v[4]), C.sub(v[2], v[3])
        u1 = C.add(v[0], C.add(C.rmul(a1, c1), C.rmul(a2, c2)))
        u2 = C.add(v[0], C.add(C.rmul(a1, c2), C.rmul(a2, c1)))
        d1 = C.add(C.muli_s(b1, s1, sg), C.muli_s(b2, s2, sg))
        d2 = C.sub(C.muli_s(b1, s2, sg), C.muli_s(b2, s1, sg))
        return [C.add(v[0], C.add(a1, a2)), C.add(u1, d1), C.add(u2, d2), C.sub(u2, d2), C.sub(u1, d1)]
    raise ValueError(f"fft kernel: no butterfly for radix {R}")


# ---- kernel scaffolding ---------------------------------------------------------------------------

class _Op:
    """A strided complex operand: pointer (to scalars) and strides in scalars."""

    def __init__(self, b, ft, slots):
        ptr, self.es, self.bs1, self.bs2, self.im = slots
        self.b = b
        self.p = b.inttoptr(ptr, ft.as_pointer())

    def load(self, off):
        b = self.b
        return (b.load(b.gep(self.p, [off])), b.load(b.gep(self.p, [b.add(off, self.im)])))

    def store(self, off, v):
        b = self.b
        b.store(v[0], b.gep(self.p, [off]))
        b.store(v[1], b.gep(self.p, [b.add(off, self.im)]))

    def row(self, b1, b2):
        b = self.b
        return b.add(b.mul(b1, self.bs1), b.mul(b2, self.bs2))


def _f64_slot(b, slot, k, ft):
    v = b.bitcast(slot(k), F64)
    return v if ft is F64 else b.fptrunc(v, ft)


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _max(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def generate(spec: FFTSpec, module: ir.Module, fname: str) -> None:
    """Emit the kernel ``fname`` for ``spec`` into ``module``."""
    ft = F32 if spec.dtype == "complex64" else F64
    if spec.phase == "stockham":
        _stockham(spec, module, fname, ft)
    elif spec.phase in POINTWISE_FIXED:
        from .fft_pointwise import pointwise
        pointwise(spec, module, fname, ft)
    elif spec.phase == "lanes":
        from .fft_lanes import lanes
        lanes(spec, module, fname, ft)
    else:
        raise ValueError(f"fft kernel: unknown phase {spec.phase!r}")


def _stockham(spec, module, fname, ft):
    _, b, slot, start, stop = kernel_entry(module, fname)
    C = _C(b, ft)
    one, zero = const(I64, 1), const(I64, 0)
    n, B1, B2, W, nchunk, p0, p1, P = (slot(i) for i in range(8))
    scale = _f64_slot(b, slot, 8, ft)
    sg = _f64_slot(b, slot, 9, ft)
    F = STOCKHAM_FIXED
    src0 = _Op(b, ft, [slot(F + i) for i in range(5)])
    out = _Op(b, ft, [slot(F + 5 + i) for i in range(5)])
    scr_a = b.inttoptr(slot(F + 10), ft.as_pointer())
    scr_b = b.inttoptr(slot(F + 11), ft.as_pointer())
    s_es, s_bs1, s_bs2, compact = (slot(F + 12 + i) for i in range(4))
    tw = b.inttoptr(slot(F + 16), ft.as_pointer())
    plan0 = F + 25
    col = spec.order == "col"
    npb2 = b.sdiv(b.add(B2, b.sub(W, one)), W)
    two = const(I64, 2)

    def pick(cond, x, y):
        o = _Op.__new__(_Op)
        o.b = b
        o.p, o.es, o.bs1, o.bs2, o.im = (b.select(cond, u, v) for u, v in (
            (x.p, y.p), (x.es, y.es), (x.bs1, y.bs1), (x.bs2, y.bs2), (x.im, y.im)))
        return o

    def unit_of(o):
        return b.and_(b.icmp_signed("==", o.im, one), b.icmp_signed("==", o.bs2 if col else o.es, two))

    with for_range(b, start, stop, name="w") as w:
        panel, chunk = b.sdiv(w, nchunk), b.srem(w, nchunk)
        b1 = b.sdiv(panel, npb2)
        c0 = b.mul(b.srem(panel, npb2), W)
        c1 = _min(b, b.add(c0, W), B2)
        # the scratch buffers: per panel compact (n x W pairs), or with the output's strides
        is_c = b.icmp_signed("!=", compact, zero)
        shift = b.select(is_c, b.sub(b.mul(panel, s_bs1), b.mul(c0, s_bs2)), zero)
        scr = []
        for base in (scr_a, scr_b):
            o = _Op.__new__(_Op)
            o.b, o.p, o.es, o.bs2, o.im = b, b.gep(base, [shift]), s_es, s_bs2, one
            o.bs1 = b.select(is_c, zero, s_bs1)
            scr.append(o)
        with for_range(b, p0, p1, name="p") as p:
            sl = b.add(const(I64, plan0), b.mul(p, const(I64, 3)))
            R, Ns, twoff = slot(sl), slot(b.add(sl, one)), slot(b.add(sl, two))
            m = b.sdiv(n, R)
            cs = b.sdiv(b.add(m, b.sub(nchunk, one)), nchunk)
            j0 = b.mul(chunk, cs)
            j1 = _min(b, b.add(j0, cs), m)
            t = b.sub(b.sub(P, one), p)  # passes after this one
            sc = b.select(b.icmp_signed("==", t, zero), scale, C.k(1.0))
            # pass p writes: out when it is the last, else A when P-1-p is odd, B when even
            odd = b.icmp_signed("!=", b.and_(t, one), zero)
            dst = pick(b.icmp_signed("==", t, zero), out, pick(odd, scr[0], scr[1]))
            # ... and reads the kernel's source (first pass of the launch) or what pass p-1 wrote
            first = b.icmp_signed("==", p, p0)
            prev_odd = b.icmp_signed("==", b.and_(t, one), zero)
            src = pick(first, src0, pick(prev_odd, scr[0], scr[1]))
            twp = b.gep(tw, [twoff])
            # unit layout (complex pairs adjacent along the vectorized loop): constant strides
            unit = b.and_(unit_of(dst), unit_of(src))
            # the twiddle-free first pass has its own loop in row order (col order: twiddles of 1)
            ns1 = b.icmp_signed("==", Ns, one) if not col else const(ir.IntType(1), 0)
            done = b.append_basic_block("radix.done")
            default = b.append_basic_block("radix.none")
            sw = b.switch(R, default)
            for radix in RADICES:
                blk = b.append_basic_block(f"radix{radix}")
                sw.add_case(const(I64, radix), blk)
                b.position_at_end(blk)
                if radix == 8:  # only between unit layouts (see RADIX8_RULE)
                    if not col:
                        u1, un = b.append_basic_block("r8.ns1"), b.append_basic_block("r8.nsn")
                        b.cbranch(ns1, u1, un)
                        b.position_at_end(u1)
                        _pass_call(b, spec, ft, fname, radix, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg,
                                   True, True)
                        b.branch(done)
                        b.position_at_end(un)
                    _pass_call(b, spec, ft, fname, radix, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg,
                               True, False)
                    b.branch(done)
                    continue
                gen_b, unit_b, after = (b.append_basic_block(f"r{radix}.{t}") for t in ("gen", "unit", "end"))
                b.cbranch(unit, unit_b, gen_b)
                b.position_at_end(gen_b)
                _pass_call(b, spec, ft, fname, radix, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg, False, False)
                b.branch(after)
                b.position_at_end(unit_b)
                if not col:
                    u1, un = b.append_basic_block(f"r{radix}.ns1"), b.append_basic_block(f"r{radix}.nsn")
                    b.cbranch(ns1, u1, un)
                    b.position_at_end(u1)
                    _pass_call(b, spec, ft, fname, radix, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg,
                               True, True)
                    b.branch(after)
                    b.position_at_end(un)
                _pass_call(b, spec, ft, fname, radix, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg, True, False)
                b.branch(after)
                b.position_at_end(after)
                b.branch(done)
            b.position_at_end(default)
            b.branch(done)
            b.position_at_end(done)
        if not col:  # the real transform's last step on the row just computed (still in cache)
            with b.if_then(b.icmp_signed("!=", slot(F + 17), zero)):
                xo = _Op(b, ft, [slot(F + 18 + i) for i in range(5)])
                ptab = b.inttoptr(slot(F + 23), ft.as_pointer())
                args = [b.gep(out.p, [out.row(b1, c0)]), out.es, out.im, b.gep(xo.p, [xo.row(b1, c0)]),
                        xo.es, xo.im, ptab, zero, b.add(n, one), n, _f64_slot(b, slot, F + 24, ft)]
                from .fft_pointwise import row_fn
                post = FFTSpec(spec.dtype, "rpost")
                unit = b.and_(unit_of(out), b.and_(b.icmp_signed("==", xo.es, two), b.icmp_signed("==", xo.im, one)))
                with b.if_else(unit) as (then, otherwise):
                    with then:
                        b.call(row_fn(module, post, ft, fname, True), args)
                    with otherwise:
                        b.call(row_fn(module, post, ft, fname, False), args)
    b.ret_void()


def _pass_call(b, spec, ft, fname, R, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg, unit, ns1):
    """Call the pass function of (R, unit, ns1), made once per module: its source, destination and
    twiddle pointers are ``noalias`` arguments, so its loops vectorize without runtime alias checks
    (a pass never writes what it reads)."""
    module = b.module
    name = f"{fname}_r{R}{'_unit' if unit else ''}{'_ns1' if ns1 else ''}"
    fn = module.globals.get(name)
    if fn is None:
        pt = ft.as_pointer()
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [pt] + [I64] * 4 + [pt] + [I64] * 4 + [pt]
                                                 + [I64] * 7 + [ft, ft]), name=name)
        fn.linkage = "internal"
        fn.attributes.add("noinline")  # one optimised function per pass kind: compile time stays low
        for k in (0, 5, 10):
            fn.args[k].add_attribute("noalias")
        fb = ir.IRBuilder(fn.append_basic_block("entry"))
        a = fn.args
        ops = []
        for base in (0, 5):
            op = _Op.__new__(_Op)
            op.b, op.p, op.es, op.bs1, op.bs2, op.im = fb, *a[base:base + 5]
            ops.append(op)
        _pass(fb, _C(fb, ft), spec, R, ops[0], ops[1], a[10], *a[11:18], a[18], a[19], unit, ns1)
        fb.ret_void()
    b.call(fn, [src.p, src.es, src.bs1, src.bs2, src.im, dst.p, dst.es, dst.bs1, dst.bs2, dst.im,
                twp, m, Ns, j0, j1, b1, c0, c1, sc, sg])


def _unit(op, col):
    """``op`` with the strides of the unit layout as constants (pairs adjacent along the inner loop)."""
    u = _Op.__new__(_Op)
    u.b, u.p, u.bs1 = op.b, op.p, op.bs1
    u.im = const(I64, 1)
    u.es, u.bs2 = (op.es, const(I64, 2)) if col else (const(I64, 2), op.bs2)
    return u


def _pass(b, C, spec, R, src, dst, twp, m, Ns, j0, j1, b1, c0, c1, sc, sg, unit, ns1):
    """One radix-R pass over butterflies ``[j0, j1)`` of rows ``(b1, c0..c1)``; ``unit``: the unit
    layout (constant strides, so the inner loop vectorizes); ``ns1``: the first pass (Ns == 1, no
    twiddles, a single loop over the butterflies in row order)."""
    one, zero = const(I64, 1), const(I64, 0)
    two = const(I64, 2)
    col = spec.order == "col"
    if unit:
        src, dst = _unit(src, col), _unit(dst, col)
    if ns1:
        Ns = one
    if ns1 and not col:  # j = q, k = 0: dst index j*R + r
        sb, db = src.row(b1, c0), dst.row(b1, c0)
        with for_range(b, j0, j1, name="j") as j:
            v = [src.load(b.add(sb, b.mul(b.add(j, b.mul(const(I64, r), m)), src.es))) for r in range(R)]
            y = butterfly(C, v, sg)
            jr = b.mul(j, const(I64, R))
            for r in range(R):
                dst.store(b.add(db, b.mul(b.add(jr, const(I64, r)), dst.es)), C.scale(y[r], sc))
        return
    nonempty = b.icmp_signed("<", j0, j1)
    q_hi = b.select(nonempty, b.add(b.sdiv(b.sub(j1, one), Ns), one), zero)
    q_lo = b.sdiv(j0, Ns)
    sbase0, dbase0 = src.row(b1, zero), dst.row(b1, zero)
    with for_range(b, q_lo, q_hi, name="q") as q:
        qn = b.mul(q, Ns)
        k_lo = _max(b, b.sub(j0, qn), zero)
        k_hi = _min(b, b.sub(j1, qn), Ns)
        dq = b.mul(qn, const(I64, R))
        with for_range(b, k_lo, k_hi, name="k") as k:
            j = b.add(qn, k)
            tws = [] if ns1 else [(b.load(b.gep(twp, [o])), b.load(b.gep(twp, [b.add(o, one)])))
                                  for o in (b.mul(b.add(b.mul(const(I64, r - 1), Ns), k), two) for r in range(1, R))]
            s_off = [b.mul(b.add(j, b.mul(const(I64, r), m)), src.es) for r in range(R)]
            d_off = [b.mul(b.add(b.add(dq, k), b.mul(const(I64, r), Ns)), dst.es) for r in range(R)]

            def body(c):
                sb = b.add(sbase0, b.mul(c, src.bs2))
                db = b.add(dbase0, b.mul(c, dst.bs2))
                v = [src.load(b.add(sb, s_off[r])) for r in range(R)]
                if not ns1:
                    v = [v[0]] + [C.mul(v[r], tws[r - 1]) for r in range(1, R)]
                y = butterfly(C, v, sg)
                for r in range(R):
                    dst.store(b.add(db, d_off[r]), C.scale(y[r], sc))

            if spec.order == "col":
                with for_range(b, c0, c1, name="c") as c:
                    body(c)
            else:
                body(c0)
