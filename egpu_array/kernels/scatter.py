"""Generator of scatter kernels: ``x[i1, i2, ...] = values`` with integer index arrays.

The assignment's index space is split in two: the *outer* dimensions (the target's axes that are
not indexed: sliced, or left whole) and the *inner* dimensions (the broadcast shape of the index
arrays). Work items are the outer positions; each work item walks every inner position in C
order, so when indices repeat, the last write in that order wins, deterministically (one work
item owns all writes to its outer position; threads split the outer positions).

Bounds are checked inside the kernel *before anything is written*: every work-item range first
reads all the indices (each range sees the same ones) and, if one is outside ``[-n, n)``, sets
the error slot and returns. So a bad index means nothing was written, by any thread. Negative
indices wrap; unsigned indices never do.

Kernel ``void NAME(i64* args, i64 start, i64 stop)``; ``args`` (see :func:`arg_layout`):
``n_outer`` (total outer positions), ``n_inner`` (total inner positions), the outer extents, the
inner extents, the target pointer and its outer strides, per index array a pointer, its inner
strides, the extent and the target stride of the axis it indexes, then the value (a pointer with
outer then inner strides, or a scalar: one slot, two for complex), ``parts``, then the error slot.

With one outer position (``x[idx] = v`` on a 1-D ``x``), ``parts >= 1`` and work items are
parts: item ``p`` scans all inner positions in order but writes only the targets whose first
index falls in the ``p``-th of ``parts`` equal ranges of its axis, so the writes are spread over
threads and the last duplicate still wins (``parts == 0``: the outer loop described above;
``parts == 1``: one loop that writes every position, no range test).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .elementwise import dtype_named, load_scalar
from .irb import I64, add_offsets, const, for_range, mem_type
from .ops import cast

__all__ = ["ScatterSpec", "arg_layout", "generate"]


@dataclass(frozen=True)
class ScatterSpec:
    """A scatter into a ``dtype`` target of ``value_dtype`` values (cast in the kernel), or of one
    scalar (``scalar_value``, already of ``dtype``), at positions given by index arrays of
    ``idx_dtypes``, over ``n_outer`` outer and ``n_inner`` inner (collapsed) dimensions."""
    dtype: str
    value_dtype: str
    scalar_value: bool
    idx_dtypes: tuple
    n_outer: int
    n_inner: int

    kind = "scatter"

    @property
    def name(self) -> str:
        src = "scalar" if self.scalar_value else self.value_dtype
        return f"scatter_{self.dtype}_from_{src}_{len(self.idx_dtypes)}idx"


def arg_layout(spec: ScatterSpec) -> dict:
    """Slot offsets in ``args`` (see the module docstring)."""
    no, ni = spec.n_outer, spec.n_inner
    pos = 2
    lay = {"outer": pos, "inner": pos + no}
    pos += no + ni
    lay["target"] = pos
    pos += 1 + no
    lay["idx"] = []
    for _ in spec.idx_dtypes:
        lay["idx"].append(pos)  # pointer, ni strides, extent, axis stride
        pos += 1 + ni + 2
    lay["value"] = pos
    if spec.scalar_value:
        pos += 2 if spec.dtype.startswith("complex") else 1
    else:
        pos += 1 + no + ni
    lay["parts"] = pos
    lay["error"] = pos + 1
    lay["size"] = pos + 2
    return lay


class _Mem:
    """A typed memory operand: load/store element ``i`` (complex: (re, im) pairs; bool: i1)."""

    def __init__(self, b, raw, dtype):
        self.b, self.dtype = b, dtype
        self.ptr = b.inttoptr(raw, mem_type(dtype).as_pointer())

    def load(self, i):
        b = self.b
        if self.dtype.kind == "c":
            i2 = b.shl(i, const(I64, 1))
            return (b.load(b.gep(self.ptr, [i2])), b.load(b.gep(self.ptr, [b.add(i2, const(I64, 1))])))
        v = b.load(b.gep(self.ptr, [i]))
        return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0)) if self.dtype.kind == "b" else v

    def store(self, i, v):
        b = self.b
        if self.dtype.kind == "c":
            i2 = b.shl(i, const(I64, 1))
            b.store(v[0], b.gep(self.ptr, [i2]))
            b.store(v[1], b.gep(self.ptr, [b.add(i2, const(I64, 1))]))
        elif self.dtype.kind == "b":
            b.store(b.zext(v, mem_type(self.dtype)), b.gep(self.ptr, [i]))
        else:
            b.store(v, b.gep(self.ptr, [i]))


def _index(b, dtype, raw, extent):
    """An index value as int64 wrapped into ``[0, extent)`` and its out-of-range flag."""
    zero = const(I64, 0)
    if dtype.kind == "u":
        i = b.zext(raw, I64) if raw.type.width < 64 else raw
        return i, b.icmp_unsigned(">=", i, extent)
    i = b.sext(raw, I64) if raw.type.width < 64 else raw
    i = b.select(b.icmp_signed("<", i, zero), b.add(i, extent), i)
    return i, b.or_(b.icmp_signed("<", i, zero), b.icmp_signed(">=", i, extent))


def _outside(b, dtype, raw, extent):
    """Whether an index value is outside ``[-extent, extent)`` (unsigned: ``[0, extent)``), as one
    unsigned comparison (the bounds check of every index, vectorized)."""
    if dtype.kind == "u":
        return b.icmp_unsigned(">=", b.zext(raw, I64) if raw.type.width < 64 else raw, extent)
    i = b.sext(raw, I64) if raw.type.width < 64 else raw
    return b.icmp_unsigned(">=", b.add(i, extent), b.add(extent, extent))


def generate(spec: ScatterSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the scatter kernel for ``spec`` to ``module`` under the name ``fname``."""
    lay = arg_layout(spec)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [const(I64, k)]))

    no, ni = spec.n_outer, spec.n_inner
    dtype = dtype_named(spec.dtype)
    n_outer, n_inner = slot(0), slot(1)
    outer = [slot(lay["outer"] + d) for d in range(no)]
    inner = [slot(lay["inner"] + d) for d in range(ni)]
    target = _Mem(b, slot(lay["target"]), dtype)
    t_strides = [slot(lay["target"] + 1 + d) for d in range(no)]
    idx = []
    for name, s in zip(spec.idx_dtypes, lay["idx"]):
        mem = _Mem(b, slot(s), dtype_named(name))
        strides = [slot(s + 1 + d) for d in range(ni)]
        idx.append((mem, strides, slot(s + 1 + ni), slot(s + 2 + ni)))
    if spec.scalar_value:
        scalar = load_scalar(b, args, lay["value"], dtype)
    else:
        vdtype = dtype_named(spec.value_dtype)
        value = _Mem(b, slot(lay["value"]), vdtype)
        v_outer = [slot(lay["value"] + 1 + d) for d in range(no)]
        v_inner = [slot(lay["value"] + 1 + no + d) for d in range(ni)]
    inner_strides = [st for _, st, _, _ in idx] + ([] if spec.scalar_value else [v_inner])
    zero = const(I64, 0)

    def positions(q):
        """Per index array its wrapped value and out-of-range flag at inner position q; the
        value's inner offset."""
        offs = add_offsets(b, q, inner, inner_strides, [zero] * len(inner_strides))
        got = [_index(b, mem.dtype, b.load(b.gep(mem.ptr, [offs[k]])), extent)
               for k, (mem, _, extent, _) in enumerate(idx)]
        return got, (None if spec.scalar_value else offs[-1])

    # phase 1: every work-item range checks all indices, so either all ranges write or none does
    bad_slot = b.alloca(I64)
    b.store(zero, bad_slot)
    with for_range(b, zero, n_inner, name="chk") as q:
        offs = add_offsets(b, q, inner, inner_strides, [zero] * len(inner_strides))
        bad = b.load(bad_slot)
        for k, (mem, _, extent, _) in enumerate(idx):
            bad = b.or_(bad, b.sext(_outside(b, mem.dtype, b.load(b.gep(mem.ptr, [offs[k]])), extent), I64))
        b.store(bad, bad_slot)
    fail, write = b.append_basic_block("fail"), b.append_basic_block("write")
    b.cbranch(b.icmp_signed("!=", b.load(bad_slot), zero), fail, write)
    b.position_at_end(fail)
    b.store(const(I64, 1), b.gep(args, [const(I64, lay["error"])]))
    b.ret_void()
    b.position_at_end(write)

    def target_offset(got):
        t_in = zero
        for (i, _), (_, _, _, axis_stride) in zip(got, idx):
            t_in = b.add(t_in, b.mul(i, axis_stride))
        return t_in

    def value_at(v_off):
        return scalar if spec.scalar_value else cast(b, vdtype, dtype, value.load(v_off))

    # phase 2: inner positions in C order (the last duplicate wins)
    parts = slot(lay["parts"])
    with b.if_else(b.icmp_signed(">", parts, zero)) as (split, plain):
        with split:  # one outer position; work item p owns the p-th range of the first index's axis
            extent = idx[0][2]
            with for_range(b, start, stop, name="p") as p:
                lo = b.sdiv(b.mul(p, extent), parts)
                hi = b.sdiv(b.mul(b.add(p, const(I64, 1)), extent), parts)
                with b.if_else(b.icmp_signed("==", parts, const(I64, 1))) as (whole, part):
                    with whole:  # one part: every write is this work item's
                        with for_range(b, zero, n_inner, name="aq") as q:
                            got, v_in = positions(q)
                            target.store(target_offset(got), value_at(v_in))
                    with part:
                        with for_range(b, zero, n_inner, name="pq") as q:
                            got, v_in = positions(q)
                            i0 = got[0][0]
                            mine = b.and_(b.icmp_signed(">=", i0, lo), b.icmp_signed("<", i0, hi))
                            with b.if_then(mine):
                                target.store(target_offset(got), value_at(v_in))
        with plain:  # this range's outer positions, for every inner position
            wend = b.select(b.icmp_signed("<", stop, n_outer), stop, n_outer)
            with for_range(b, zero, n_inner, name="q") as q:
                got, v_in = positions(q)
                t_in = target_offset(got)
                with for_range(b, start, wend, name="w") as w:
                    if spec.scalar_value:
                        t_off, = add_offsets(b, w, outer, [t_strides], [t_in])
                        v_off = None
                    else:
                        t_off, v_off = add_offsets(b, w, outer, [t_strides, v_outer], [t_in, v_in])
                    target.store(t_off, value_at(v_off))
    b.ret_void()
    return fn
