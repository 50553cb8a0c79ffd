"""Generator of multi-copy kernels: many strided pieces copied (and cast) in one launch.

``concat``, ``stack`` and ``roll`` copy several source views into views of one output. One kernel
does all of it: the pieces are described in the argument block at run time (so one compiled
kernel serves any number of pieces, of any shapes and strides), and the work items are
``(piece, flat range)`` pairs, so big pieces are split across threads and small ones cost little.

Kernel ``void NAME(i64* args, i64 start, i64 stop)``; ``args``:

- slot 0: ``R``, the slot where the piece records start;
- work item ``w``: slots ``1 + 3w .. 3 + 3w``: piece number, first and end flat element (C order
  over the piece's shape);
- piece record ``k`` at ``R + k * (4 + 3 * ndim)``: source dtype code (an index into
  ``spec.src_dtypes``), tiling (0, or the super-block side in blocks), source pointer, destination pointer, ``ndim`` extents,
  ``ndim`` source strides, ``ndim`` destination strides (elements).

Rows of the innermost dimension are copied by a counted loop; when both inner strides are 1 the
loop is the contiguous one LLVM vectorizes. A *tiled* piece (a transposing copy: the source's
unit stride is along dimension ``ndim - 2``, the destination's along the last one) is walked in
TILE x TILE blocks of its last two dimensions, grouped in super-blocks, so both sides stay in
cache and in the TLB; its work items count blocks instead of elements.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, add_offsets, const, for_range
from .ops import cast
from .scatter import _Mem
from .sort import _while

__all__ = ["CopiesSpec", "record_size", "generate", "TILE"]

#: block edge of tiled (transposing) pieces, in elements
TILE = 16


@dataclass(frozen=True)
class CopiesSpec:
    """Copies into an ``out_dtype`` destination from sources of any of ``src_dtypes`` (chosen per
    piece at run time, cast in the kernel), over ``ndim`` dimensions per piece."""
    out_dtype: str
    src_dtypes: tuple
    ndim: int

    kind = "copies"

    @property
    def name(self) -> str:
        return f"copies_{self.out_dtype}_from_{'_'.join(self.src_dtypes)}"


def record_size(ndim: int) -> int:
    """Slots per piece record."""
    return 4 + 3 * ndim


def _copy_row(b, src, dst, sbase, dbase, ss, ds, j0, jend, dtype):
    """``dst[dbase + j*ds] = cast(src[sbase + j*ss])`` for j in [j0, jend); a contiguous variant
    when both strides are 1."""
    one = const(I64, 1)
    contiguous = b.and_(b.icmp_signed("==", ss, one), b.icmp_signed("==", ds, one))
    with b.if_else(contiguous) as (then, other):
        with then:
            with for_range(b, j0, jend, name="jc") as j:
                dst.store(b.add(dbase, j), cast(b, src.dtype, dtype, src.load(b.add(sbase, j))))
        with other:
            with for_range(b, j0, jend, name="js") as j:
                v = cast(b, src.dtype, dtype, src.load(b.add(sbase, b.mul(j, ss))))
                dst.store(b.add(dbase, b.mul(j, ds)), v)


def generate(spec: CopiesSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the multi-copy kernel for ``spec`` to ``module`` under the name ``fname``."""
    nd = spec.ndim
    out_dtype = dtype_named(spec.out_dtype)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [k if isinstance(k, ir.Value) else const(I64, k)]))

    records = slot(0)
    with for_range(b, start, stop, name="w") as w:
        item = b.add(b.mul(w, const(I64, 3)), const(I64, 1))
        piece, lo, hi = (slot(b.add(item, const(I64, k))) for k in range(3))
        rec = b.add(records, b.mul(piece, const(I64, record_size(nd))))

        def field(k):
            return slot(b.add(rec, const(I64, k)))

        code, tiled, src_raw, dst_raw = field(0), field(1), field(2), field(3)
        shape = [field(4 + d) for d in range(nd)]
        sst = [field(4 + nd + d) for d in range(nd)]
        dst_st = [field(4 + 2 * nd + d) for d in range(nd)]
        dst = _Mem(b, dst_raw, out_dtype)
        if nd >= 2:
            is_tiled = b.icmp_signed("!=", tiled, const(I64, 0))
            with b.if_else(is_tiled) as (then, other):
                with then:
                    _tiles(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi, tiled)
                with other:
                    _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi)
        else:
            _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi)
    b.ret_void()
    return fn


