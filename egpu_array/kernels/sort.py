"""Generator of sort kernels: a stable bottom-up merge sort of contiguous rows, with a scratch buffer.

``void NAME(i64* args, i64 start, i64 stop)``. ``args``: ``n_rows``, ``row_len``, ``seg`` (segment
length, or run width of a merge pass), ``nseg`` (segments per row, or pairs per row), then pointers:
keys A, keys B (scratch), indices A, indices B (int64; unused without ``with_idx``).

- ``phase == "local"``: work item ``w`` sorts segment ``w % nseg`` of row ``w // nseg`` in place in
  A (B is the scratch): insertion sort of runs of :data:`RUN`, then merge passes. With ``with_idx``
  it first sets the indices to the positions within the row.
- ``phase == "merge"``: work item ``w`` merges pair ``w % nseg`` of sorted runs of width ``seg``
  (runs ``[2p*seg, 2p*seg+seg)`` and the next one) of row ``w // nseg`` from A into B. The caller
  swaps A and B between passes, so a row that is one segment needs no merge launch at all.

The order is a total order: NaNs after every number (NumPy's order; complex values compare
lexicographically, real part first, with that order on each part); ``-0.0 == 0.0``. Descending
sorts reverse the comparison (so NaNs come first) and stay stable: a merge takes the right element
only when it strictly precedes the left one.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I1, I64, const, for_range, mem_type, while_loop
from .spec import SortSpec

__all__ = ["generate_sort", "Keys", "RUN"]

#: length of the runs sorted by insertion before merging
RUN = 16


class Keys:
    """Load, store and compare elements of one dtype (complex: (re, im) pairs) in a kernel."""

    def __init__(self, b: ir.IRBuilder, dtype):
        self.b = b
        self.dtype = dtype
        self.cplx = dtype.kind == "c"

    def ptr(self, raw):
        return self.b.inttoptr(raw, mem_type(self.dtype).as_pointer())

    def load(self, ptr, i):
        b = self.b
        if self.cplx:
            i2 = b.shl(i, const(I64, 1))
            return (b.load(b.gep(ptr, [i2])), b.load(b.gep(ptr, [b.add(i2, const(I64, 1))])))
        return b.load(b.gep(ptr, [i]))

    def store(self, ptr, i, v):
        b = self.b
        if self.cplx:
            i2 = b.shl(i, const(I64, 1))
            b.store(v[0], b.gep(ptr, [i2]))
            b.store(v[1], b.gep(ptr, [b.add(i2, const(I64, 1))]))
        else:
            b.store(v, b.gep(ptr, [i]))

    def select(self, c, x, y):
        if self.cplx:
            return (self.b.select(c, x[0], y[0]), self.b.select(c, x[1], y[1]))
        return self.b.select(c, x, y)

    def _flt(self, x, y):
        b = self.b
        lt = b.fcmp_ordered("<", x, y)
        return b.or_(lt, b.and_(b.fcmp_unordered("uno", y, y), b.fcmp_ordered("ord", x, x)))

    def lt(self, x, y) -> ir.Value:
        """``x`` strictly before ``y`` in the total order (NaNs last)."""
        b = self.b
        kind = self.dtype.kind
        if kind == "c":  # NumPy's order: R+Rj < R+nanj < nan+Rj < nan+nanj, each lexicographic
            (xr, xi), (yr, yi) = x, y
            x_im, y_im_nan = b.fcmp_ordered("ord", xi, xi), b.fcmp_unordered("uno", yi, yi)
            same = b.or_(b.fcmp_ordered("==", xr, yr),
                         b.and_(b.fcmp_unordered("uno", xr, xr), b.fcmp_unordered("uno", yr, yr)))
            return b.select(b.fcmp_ordered("<", xr, yr), b.or_(x_im, y_im_nan),
                            b.select(b.fcmp_ordered(">", xr, yr), b.and_(y_im_nan, x_im),
                                     b.select(same, self._flt(xi, yi), b.fcmp_unordered("uno", yr, yr))))
        if kind == "f":
            return self._flt(x, y)
        if kind == "i":
            return b.icmp_signed("<", x, y)
        return b.icmp_unsigned("<", x, y)

    def eq(self, x, y) -> ir.Value:
        """``x == y`` (NaN equals nothing; ``-0.0 == 0.0``)."""
        b = self.b
        kind = self.dtype.kind
        if kind == "c":
            return b.and_(b.fcmp_ordered("==", x[0], y[0]), b.fcmp_ordered("==", x[1], y[1]))
        if kind == "f":
            return b.fcmp_ordered("==", x, y)
        return b.icmp_unsigned("==", x, y)


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)




class _Sorter:
    def __init__(self, b, spec: SortSpec):
        self.b = b
        self.keys = Keys(b, dtype_named(spec.dtype))
        self.desc = spec.descending
        self.with_idx = spec.with_idx

    def before(self, r, l):
        """Whether ``r`` (a later element) must be placed before ``l``."""
        return self.keys.lt(l, r) if self.desc else self.keys.lt(r, l)

    def copy(self, sk, dk, si, di, lo, hi, shift):
        """dst[t + shift] = src[t] for t in [lo, hi)."""
        b, K = self.b, self.keys
        with for_range(b, lo, hi, name="cp") as t:
            d = b.add(t, shift)
            K.store(dk, d, K.load(sk, t))
            if self.with_idx:
                b.store(b.load(b.gep(si, [t])), b.gep(di, [d]))

    def merge(self, sk, dk, si, di, a0, m, e):
        """Merge the sorted runs src[a0:m] and src[m:e] into dst[a0:e] (stable, branch-free step)."""
        b, K = self.b, self.keys
        one = const(I64, 1)

        def cond(v):
            i, j = v
            return b.and_(b.icmp_signed("<", i, m), b.icmp_signed("<", j, e))

        def body(v):
            i, j = v
            vi, vj = K.load(sk, i), K.load(sk, j)
            take = self.before(vj, vi)
            k = b.sub(b.add(i, j), m)
            K.store(dk, k, K.select(take, vj, vi))
            if self.with_idx:
                xi, xj = b.load(b.gep(si, [i])), b.load(b.gep(si, [j]))
                b.store(b.select(take, xj, xi), b.gep(di, [k]))
            t = b.zext(take, I64)
            return [b.add(i, b.sub(one, t)), b.add(j, t)]

        i, j = while_loop(b, [a0, m], cond, body, "mg")
        self.copy(sk, dk, si, di, i, m, b.sub(j, m))
        self.copy(sk, dk, si, di, j, e, const(I64, 0))

    def insertion(self, ak, ai, s, t):
        """Stable insertion sort of a[s:t] in place."""
        b, K = self.b, self.keys
        with for_range(b, b.add(s, const(I64, 1)), t, name="ins") as i:
            x = K.load(ak, i)
            xi = b.load(b.gep(ai, [i])) if self.with_idx else None
            pre = b.block
            head, check, shift, done = (b.append_basic_block(f"is.{n}") for n in ("head", "check", "shift", "done"))
            b.branch(head)
            b.position_at_end(head)
            k = b.phi(I64)
            k.add_incoming(i, pre)
            b.cbranch(b.icmp_signed(">", k, s), check, done)
            b.position_at_end(check)
            km1 = b.sub(k, const(I64, 1))
            y = K.load(ak, km1)
            b.cbranch(self.before(x, y), shift, done)
            b.position_at_end(shift)
            K.store(ak, k, y)
            if self.with_idx:
                b.store(b.load(b.gep(ai, [km1])), b.gep(ai, [k]))
            k.add_incoming(km1, shift)
            b.branch(head)
            b.position_at_end(done)
            K.store(ak, k, x)
            if self.with_idx:
                b.store(xi, b.gep(ai, [k]))

    def local(self, ak, bk, ai, bi, lo, hi, base):
        """Sort a[lo:hi] (global element offsets) in place; indices start as positions in the row."""
        b = self.b
        if self.with_idx:
            with for_range(b, lo, hi, name="init") as t:
                b.store(b.sub(t, base), b.gep(ai, [t]))
        run = const(I64, RUN)

        def ins_body(v):
            (r0,) = v
            r1 = _min(b, b.add(r0, run), hi)
            self.insertion(ak, ai, r0, r1)
            return [r1]

        while_loop(b, [lo], lambda v: b.icmp_signed("<", v[0], hi), ins_body, "runs")
        n = b.sub(hi, lo)
        flag0 = ir.Constant(I1, 0)

        def pass_cond(v):
            return b.icmp_signed("<", v[0], n)

        def pass_body(v):
            width, sk, dk, si, di, flipped = v
            w2 = b.add(width, width)

            def mbody(u):
                (p,) = u
                m = _min(b, b.add(p, width), hi)
                e = _min(b, b.add(p, w2), hi)
                self.merge(sk, dk, si, di, p, m, e)
                return [e]

            while_loop(b, [lo], lambda u: b.icmp_signed("<", u[0], hi), mbody, "pairs")
            return [w2, dk, sk, di, si, b.xor(flipped, ir.Constant(I1, 1))]

        width, sk, dk, si, di, flipped = while_loop(b, [run, ak, bk, ai, bi, flag0], pass_cond, pass_body, "pass")
        with _if(b, flipped):
            self.copy(sk, ak, si, ai, lo, hi, const(I64, 0))


class _if:
    """``with _if(b, cond):`` emits the body only when ``cond`` holds."""

    def __init__(self, b, cond):
        self.b, self.cond = b, cond

    def __enter__(self):
        b = self.b
        self.then = b.append_basic_block("if.then")
        self.done = b.append_basic_block("if.done")
        b.cbranch(self.cond, self.then, self.done)
        b.position_at_end(self.then)

    def __exit__(self, *exc):
        if exc[0] is None:
            self.b.branch(self.done)
            self.b.position_at_end(self.done)
        return False


def generate_sort(spec: SortSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the sort kernel for ``spec`` to ``module`` under the name ``fname``."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slot = lambda k: b.load(b.gep(args, [const(I64, k)]))  # noqa: E731
    if spec.phase in ("hist", "hist_all", "hist_low", "prefix", "scatter", "scatter_first"):
        from .sort_radix import generate_radix
        generate_radix(spec, b, slot, start, stop)
        b.ret_void()
        return fn
    if spec.phase.startswith(("rows", "net")):
        from .sort_network import generate_network
        from .sort_radix import generate_radix_rows
        (generate_radix_rows if spec.phase.startswith("rows") else generate_network)(spec, b, slot, start, stop)
        b.ret_void()
        return fn
    row_len, seg, nseg = slot(1), slot(2), slot(3)
    s = _Sorter(b, spec)
    K = s.keys
    ak, bk = K.ptr(slot(4)), K.ptr(slot(5))
    ai, bi = (b.inttoptr(slot(k), I64.as_pointer()) for k in (6, 7))
    with for_range(b, start, stop, name="w") as w:
        row = b.sdiv(w, nseg)
        part = b.srem(w, nseg)
        base = b.mul(row, row_len)
        if spec.phase == "local":
            lo = b.mul(part, seg)
            hi = _min(b, b.add(lo, seg), row_len)
            with _if(b, b.icmp_signed("<", lo, hi)):
                s.local(ak, bk, ai, bi, b.add(base, lo), b.add(base, hi), base)
        else:
            a0 = b.mul(part, b.add(seg, seg))
            m = _min(b, b.add(a0, seg), row_len)
            e = _min(b, b.add(m, seg), row_len)
            s.merge(ak, bk, ai, bi, b.add(base, a0), b.add(base, m), b.add(base, e))
    b.ret_void()
    return fn

