"""Generator of the pointwise steps around the FFT passes (kind ``"fft"``, see kernels.fft): the
chirp multiply of Bluestein's algorithm, the pre/post steps of real transforms and the Hermitian
extension; each row is cut into chunks that are work items.
"""
from __future__ import annotations

from llvmlite import ir

from .fft import POINTWISE_FIXED, _C, _Op, _f64_slot, _max, _min
from .irb import I64, const, for_range, kernel_entry


def pointwise(spec, module, fname, ft):
    """Emit the pointwise-step kernel ``fname`` (chirp multiply, real pre/post steps, Hermitian
    extension; see kernels.fft) over rows cut into chunks."""
    _, b, slot, start, stop = kernel_entry(module, fname)
    one = const(I64, 1)
    F = POINTWISE_FIXED[spec.phase]
    if spec.phase == "cmul":
        L, Lpad, B1, B2, nchunk = (slot(i) for i in range(5))
        length = Lpad
    else:
        L, B1, B2, nchunk = (slot(i) for i in range(4))
        # rpost writes h+1 values, rpre h, hext n
        length = b.add(L, one) if spec.phase == "rpost" else L
    scale = _f64_slot(b, slot, F - 1, ft)
    src = _Op(b, ft, [slot(F + i) for i in range(5)])
    dst = _Op(b, ft, [slot(F + 5 + i) for i in range(5)])
    tab = b.inttoptr(slot(F + 10), ft.as_pointer())
    cs = b.sdiv(b.add(length, b.sub(nchunk, one)), nchunk)
    two = const(I64, 2)
    unit = b.and_(b.and_(b.icmp_signed("==", src.es, two), b.icmp_signed("==", dst.es, two)),
                  b.and_(b.icmp_signed("==", src.im, one), b.icmp_signed("==", dst.im, one)))
    with for_range(b, start, stop, name="w") as w:
        row, chunk = b.sdiv(w, nchunk), b.srem(w, nchunk)
        r1, r2 = b.sdiv(row, B2), b.srem(row, B2)
        sp, dp = b.gep(src.p, [src.row(r1, r2)]), b.gep(dst.p, [dst.row(r1, r2)])
        j0 = b.mul(chunk, cs)
        j1 = _min(b, b.add(j0, cs), length)
        args = [sp, src.es, src.im, dp, dst.es, dst.im, tab, j0, j1, L, scale]
        with b.if_else(unit) as (then, otherwise):
            with then:
                b.call(row_fn(module, spec, ft, fname, True), args)
            with otherwise:
                b.call(row_fn(module, spec, ft, fname, False), args)
    b.ret_void()


def row_fn(module, spec, ft, fname, unit):
    """The loop over values ``[j0, j1)`` of one row of a pointwise step, as a function whose
    pointers are ``noalias`` (source, destination and table never overlap); ``unit``: both rows
    have adjacent pairs (constant strides, the loop vectorizes)."""
    name = f"{fname}_row{'_unit' if unit else ''}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    pt = ft.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [pt, I64, I64, pt, I64, I64, pt] + [I64] * 3 + [ft]),
                     name=name)
    fn.linkage = "internal"
    for k in (0, 3, 6):
        fn.args[k].add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    C = _C(b, ft)
    sp, ses, sim, dp, des, dim, tab, j0, j1, L, scale = fn.args
    one, zero = const(I64, 1), const(I64, 0)
    if unit:
        ses = des = const(I64, 2)
        sim = dim = one
    src, dst = _Op.__new__(_Op), _Op.__new__(_Op)
    src.b, src.p, src.es, src.im, src.bs1, src.bs2 = b, sp, ses, sim, zero, zero
    dst.b, dst.p, dst.es, dst.im, dst.bs1, dst.bs2 = b, dp, des, dim, zero, zero

    def tab_at(j):
        o = b.shl(j, one)
        return (b.load(b.gep(tab, [o])), b.load(b.gep(tab, [b.add(o, one)])))

    if spec.phase == "cmul":
        mid = _max(b, _min(b, L, j1), j0)
        with for_range(b, j0, mid, name="j") as j:
            v = C.mul(src.load(b.mul(j, src.es)), tab_at(j))
            dst.store(b.mul(j, dst.es), C.scale(v, scale))
        zf = C.k(0.0)
        with for_range(b, mid, j1, name="z") as j:
            dst.store(b.mul(j, dst.es), (zf, zf))
    else:
        with for_range(b, j0, j1, name="j") as k:
            _point(b, C, spec.phase, src, dst, zero, zero, k, L, tab_at, scale)
    b.ret_void()
    return fn


def _point(b, C, phase, src, dst, sb, db, k, L, tab_at, scale):
    """One output value of the rpost / rpre / hext steps."""
    zero = const(I64, 0)
    if phase == "hext":
        h1 = b.add(b.sdiv(L, const(I64, 2)), const(I64, 1))
        low = b.icmp_signed("<", k, h1)
        idx = b.select(low, k, b.sub(L, k))
        v = src.load(b.add(sb, b.mul(idx, src.es)))
        v = (v[0], b.select(low, v[1], b.fneg(v[1])))
        dst.store(b.add(db, b.mul(k, dst.es)), C.scale(v, scale))
        return
    hk = b.sub(L, k)
    if phase == "rpost":  # X[k] = E + t[k] O, E = (Zk + conj Zh-k)/2, O = (Zk - conj Zh-k)/(2i)
        ka = b.select(b.icmp_signed("==", k, L), zero, k)
        kb = b.select(b.icmp_signed("==", hk, L), zero, hk)
        zk = src.load(b.add(sb, b.mul(ka, src.es)))
        zc = C.conj(src.load(b.add(sb, b.mul(kb, src.es))))
        e = C.rmul(C.add(zk, zc), 0.5)
        o = C.muli(C.sub(zk, zc), -0.5)
        v = C.add(e, C.mul(tab_at(k), o))
    else:  # rpre: Z[k] = (Xk + conj Xh-k) + i t[k] (Xk - conj Xh-k); DC and Nyquist imag ignored
        xk = src.load(b.add(sb, b.mul(k, src.es)))
        xc = C.conj(src.load(b.add(sb, b.mul(hk, src.es))))
        is0 = b.icmp_signed("==", k, zero)
        zf = C.k(0.0)
        xk = (xk[0], b.select(is0, zf, xk[1]))
        xc = (xc[0], b.select(is0, zf, xc[1]))
        v = C.add(C.add(xk, xc), C.muli(C.mul(tab_at(k), C.sub(xk, xc)), 1.0))
    dst.store(b.add(db, b.mul(k, dst.es)), C.scale(v, scale))
