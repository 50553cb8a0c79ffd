"""Generator of the batched FFT across SIMD lanes (kind ``"fft"``, phase ``"lanes"``, see kernels.fft).

A group of ``L`` rows (8 for complex64, 4 for complex128: one AVX2 register of floats) is
transformed at once, each row in one lane of ``<L x float>`` vectors: every butterfly, twiddle
product and pointwise step is one vector operation for all ``L`` rows, with no shuffles (the
rows share the butterfly structure; a twiddle is one scalar broadcast to all lanes).

Per group: the rows are gathered (element ``j`` of the ``L`` rows into one vector of real parts
and one of imaginary parts) into a scratch buffer in *lane layout* (vector ``2j`` the real parts
of element ``j``, ``2j + 1`` its imaginary parts); the Stockham passes go back and forth between
two such buffers (unit stride everywhere, so every radix of kernels.fft.RADICES serves at every
pass); the result is scattered into the output rows times ``scale``, or, with ``post``, goes
through the real transform's ``rpost`` step (kernels.fft_pointwise) on its way out; with ``pre``
the inverse real transform's ``rpre`` step runs on the gathered rows first. The rows of a
last, partial group are the last row repeated: those lanes compute the last row's values again,
bit for bit (lanes are independent), and store them onto the same addresses.

Slots: ``n, rows, B2, gpw, P, scale, sign`` (scale and sign as float64 bits; row ``r`` is
``(r // B2, r % B2)`` of the operands), the source and output operands (five slots each, as in
kernels.fft), the scratch pointer (per work item ``2 * (n + 1) * L`` complex values), the pass
twiddle table, ``mode`` (0: a complex transform; 1 ``post``: the output has ``n + 1`` values per
row from the ``rpost`` step; 2 ``pre``: the source rows are ``n + 1`` values of half spectra, the
``rpre`` step makes the rows transformed), the ``rpost``/``rpre`` table, then per pass
``(R, Ns, twoff)`` as in the stockham phase. Work item ``w``
transforms groups ``[w*gpw, (w+1)*gpw)`` with its own scratch (cache-resident, reused by its groups).

Element ``j`` of the group's rows moves as whole vectors where the layout allows: rows with
adjacent pairs (``es == 2, im == 1``) as one vector load/store per row and an in-register L x L
transpose (``H = L/2`` elements at a time; AVX unpack/permute shuffles), lanes side by side in
memory (a group along a non-last axis) as two vectors and a shuffle; else element by element.

Only loads, stores, vector arithmetic, shuffles and element inserts/extracts: lowerable for NVPTX
(where the vectors are split into scalars; the cuda device keeps its own plans).
"""
from __future__ import annotations

from llvmlite import ir

from .fft import _C, _Op, _f64_slot, _min, butterfly
from .irb import F32, I32, I64, const, for_range, kernel_entry

__all__ = ["LANES", "LANES_FIXED", "lanes"]

#: rows per group (lanes of one vector register) per dtype
LANES = {"complex64": 8, "complex128": 4}
#: slots before the per-pass plan
LANES_FIXED = 21


class _Contract:
    """An IRBuilder whose float add/sub/mul carry the ``contract`` flag: a product and the sum it
    feeds may become one FMA (one rounding instead of two)."""

    def __init__(self, b):
        self._b = b

    def __getattr__(self, name):
        return getattr(self._b, name)

    def fadd(self, x, y, name=""):
        return self._b.fadd(x, y, name, flags=("contract",))

    def fsub(self, x, y, name=""):
        return self._b.fsub(x, y, name, flags=("contract",))

    def fmul(self, x, y, name=""):
        return self._b.fmul(x, y, name, flags=("contract",))


class _CV(_C):
    """Complex helpers on ``<L x float>`` vectors (constants are splats; products and sums may
    fuse into FMAs)."""

    def __init__(self, b, ft, L):
        super().__init__(_Contract(b), ft)
        self.vt = ir.VectorType(ft, L)
        self.L = L
        self.align = 4 if ft is F32 else 8

    def k(self, v):
        return ir.Constant(self.vt, [float(v)] * self.L)

    def splat(self, x):
        b, L = self.b, self.L
        u = b.insert_element(ir.Constant(self.vt, ir.Undefined), x, const(I32, 0))
        return b.shuffle_vector(u, ir.Constant(self.vt, ir.Undefined), ir.Constant(ir.VectorType(I32, L), [0] * L))


