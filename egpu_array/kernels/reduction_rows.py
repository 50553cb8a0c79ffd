"""The inner loops of row-order reduce kernels (kernels.reduction) that take another form than
one accumulator updated per element:

- float32 sums (accumulated in float64) add blocks of :data:`F32_BLOCK` values in float32 first
  (:func:`block_sum`), as accurate as NumPy's pairwise sum and half the vector work of a
  conversion per element; column order adds its row groups in float32 (kernels.reduction_outer);
- float max/min keep the plain vector extremum and fix NaN and the sign of a zero result
  afterwards (:func:`extremum`): one vector max and one multiply-add per vector;
- any/all of wider inputs keep a flag per vector lane in integers of the input's width
  (:func:`flag_block`): an or of i1 values is packed to bytes per vector (vextract, vpackssdw,
  vpor after each compare of float32 lanes: any(x < 0) of 1e7 float32 ran at 76% of sum's speed);
- integer sums of bool values (count_nonzero: ``x != 0`` summed in int64) count blocks of at most
  :data:`COUNT_BLOCK` values in 16-bit lanes (:func:`count_block`) and add each block's count to
  the int64 accumulator: four times the lanes of an int64 vector add per element (count_nonzero
  of 1e6 bool: 4.6x NumPy's time before).
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import loop_metadata
from .elementwise import dtype_named
from .irb import F64, I64, const, intrinsic
from .spec import ReduceSpec

__all__ = ["F32_BLOCK", "COUNT_BLOCK", "float32_blocks", "count_blocks", "count_block", "row_loop", "block_sum",
           "block_total", "block_metadata", "fast_extremum", "extremum", "extremum_start", "extremum_block",
           "extremum_end", "or_redo", "flag_lanes", "flag_block", "flag_end"]

_REASSOC = ("reassoc",)


#: float32 sums (accumulated in float64) add blocks of this many elements in float32 first
F32_BLOCK = 512


def float32_blocks(spec: ReduceSpec) -> bool:
    """Whether a kernel sums float32 values in float32 first: blocks in row order (see
    :func:`block_sum`), row groups in column order (kernels.reduction_outer)."""
    return spec.op == "sum" and spec.expr_dtype == "float32" and spec.acc_dtype == "float64"


#: bool values counted in 16-bit lanes per block: the block's count fits 16 bits, so the lanes'
#: sum taken modulo 2**16 (any order of the additions) is the exact count
COUNT_BLOCK = (1 << 16) - 1


def count_blocks(spec: ReduceSpec) -> bool:
    """Whether a kernel sums bool values into an integer accumulator by :func:`count_block`."""
    return spec.op == "sum" and spec.expr_dtype == "bool" and spec.acc_dtype in ("int64", "uint64")


def count_block(b, lo, hi, acc, bool_of, block: int = COUNT_BLOCK):
    """``acc`` (an i64) plus how many of ``bool_of(j)`` (i1 values), ``lo <= j < hi``, are true:
    blocks of at most ``block`` (<= COUNT_BLOCK) values summed in an i16 (a vector of 16-bit
    lanes), each block's count then added in 64 bits."""
    i16 = ir.IntType(16)

    def add_block(total, jb, je):
        (c16,) = row_loop(b, jb, je, [const(i16, 0)], lambda j, p: [b.add(p[0], b.zext(bool_of(j), i16))], None,
                          "cj")
        return b.add(total, b.zext(c16, I64))
    return _by_blocks(b, lo, hi, block, acc, add_block, "cnt")


def _by_blocks(b, lo, hi, block: int, acc, add_block, name: str):
    """``acc`` updated by ``add_block(acc, jb, je)`` for the blocks ``[jb, je)`` of at most
    ``block`` values covering ``[lo, hi)``, in order."""
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{n}") for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    jb = b.phi(I64, name=f"{name}b")
    jb.add_incoming(lo, pre)
    total = b.phi(acc.type)
    total.add_incoming(acc, pre)
    b.cbranch(b.icmp_signed("<", jb, hi), body, done)
    b.position_at_end(body)
    je = b.add(jb, const(I64, block))
    je = b.select(b.icmp_signed("<", je, hi), je, hi)
    total.add_incoming(add_block(total, jb, je), b.block)
    jb.add_incoming(je, b.block)
    b.branch(head)
    b.position_at_end(done)
    return total