def _by_code(b, spec, code, body):
    """``body(src_dtype)`` under a branch on the piece's source dtype code."""
    for c, name in enumerate(spec.src_dtypes):
        with b.if_then(b.icmp_signed("==", code, const(I64, c))):
            body(dtype_named(name))


def _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi):
    """Copy flat elements [lo, hi) of a piece, a row of the last dimension at a time."""
    out_dtype = dst.dtype
    inner = shape[-1]

    def row(s):
        i = s[0]
        r, j0 = b.sdiv(i, inner), b.srem(i, inner)
        sbase, dbase = add_offsets(b, r, shape[:-1], [sst, dst_st], [const(I64, 0)] * 2)
        jend = b.add(j0, b.sub(hi, i))
        jend = b.select(b.icmp_signed("<", jend, inner), jend, inner)
        _by_code(b, spec, code, lambda dt: _copy_row(b, _Mem(b, src_raw, dt), dst, sbase, dbase,
                                                     sst[-1], dst_st[-1], j0, jend, out_dtype))
        return [b.add(i, b.sub(jend, j0))]

    _while(b, [lo], lambda s: b.icmp_signed("<", s[0], hi), row, "row")


def _tiles(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi, group):
    """Copy blocks [lo, hi) of a tiled piece: TILE x TILE blocks of its last two dimensions,
    enumerated in C order over the leading dimensions, then super-blocks of ``group`` x ``group``
    blocks, then the blocks inside (a super-block touches few pages and cache sets; blocks past
    the piece's edge are empty)."""
    T = const(I64, TILE)
    zero = const(I64, 0)
    n0, n1 = shape[-2], shape[-1]
    span = b.mul(T, group)  # elements per super-block side
    s1n = b.sdiv(b.add(n1, b.sub(span, const(I64, 1))), span)
    s0n = b.sdiv(b.add(n0, b.sub(span, const(I64, 1))), span)
    gg = b.mul(group, group)
    with for_range(b, lo, hi, name="t") as t:
        inside, sb = b.srem(t, gg), b.sdiv(t, gg)
        sc, rest = b.srem(sb, s1n), b.sdiv(sb, s1n)
        sr, outer = b.srem(rest, s0n), b.sdiv(rest, s0n)
        tr = b.add(b.mul(sr, group), b.sdiv(inside, group))
        tc = b.add(b.mul(sc, group), b.srem(inside, group))
        sbase, dbase = add_offsets(b, outer, shape[:-2], [sst, dst_st], [zero, zero])
        i0, j0 = b.mul(tr, T), b.mul(tc, T)
        iend, jend = b.add(i0, T), b.add(j0, T)
        iend = b.select(b.icmp_signed("<", iend, n0), iend, n0)
        jend = b.select(b.icmp_signed("<", jend, n1), jend, n1)

        def block(dt):
            src = _Mem(b, src_raw, dt)
            with for_range(b, i0, iend, name="ti") as i:
                sb_ = b.add(sbase, b.mul(i, sst[-2]))
                db = b.add(dbase, b.mul(i, dst_st[-2]))
                with for_range(b, j0, jend, name="tj") as j:
                    v = cast(b, dt, dst.dtype, src.load(b.add(sb_, b.mul(j, sst[-1]))))
                    dst.store(b.add(db, b.mul(j, dst_st[-1])), v)

        _by_code(b, spec, code, block)