class _Lanes:
    """Complex lane vectors in a scratch buffer of lane layout (``p``: pointer to vectors)."""

    def __init__(self, b, p, align):
        self.b, self.p, self.align = b, p, align
        self.es = const(I64, 1)

    def load(self, j):
        b = self.b
        j2 = b.shl(j, const(I64, 1))
        return (b.load(b.gep(self.p, [j2]), align=self.align),
                b.load(b.gep(self.p, [b.add(j2, const(I64, 1))]), align=self.align))

    def store(self, j, v):
        b = self.b
        j2 = b.shl(j, const(I64, 1))
        b.store(v[0], b.gep(self.p, [j2]), align=self.align)
        b.store(v[1], b.gep(self.p, [b.add(j2, const(I64, 1))]), align=self.align)


class _Rows:
    """Element ``j`` of ``L`` strided rows (lane ``l`` at scalar offset ``offs[l]`` of ``op``) as
    complex lane vectors: gathered loads, scattered stores."""

    def __init__(self, C, op, offs):
        self.C, self.op, self.offs = C, op, offs
        self.es = const(I64, 1)

    def _at(self, j):
        b, op = self.C.b, self.op
        e = b.mul(j, op.es)
        return [b.add(o, e) for o in self.offs]

    def load(self, j):
        b, op, C = self.C.b, self.op, self.C
        re = im = ir.Constant(C.vt, ir.Undefined)
        for l, at in enumerate(self._at(j)):
            x = op.load(at)
            re = b.insert_element(re, x[0], const(I32, l))
            im = b.insert_element(im, x[1], const(I32, l))
        return re, im

    def store(self, j, v):
        b, op = self.C.b, self.op
        for l, at in enumerate(self._at(j)):
            op.store(at, (b.extract_element(v[0], const(I32, l)), b.extract_element(v[1], const(I32, l))))

    # adjacent lanes (lane l at offs[0] + 2*l, im == 1): element j of all lanes is 2L scalars in a row
    def adjacent(self):
        """Whether the lanes' pairs are side by side in memory (an i1 value)."""
        b, op = self.C.b, self.op
        ok = b.icmp_signed("==", op.im, const(I64, 1))
        for l, o in enumerate(self.offs[1:], 1):
            ok = b.and_(ok, b.icmp_signed("==", o, b.add(self.offs[0], const(I64, 2 * l))))
        return ok

    def _pair_ptrs(self, j):
        b, C, op = self.C.b, self.C, self.op
        p = b.bitcast(b.gep(op.p, [b.add(self.offs[0], b.mul(j, op.es))]), C.vt.as_pointer())
        return p, b.gep(p, [const(I64, 1)])

    def load_adjacent(self, j):
        b, L = self.C.b, self.C.L
        v0, v1 = (b.load(p, align=self.C.align) for p in self._pair_ptrs(j))
        return tuple(b.shuffle_vector(v0, v1, _mask(list(range(h, 2 * L, 2)))) for h in (0, 1))

    def store_adjacent(self, j, v):
        b, L = self.C.b, self.C.L
        for h, p in enumerate(self._pair_ptrs(j)):
            m = [i for k in range(h * L // 2, (h + 1) * L // 2) for i in (k, L + k)]
            b.store(b.shuffle_vector(v[0], v[1], _mask(m)), p, align=self.C.align)

    # unit rows (pairs adjacent: es == 2, im == 1): blocks of H = L/2 elements, one vector per row
    def _row_ptrs(self, j):
        b, C = self.C.b, self.C
        return [b.bitcast(b.gep(self.op.p, [at]), C.vt.as_pointer()) for at in self._at(j)]

    def load_block(self, j):
        """Elements ``j .. j+H`` of unit rows: one vector load per row and a transpose."""
        b, C = self.C.b, self.C
        cols = transpose(b, [b.load(p, align=C.align) for p in self._row_ptrs(j)])
        return [(cols[2 * k], cols[2 * k + 1]) for k in range(C.L // 2)]

    def store_block(self, j, vals):
        """Store elements ``j .. j+H`` (``vals``, H lane pairs) of unit rows: a transpose and one
        vector store per row."""
        b, C = self.C.b, self.C
        rows = transpose(b, [x for v in vals for x in v])
        for p, v in zip(self._row_ptrs(j), rows):
            b.store(v, p, align=C.align)


def _network(L: int):
    """The shuffle stages of an L x L transpose of L-lane vectors (16-byte halves of ``w`` lanes
    unpacked first, as AVX does: one instruction each), and the column each result holds, found by
    running the stages on the index matrix."""
    w = 16 // (32 // L)  # lanes per 16 bytes (4 floats, 2 doubles)
    stages, s, g = [], 1, 1
    while g < w:  # unpack pairs of vectors s apart in units of g within each 16-byte part
        lo, hi = [], []
        for base in range(0, L, w):
            for half, m in ((0, lo), (w // 2, hi)):
                for u in range(0, w // 2, g):
                    m += [base + half + u + t for t in range(g)] + [L + base + half + u + t for t in range(g)]
        stages.append((s, lo, hi))
        s, g = 2 * s, 2 * g
    blk = w
    while s < L:  # whole blocks across the 16-byte parts
        lo, hi = [], []
        for base in range(0, L, 2 * blk):
            lo += list(range(base, base + blk)) + list(range(L + base, L + base + blk))
            hi += list(range(base + blk, base + 2 * blk)) + list(range(L + base + blk, L + base + 2 * blk))
        stages.append((s, lo, hi))
        s, blk = 2 * s, 2 * blk
    vs = [[(r, c) for c in range(L)] for r in range(L)]
    for s, lo, hi in stages:
        vs = _apply(vs, s, lo, hi, lambda a, c, m: [(a + c)[i] for i in m])
    cols = []
    for v in vs:
        assert [r for r, _ in v] == list(range(L)) and len({c for _, c in v}) == 1
        cols.append(v[0][1])
    return stages, cols


def _apply(vs, s, lo, hi, shuffle):
    out = list(vs)
    for i in range(len(vs)):
        if not i & s:
            out[i], out[i + s] = shuffle(vs[i], vs[i + s], lo), shuffle(vs[i], vs[i + s], hi)
    return out


def _mask(m: list):
    return ir.Constant(ir.VectorType(I32, len(m)), m)


def transpose(b, vs: list) -> list:
    """The transpose of L vectors of L lanes: result ``c`` holds lane ``c`` of every input."""
    L = len(vs)
    stages, cols = _network(L)
    for s, lo, hi in stages:
        vs = _apply(vs, s, lo, hi, lambda a, c, m: b.shuffle_vector(a, c, _mask(m)))
    out = [None] * L
    for v, c in zip(vs, cols):
        out[c] = v
    return out


def lanes(spec, module, fname, ft):
    """Emit the lanes kernel ``fname`` (see the module docstring)."""
    from .fft_pointwise import _point
    L = LANES[spec.dtype]
    _, b, slot, start, stop = kernel_entry(module, fname)
    C = _CV(b, ft, L)
    vp = C.vt.as_pointer()
    one, zero = const(I64, 1), const(I64, 0)
    n, rows, B2, gpw, P = (slot(i) for i in range(5))
    scale, sg = C.splat(_f64_slot(b, slot, 5, ft)), C.splat(_f64_slot(b, slot, 6, ft))
    src = _Op(b, ft, [slot(7 + i) for i in range(5)])
    out = _Op(b, ft, [slot(12 + i) for i in range(5)])
    scr = b.inttoptr(slot(17), vp)
    tw = b.inttoptr(slot(18), ft.as_pointer())
    post = b.icmp_signed("==", slot(19), one)
    pre = b.icmp_signed("==", slot(19), const(I64, 2))
    ptab = b.inttoptr(slot(20), ft.as_pointer())
    align = 4 if ft is F32 else 8
    ngroups = b.sdiv(b.add(rows, const(I64, L - 1)), const(I64, L))
    last = b.sub(rows, one)
    n2 = b.shl(b.add(n, one), one)  # vectors of a buffer: n + 1 lane pairs

    def tab_at(k):
        o = b.shl(k, one)
        return (C.splat(b.load(b.gep(ptab, [o]))), C.splat(b.load(b.gep(ptab, [b.add(o, one)]))))

    with for_range(b, start, stop, name="w") as w:
        base = b.gep(scr, [b.mul(w, b.shl(n2, one))])
        bufs = (base, b.gep(base, [n2]))
        g0 = b.mul(w, gpw)
        with for_range(b, g0, _min(b, b.add(g0, gpw), ngroups), name="g") as g:
            soffs, ooffs = [], []
            r = _min(b, b.mul(g, const(I64, L)), last)
            r1, r2 = b.sdiv(r, B2), b.srem(r, B2)
            for l in range(L):
                if l:  # the next row (r1, r2) unless r is the last one: no division per lane
                    adv = b.icmp_signed("<", r, last)
                    r = b.select(adv, b.add(r, one), r)
                    r2n = b.add(r2, one)
                    wrap = b.and_(adv, b.icmp_signed("==", r2n, B2))
                    r1 = b.select(wrap, b.add(r1, one), r1)
                    r2 = b.select(wrap, zero, b.select(adv, r2n, r2))
                soffs.append(src.row(r1, r2))
                ooffs.append(out.row(r1, r2))
            first = _Lanes(b, bufs[0], align)
            with b.if_else(pre) as (then, otherwise):
                with then:  # half spectra X[0..n] into buffer 1, the rpre step into buffer 0
                    half = _Lanes(b, bufs[1], align)
                    _rows_loop(b, C, _Rows(C, src, soffs), b.add(n, one), None, half.store)
                    with for_range(b, zero, n, name="z") as k:
                        _point(b, C, "rpre", half, first, zero, zero, k, n, tab_at, C.k(1.0))
                with otherwise:
                    _rows_loop(b, C, _Rows(C, src, soffs), n, None, first.store)
            with for_range(b, zero, P, name="p") as p:
                _pass_switch(b, C, fname, slot, p, bufs, tw, n, sg, align)
            res = _Lanes(b, b.select(b.icmp_signed("!=", b.and_(P, one), zero), bufs[1], bufs[0]), align)
            dst = _Rows(C, out, ooffs)
            with b.if_else(post) as (then, otherwise):
                with then:  # X[0..n] of the real rows whose packing was transformed

                    def rpost(k):
                        rec = _Value()
                        _point(b, C, "rpost", res, rec, zero, zero, k, n, tab_at, scale)
                        return rec.v

                    _rows_loop(b, C, dst, b.add(n, one), rpost, None)
                with otherwise:
                    _rows_loop(b, C, dst, n, lambda k: C.scale(res.load(k), scale), None)
    b.ret_void()


class _Value:
    """Stands for the destination of fft_pointwise._point: keeps the value it stores."""
    es = const(I64, 1)

    def store(self, off, v):
        self.v = v


def _unit(b, op):
    """Whether ``op``'s rows have adjacent pairs (es == 2, im == 1)."""
    return b.and_(b.icmp_signed("==", op.es, const(I64, 2)), b.icmp_signed("==", op.im, const(I64, 1)))


def _rows_loop(b, C, rows, count, value, sink):
    """Elements ``[0, count)`` between the strided rows ``rows`` and the lanes: with ``sink``
    (``sink(j, v)``) loaded from the rows, else ``value(j)`` stored into them. Unit rows go in blocks
    of H = L/2 elements (a vector per row, transposed); rows whose elements ``j`` are adjacent (a
group along a non-last axis) as two vectors per element; the rest one element at a time."""
    zero = const(I64, 0)
    with b.if_else(rows.adjacent()) as (then, otherwise):
        with then:  # the lanes' elements j side by side: two vector loads or stores
            with for_range(b, zero, count, name="ja") as j:
                if sink is not None:
                    sink(j, rows.load_adjacent(j))
                else:
                    rows.store_adjacent(j, value(j))
        with otherwise:
            H = const(I64, C.L // 2)
            nblk = b.select(_unit(b, rows.op), b.sdiv(count, H), zero)
            with for_range(b, zero, nblk, name="jb") as jb:
                j = b.mul(jb, H)
                if sink is not None:
                    for k, v in enumerate(rows.load_block(j)):
                        sink(b.add(j, const(I64, k)), v)
                else:
                    rows.store_block(j, [value(b.add(j, const(I64, k))) for k in range(C.L // 2)])
            with for_range(b, b.mul(nblk, H), count, name="j") as j:
                if sink is not None:
                    sink(j, rows.load(j))
                else:
                    rows.store(j, value(j))


def _pass_switch(b, C, fname, slot, p, bufs, tw, n, sg, align):
    """Pass ``p``: from buffer ``p % 2`` into the other, the radix's function chosen at run time."""
    from .fft import RADICES
    one = const(I64, 1)
    sl = b.add(const(I64, LANES_FIXED), b.mul(p, const(I64, 3)))
    R, Ns, twoff = slot(sl), slot(b.add(sl, one)), slot(b.add(sl, const(I64, 2)))
    odd = b.icmp_signed("!=", b.and_(p, one), const(I64, 0))
    x, y = b.select(odd, bufs[1], bufs[0]), b.select(odd, bufs[0], bufs[1])
    args = [x, y, b.gep(tw, [twoff]), b.sdiv(n, R), Ns, sg]
    done = b.append_basic_block("radix.done")
    sw = b.switch(R, done)
    for radix in RADICES:
        blk = b.append_basic_block(f"radix{radix}")
        sw.add_case(const(I64, radix), blk)
        b.position_at_end(blk)
        ns1 = b.icmp_signed("==", Ns, one)
        with b.if_else(ns1) as (then, otherwise):
            with then:
                b.call(_pass_fn(b.module, C, fname, radix, True, align), args)
            with otherwise:
                b.call(_pass_fn(b.module, C, fname, radix, False, align), args)
        b.branch(done)
    b.position_at_end(done)


def _pass_fn(module, C, fname, R, ns1, align):
    """The radix-R pass between lane buffers ``x -> y`` (``noalias``), made once per module;
    ``ns1``: the first pass (Ns == 1, twiddles of 1 skipped)."""
    name = f"{fname}_r{R}{'_ns1' if ns1 else ''}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    vp, ft = C.vt.as_pointer(), C.ft
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [vp, vp, ft.as_pointer(), I64, I64, C.vt]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    for k in (0, 1, 2):
        fn.args[k].add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    V = _CV(b, ft, C.L)
    xp, yp, twp, m, Ns, sg = fn.args
    x, y = _Lanes(b, xp, align), _Lanes(b, yp, align)
    zero, one = const(I64, 0), const(I64, 1)
    with for_range(b, zero, b.sdiv(m, Ns), name="q") as q:
        qn = b.mul(q, Ns)
        dq = b.mul(qn, const(I64, R))
        with for_range(b, zero, Ns, name="k") as k:
            j = b.add(qn, k)
            v = [x.load(b.add(j, b.mul(const(I64, r), m))) for r in range(R)]
            if not ns1:
                for r in range(1, R):
                    o = b.shl(b.add(b.mul(const(I64, r - 1), Ns), k), one)
                    t = (V.splat(b.load(b.gep(twp, [o]))), V.splat(b.load(b.gep(twp, [b.add(o, one)]))))
                    v[r] = V.mul(v[r], t)
            yv = butterfly(V, v, sg)
            d = b.add(dq, k)
            for r in range(R):
                y.store(b.add(d, b.mul(const(I64, r), Ns)), yv[r])
    b.ret_void()
    return fn