def row_loop(b, lo, hi, init: list, step, md, name: str) -> list:
    """``for j in range(lo, hi)`` with flat accumulators ``init`` updated by ``step(j, phis)``;
    returns their final values (the builder is left after the loop). ``md``: loop metadata."""
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{n}") for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    j = b.phi(I64, name=name)
    j.add_incoming(lo, pre)
    phis = [b.phi(v.type) for v in init]
    for p, v in zip(phis, init):
        p.add_incoming(v, pre)
    b.cbranch(b.icmp_signed("<", j, hi), body, done)
    b.position_at_end(body)
    new = step(j, phis)
    for p, v in zip(phis, new):
        p.add_incoming(v, b.block)
    j.add_incoming(b.add(j, const(I64, 1)), b.block)
    latch = b.branch(head)
    if md is not None:
        latch.set_metadata("llvm.loop", md)
    b.position_at_end(done)
    return phis


def block_sum(b, module, fname, lo, hi, acc64, element, step64, math: bool):
    """``acc64`` plus the float32 values ``element(j)``, ``lo <= j < hi``, as the float64 sum of
    blocks of :data:`F32_BLOCK` elements each summed in float32 (reassociated: LLVM keeps several
    8-lane accumulators, so a float32 partial adds F32_BLOCK / 32 values; NumPy's pairwise sum has
    blocks of 128 and 8 accumulators). The float32 pass costs one vector add per 8 elements
    instead of two conversions and two float64 vector adds. A block whose float32 total is not finite (an overflow
    of float32 that float64 would not have, or inf/nan in the data) is summed again in float64
    by ``step64``, so results only differ from a float64 accumulation by rounding. ``math``: the
    values are transcendental functions (softmax's exp): 8 lanes, LLVM's own interleaving."""
    md = block_metadata(module, fname, math)
    return _by_blocks(b, lo, hi, F32_BLOCK, acc64,
                      lambda acc, jb, je: b.fadd(acc, block_total(b, md, jb, je, element, step64), flags=_REASSOC),
                      "blk")


def block_metadata(module, fname, math: bool):
    """Loop metadata of a float32 block's loop: 8 lanes, 4 vectors side by side (``math``: LLVM's
    own interleaving)."""
    return loop_metadata(module, fname, width=8, interleave=None if math else 4)


def block_total(b, md, jb, je, element, step64):
    """The float32 sum of ``element(j)``, ``jb <= j < je`` (one block, at most F32_BLOCK values),
    as a float64; summed again in float64 by ``step64`` when the float32 total is not finite."""
    f32 = ir.FloatType()
    (s32,) = row_loop(b, jb, je, [const(f32, -0.0)], lambda j, p: [b.fadd(p[0], element(j), flags=_REASSOC)],
                       md, "j")
    not_finite = b.fcmp_unordered("uno", b.fsub(s32, s32), const(f32, 0.0))
    return or_redo(b, b.fpext(s32, F64), not_finite,
                   lambda: row_loop(b, jb, je, [const(F64, -0.0)], step64, None, "j64")[0], "blk")


def fast_extremum(spec: ReduceSpec) -> bool:
    """Whether a row-order kernel finds a float max/min with :func:`extremum`."""
    return spec.op in ("max", "min") and spec.acc_dtype in ("float32", "float64") \
        and spec.expr_dtype == spec.acc_dtype


def extremum(b, op, acc_dt, lo, hi, acc, element, step_exact):
    """``acc`` combined with the max/min of ``element(j)``, ``lo <= j < hi``, with the rule of
    llvm.maximum/minimum (NaN propagates, -0.0 < +0.0) at the cost of one vector max/min and one
    multiply-add per vector. The loop keeps the plain extremum ``m`` (``x > m ? x : m``) and
    ``z = -0.0 + sum(x * s)`` with ``s`` = +0.0 (max) or -0.0 (min): ``z`` is NaN once any x is
    NaN or infinite, else a zero whose sign says whether some x has the sign that wins a tie of
    zeros (a sum of zeros is -0.0 only if all are). So ``m`` is exact unless ``z`` is NaN (then
    the range is walked again with the exact rule by ``step_exact``: a NaN or infinity in the
    data) or ``m`` is a zero (then its sign is ``z``'s (max) or the opposite (min))."""
    m, z = extremum_block(b, op, lo, hi, extremum_start(op, acc_dt), element)
    return extremum_end(b, op, acc_dt, acc, m, z, lambda: row_loop(b, lo, hi, [acc], step_exact, None, "jx")[0])


def extremum_start(op, acc_dt) -> list:
    """The initial ``[m, z]`` of :func:`extremum_block`."""
    from .reduction import _const_of, identity_of
    init = _const_of(acc_dt, identity_of(op, acc_dt))
    return [init, const(init.type, -0.0)]


def extremum_block(b, op, lo, hi, mz: list, element) -> list:
    """``[m, z]`` (see :func:`extremum`) updated with ``element(j)``, ``lo <= j < hi``."""
    ty = mz[0].type
    fast = ("nnan", "nsz")  # m may be poison where x is NaN: then z is NaN and m is not used
    sign_probe = const(ty, 0.0 if op == "max" else -0.0)

    def step(j, phis):
        m, z = phis
        v = element(j)
        better = b.fcmp_ordered(">" if op == "max" else "<", v, m, flags=fast)
        probe = b.fmul(v, sign_probe, flags=("contract",))
        return [b.select(better, v, m, flags=fast), b.fadd(z, probe, flags=("reassoc", "contract"))]

    return row_loop(b, lo, hi, mz, step, None, "j")


def extremum_end(b, op, acc_dt, acc, m, z, exact):
    """``acc`` combined with the extremum that ``[m, z]`` describe: ``m`` with the sign of a zero
    fixed, or where ``z`` is NaN the value ``exact()`` emits (the exact walk of the range)."""
    from .reduction import _combine
    ty = m.type
    zero = z if op == "max" else b.fneg(z)
    m = b.select(b.fcmp_ordered("==", m, const(ty, 0.0)), zero, m)
    return or_redo(b, _combine(b, op, acc_dt, acc, m), b.fcmp_unordered("uno", z, z), exact, "ext")


def or_redo(b, fast, redo_if, redo, name: str):
    """``fast``, or where ``redo_if`` holds the value ``redo()`` emits in a branch of its own (the
    exact walk that the fast loops fall back to on rare data); the builder ends after the join."""
    fast_block = b.block
    slow_block, merge = b.append_basic_block(name + ".redo"), b.append_basic_block(name + ".merge")
    b.cbranch(redo_if, slow_block, merge)
    b.position_at_end(slow_block)
    slow = redo()
    slow_end = b.block
    b.branch(merge)
    b.position_at_end(merge)
    out = b.phi(fast.type)
    out.add_incoming(fast, fast_block)
    out.add_incoming(slow, slow_end)
    return out


def flag_lanes(spec: ReduceSpec):
    """The integer type of :func:`flag_block`'s lanes for an any/all kernel (the widest input's
    width: its compare masks as they are), or None (inputs of one byte, whose i1 values are bytes
    already, or none)."""
    if spec.op not in ("any", "all"):
        return None
    width = max((dtype_named(d).itemsize for d in spec.in_dtypes), default=1)
    return ir.IntType(8 * width) if width > 1 else None


def flag_block(b, op: str, ty, lo, hi, flag, bool_of):
    """``flag`` (of type ``ty``) updated with ``bool_of(j)``, ``lo <= j < hi``: nonzero once a
    value is true (any) or false (all). The lanes are the compare masks (0 or all ones: sext is
    free), kept by an unsigned max; int64 lanes add instead (a max of them needs AVX-512; a sum of
    -1s cannot come back to 0 in fewer than 2**64 elements)."""
    def step(j, phis):
        v = bool_of(j)
        x = b.sext(v if op == "any" else b.not_(v), ty)
        return [b.add(phis[0], x) if ty.width == 64 else intrinsic(b, "llvm.umax", ty, phis[0], x)]
    return row_loop(b, lo, hi, [flag], step, None, "jf")[0]


def flag_end(b, op: str, acc, flag):
    """``acc`` (an i1) combined with the values that ``flag`` saw."""
    seen = b.icmp_unsigned("!=", flag, const(flag.type, 0))
    return b.or_(acc, seen) if op == "any" else b.and_(acc, b.not_(seen))
