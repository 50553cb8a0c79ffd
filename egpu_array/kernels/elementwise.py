"""Generator of fused elementwise kernels (host CPU form).

The kernel is ``void NAME(i64* args, i64 start, i64 stop)`` and computes the output elements whose
flat (C-order) index lies in ``[start, stop)``, so a launcher can split the work across threads.
``args`` holds, in order: the ``ndim`` extents; for the output and each buffer input a pointer and
``ndim`` strides (in elements); ``ndim`` strides for each index operand; then one 8-byte slot per
real scalar argument (two for complex). Rows of the innermost dimension are walked with a plain
counted loop, which LLVM vectorizes when the operands' inner strides are 1 or 0.

A *tiled* kernel (inputs read transposed: ``exp(x.mT)``, ``x.mT + y``) has the same arguments but
its work items are square blocks of the last two dimensions: each transposed input's block is
transposed in registers into a stack buffer, then the block's rows are computed as above
(``kernels.elementwise_tiles``).
"""
from __future__ import annotations

from llvmlite import ir

from .. import _dtypes
from .irb import I8, I64, const, mem_type, reg_type, while_loop
from .ops import OPS, cast
from .spec import ElementwiseSpec

__all__ = ["generate_elementwise", "streams_output", "arg_layout", "loop_metadata", "Operand", "load_elem",
           "store_elem", "load_scalar", "emit_expr", "dtype_named", "Leaves", "gather_pairs", "operand_slots"]


def operand_slots(spec, nd: int) -> dict:
    """The slots every kernel kind shares, after ``nd`` extents: for the output and each buffer
    input a pointer and ``nd`` strides, ``nd`` strides per index operand, then the scalar slots
    (two for complex). ``"end"`` is the first free slot."""
    pos = nd
    operands = []
    for _ in range(1 + len(spec.in_dtypes)):
        operands.append((pos, pos + 1))  # (pointer slot, first stride slot)
        pos += 1 + nd
    idx = []
    for _ in range(spec.n_idx):
        idx.append(pos)
        pos += nd
    scalars = []
    for name in spec.arg_dtypes:
        scalars.append(pos)
        pos += 2 if name.startswith("complex") else 1
    return {"operands": operands, "idx": idx, "scalars": scalars, "end": pos}


def arg_layout(spec: ElementwiseSpec) -> dict:
    """Slot offsets in ``args``: shape, operands, scalars, gather pairs, error and retry flags."""
    lay = operand_slots(spec, spec.ndim)
    pos = lay["end"]
    err = pos + 2 * gather_pairs(spec.expr)
    lay.update(gather=pos, error=err, retry=err + 1, size=err + 1 + int(getattr(spec, "fast_trig", False)))
    return lay


def gather_pairs(program: tuple) -> int:
    """How many (extent, stride) slot pairs the gathers of a program use."""
    return sum(len(ins) - 3 for ins in program if ins[0] == "gather")


class Operand:
    """A memory operand: its component pointer, and per-dimension strides (IR values)."""

    def __init__(self, b, args, dtype, ptr_slot, stride_slot, nd):
        raw = b.load(b.gep(args, [const(I64, ptr_slot)]))
        self._set(dtype, b.inttoptr(raw, mem_type(dtype).as_pointer()),
                  [b.load(b.gep(args, [const(I64, stride_slot + d)])) for d in range(nd)])

    @classmethod
    def at(cls, dtype, ptr, strides: list) -> "Operand":
        """The operand of ``dtype`` at the component pointer ``ptr`` (a kernel's own buffer)."""
        op = cls.__new__(cls)
        op._set(dtype, ptr, strides)
        return op

    def _set(self, dtype, ptr, strides) -> None:
        self.dtype = dtype
        self.comp = 2 if dtype.kind == "c" else 1
        self.ptr, self.strides = ptr, strides


def load_scalar(b, args, slot, dtype):
    """A scalar argument stored in one (two for complex) 8-byte slot(s) of ``args``."""
    def one(s, dt):
        p = b.bitcast(b.gep(args, [const(I64, s)]), mem_type(dt).as_pointer())
        v = b.load(p)
        return b.trunc(v, reg_type(dt)) if dt.kind == "b" else v
    if dtype.kind == "c":
        return (one(slot, dtype.real_dtype), one(slot + 1, dtype.real_dtype))
    return one(slot, dtype)


def load_elem(b, op: Operand, base, j, cls, extra=None):
    """Load element j of the row starting at element offset ``base`` (plus ``extra`` elements)."""
    off = base if cls == "0" else b.add(base, j if cls == "c" else b.mul(j, op.strides[-1]))
    if extra is not None:
        off = b.add(off, extra)
    if op.comp == 2:
        off2 = b.mul(off, const(I64, 2))
        re = b.load(b.gep(op.ptr, [off2]))
        im = b.load(b.gep(op.ptr, [b.add(off2, const(I64, 1))]))
        return (re, im)
    v = b.load(b.gep(op.ptr, [off]))
    return b.icmp_unsigned("!=", v, const(I8, 0)) if op.dtype.kind == "b" else v


def store_elem(b, op: Operand, base, j, cls, value):
    off = b.add(base, j if cls == "c" else b.mul(j, op.strides[-1]))
    if op.comp == 2:
        off2 = b.mul(off, const(I64, 2))
        b.store(value[0], b.gep(op.ptr, [off2]))
        b.store(value[1], b.gep(op.ptr, [b.add(off2, const(I64, 1))]))
    elif op.dtype.kind == "b":
        b.store(b.zext(value, I8), b.gep(op.ptr, [off]))
    else:
        b.store(value, b.gep(op.ptr, [off]))


def dtype_named(name: str):
    """The DType called ``name``."""
    return getattr(_dtypes, name)


class Leaves:
    """Values of an expression's leaves at element j of the current row (shared by generators).

    ``bases[m]`` is the row's element offset of memory operand m (0 = output) or, after the memory
    operands, of index operand m; ``classes`` their inner-stride classes. A gather adds
    ``clamp(index) * stride`` per gathered axis; an out-of-range index sets the error slot.
    """

    def __init__(self, b, args, ops, idx_strides, scalars, classes, bases, j, gather_slot, error_slot,
                 guards=None, invariant=None):
        self.b, self.args, self.ops, self.idx_strides = b, args, ops, idx_strides
        #: memory operand k -> its value loaded before the row loop (operands constant along the row)
        self.invariant = invariant or {}
        self.scalars, self.classes, self.bases, self.j = scalars, classes, bases, j
        self.gather_slot, self.error_slot = gather_slot, error_slot
        #: when a list, gathers append their out-of-range flags to it (the caller ORs them over its
        #: loop and sets the error slot once, after it: no store in the loop body, which then
        #: vectorizes); when None, each gather sets the error slot itself
        self.guards = guards

    def __call__(self, ins, values):
        b, tag = self.b, ins[0]
        if tag == "in":
            k = ins[1] + 1
            if k in self.invariant:
                return self.invariant[k]
            return load_elem(b, self.ops[k], self.bases[k], self.j, self.classes[k])
        if tag == "arg":
            return self.scalars[ins[1]]
        if tag == "gather":
            return self.gather(ins, values)
        m = len(self.ops) + ins[1]
        cls = self.classes[m]
        if cls == "0":
            return self.bases[m]
        j = self.j
        return b.add(self.bases[m], j if cls == "c" else b.mul(j, self.idx_strides[ins[1]][-1]))

    def gather(self, ins, values):
        """("gather", k, first_pair, i1, i2, ...): input k at computed positions."""
        b = self.b
        k = ins[1] + 1
        extra = const(I64, 0)
        bad = ir.Constant(ir.IntType(1), 0)
        for n, i in enumerate(ins[3:]):
            slot = self.gather_slot + 2 * (ins[2] + n)
            extent = b.load(b.gep(self.args, [const(I64, slot)]))
            stride = b.load(b.gep(self.args, [const(I64, slot + 1)]))
            idx = values[i]
            idx = b.select(b.icmp_signed("<", idx, const(I64, 0)), b.add(idx, extent), idx)
            oob = b.or_(b.icmp_signed("<", idx, const(I64, 0)), b.icmp_signed(">=", idx, extent))
            bad = b.or_(bad, oob)
            extra = b.add(extra, b.mul(b.select(oob, const(I64, 0), idx), stride))
        if self.guards is not None:
            self.guards.append(bad)
        else:
            with b.if_then(bad, likely=False):
                b.store(const(I64, 1), b.gep(self.args, [const(I64, self.error_slot)]))
        return load_elem(b, self.ops[k], self.bases[k], self.j, self.classes[k], extra)


def emit_expr(b, program: tuple, leaf):
    """Emit the IR of an expression program; ``leaf(ins, values)`` supplies leaf and gather values.

    Returns the value of the program's last instruction.
    """
    values = []
    for ins in program:
        tag = ins[0]
        if tag in ("in", "arg", "idx", "gather"):
            v = leaf(ins, values)
        elif tag == "cast":
            v = cast(b, dtype_named(ins[1]), dtype_named(ins[2]), values[ins[3]])
        else:
            v = OPS[tag].lower(b, dtype_named(ins[1]), *[values[i] for i in ins[2:]])
        values.append(v)
    return values[-1]


def _has_math(program: tuple) -> bool:
    from .math import MATH_FUNCS
    return any(ins[0] in MATH_FUNCS and ins[0] != "sqrt" for ins in program)


def loop_metadata(module: ir.Module, fname: str, width: int | None = None, interleave: int | None = None,
                  unroll: int | None = None):
    """A loop ID (set it as ``"llvm.loop"`` metadata on a loop's latch branch) asking the loop
    vectorizer for ``width`` lanes and/or ``interleave`` vector iterations side by side, and/or
    the unroller for ``unroll`` copies of the body (GPU threads: that many loads in flight).

    Why: a transcendental function is a long dependency chain of ~100 vector instructions and the
    CPU's scheduler holds about one such iteration, so on its own a vector loop runs at the chain's
    latency; two independent iterations in program order let it overlap them. A float32 reduction
    that accumulates in float64 gets 4 lanes by default (the accumulator's ymm width), which runs
    its float32 math at half width: ``width=8`` keeps the math at 8 lanes (two accumulators).
    """
    i32 = ir.IntType(32)
    props = [module.add_metadata([ir.MetaDataString(module, "egpu.loop"), ir.MetaDataString(module, fname)])]
    if width is not None:
        props.append(module.add_metadata([ir.MetaDataString(module, "llvm.loop.vectorize.width"),
                                          ir.Constant(i32, width)]))
    if interleave is not None:
        props.append(module.add_metadata([ir.MetaDataString(module, "llvm.loop.interleave.count"),
                                          ir.Constant(i32, interleave)]))
    if unroll is not None:
        props.append(module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.count"),
                                          ir.Constant(i32, unroll)]))
    loop_id = module.add_metadata(props)
    loop_id.operands = (loop_id,) + tuple(loop_id.operands)  # a loop ID refers to itself
    return loop_id


def _retry_flags(b, guards, head, pre) -> list:
    """OR the lanes' "needs the wide trig reduction" guards (i1) over the row loop; returns
    ``(phi, test)`` pairs, ``phi`` carried by the loop at ``head`` and ``test(phi)`` true after the
    loop when some lane needed it. A guard ``icmp slt v, 0`` (math_trig's form) ORs ``v`` itself:
    the vectorized loop then ORs whole registers (an i1 phi costs a pack of the mask per vector,
    and InstCombine narrows a phi of sign-extended i1 values back to i1).
    Guards of one form and type are ORed together first, so the loop carries one flag per form:
    two flags from one input (``sin(x) * cos(x)``) kept the loop from being vectorized."""
    end = b.block
    merged = {}
    for g in guards:
        sign = (getattr(g, "op", None) == "slt" and isinstance(g.operands[1], ir.Constant)
                and g.operands[1].constant == 0)
        v = g.operands[0] if sign else g
        key = (sign, str(v.type))
        merged[key] = b.or_(merged[key], v) if key in merged else v
    out = []
    for (sign, _), v in merged.items():
        b.position_at_start(head)
        phi = b.phi(v.type, name="retry")
        b.position_at_end(end)
        phi.add_incoming(ir.Constant(v.type, 0), pre)
        phi.add_incoming(b.or_(phi, v), end)
        out.append((phi, sign))
    return out


#: outputs of at least this many bytes are streamed (as the copies kernels' destinations)
STREAM_MIN_BYTES = 1 << 23
#: the streamed part of a range starts on a cache line and spans whole blocks of this many bytes,
#: a multiple of any vector loop's step (lanes x interleave), so that its vector loop runs without
#: a remainder: the head and tail of the range are stored by plain scalar loops
STREAM_BLOCK = 1024


def streams_output(triple: str, expr: tuple, dtype, nbytes: int) -> bool:
    """Whether the kernel of program ``expr`` stores its unit-stride 1-d output of ``nbytes`` bytes
    of ``dtype`` with non-temporal stores on a target of this ``triple``: no read-for-ownership of
    the written lines (a third less traffic for ``a + b``: 1e7 float32 7.0 -> 5.2 ms, one thread).
    Only for outputs well past the caches, on x86-64 hosts, and for kernels without transcendental
    math: those gained nothing clear (``a*b + c*d - sin(e)*exp(-a)``, 1e7, one thread: float64
    +0.5%, float32 -2.5%, with 1% between two runs of the same kernel), and their streamed variant
    would be a second compile of a large kernel."""
    if nbytes < STREAM_MIN_BYTES or dtype.kind not in "iuf" or dtype.itemsize not in (2, 4, 8):
        return False
    from .copies import streams  # (copies imports this module)
    return streams(triple) and not _has_math(expr)


def generate_elementwise(spec: ElementwiseSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the kernel for ``spec`` to ``module`` under the name ``fname``.

    A ``tiled`` spec walks blocks (``elementwise_tiles.walk_tiles``). A ``stream`` spec (1-d unit-stride output,
    x86-64 target) splits ``[start, stop)`` in three: a scalar head up to the first output address
    on a cache line, whole :data:`STREAM_BLOCK` bytes stored with aligned non-temporal vector
    stores, and a scalar tail; the kernel ends with a store fence (the launching thread then sees
    the data)."""
    from .copies import LINE_BYTES, VECTOR_BYTES, streams
    nd = spec.ndim
    lay = arg_layout(spec)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    shape = [b.load(b.gep(args, [const(I64, d)])) for d in range(nd)]
    dtypes = [dtype_named(spec.out_dtype)] + [dtype_named(n) for n in spec.in_dtypes]
    ops = [Operand(b, args, dt, p, s, nd) for dt, (p, s) in zip(dtypes, lay["operands"])]
    idx_strides = [[b.load(b.gep(args, [const(I64, s + d)])) for d in range(nd)] for s in lay["idx"]]
    scalars = [load_scalar(b, args, s, dtype_named(n)) for s, n in zip(lay["scalars"], spec.arg_dtypes)]
    walk = (b, spec, module, fname, args, lay, shape, ops, idx_strides, scalars)
    out = dtypes[0]
    if getattr(spec, "tiled", False):
        from .elementwise_tiles import walk_tiles  # (it builds on this module)
        walk_tiles(*walk, start, stop)
        b.ret_void()
        return fn
    if not (spec.stream and nd == 1 and spec.classes[0] == "c" and out.kind in "iuf"
            and out.itemsize in (2, 4, 8) and streams(module.triple)):
        _walk_rows(*walk, start, stop)
        b.ret_void()
        return fn
    size = const(I64, out.itemsize)
    at = b.add(b.ptrtoint(ops[0].ptr, I64), b.mul(start, size))
    pad = b.and_(b.sub(const(I64, 0), at), const(I64, LINE_BYTES - 1))  # bytes to the next line
    odd = b.icmp_signed("!=", b.srem(pad, size), const(I64, 0))  # (elements off their alignment)
    head = b.add(start, b.sdiv(pad, size))
    head = b.select(b.or_(odd, b.icmp_signed(">", head, stop)), stop, head)
    block = const(I64, -(STREAM_BLOCK // out.itemsize))
    tail = b.add(head, b.and_(b.sub(stop, head), block))
    _walk_rows(*walk, start, head, latch_md=loop_metadata(module, fname, width=1, interleave=1))
    _walk_rows(*walk, head, tail, align=VECTOR_BYTES)
    _walk_rows(*walk, tail, stop, latch_md=loop_metadata(module, fname, width=1, interleave=1))
    b.call(module.declare_intrinsic("llvm.x86.sse.sfence", fnty=ir.FunctionType(ir.VoidType(), [])), [])
    b.ret_void()
    return fn


def _walk_rows(b, spec, module, fname, args, lay, shape, ops, idx_strides, scalars, start, stop,
               align=None, latch_md=None) -> None:
    """The loops over flat elements ``[start, stop)``, a row of the innermost dimension at a time.

    The first row's index is unravelled once; later rows step the indices of the outer
    dimensions and the operands' offsets with carries: no divisions per row, which cost more than
    a short row's loop (float32, one thread: ``x + row`` over rows of 10, 1e6 elements, 0.60 ->
    0.37 ms; rows of 3, 1.59 -> 0.64 ms).
    ``align``: the output is stored with non-temporal stores claiming that alignment (the caller
    makes it true for every store the vector loop does); ``latch_md``: the row loop's ``llvm.loop``
    metadata instead of the default."""
    n_mem = len(ops)
    inner = shape[-1]
    outer = shape[:-1]
    all_strides = [op.strides for op in ops] + idx_strides
    zero = const(I64, 0)
    # the first row: its index over the outer dimensions, the operands' offsets, its first element
    rem = b.sdiv(start, inner)
    index = []
    for d in range(len(outer) - 1, -1, -1):
        index.insert(0, b.srem(rem, outer[d]) if d else rem)
        if d:
            rem = b.sdiv(rem, outer[d])
    bases = [zero] * (n_mem + spec.n_idx)
    for d, k in enumerate(index):
        bases = [b.add(base, b.mul(k, st[d])) for base, st in zip(bases, all_strides)]
    # what a carry out of dimension d takes back from each offset
    spans = [[b.mul(outer[d], st[d]) for st in all_strides] for d in range(len(outer))]

    def row(state):
        i, j0 = state[0], state[1]
        index, bases = state[2:2 + len(outer)], state[2 + len(outer):]
        jend = b.add(j0, b.sub(stop, i))
        jend = b.select(b.icmp_signed("<", jend, inner), jend, inner)
        _row_loop(b, spec, module, fname, args, lay, ops, idx_strides, scalars, spec.classes, bases, j0, jend,
                  align, latch_md)
        new_index, new_bases = list(index), list(bases)
        carry = None  # the next row: the last outer index + 1, carried outwards
        for d in range(len(outer) - 1, -1, -1):
            step = b.add(index[d], const(I64, 1))
            wrap = b.icmp_signed("==", step, outer[d])
            if carry is None:
                new_index[d] = b.select(wrap, zero, step)
                new_bases = [b.add(base, st[d]) for base, st in zip(new_bases, all_strides)]
            else:
                new_index[d] = b.select(carry, b.select(wrap, zero, step), index[d])
                new_bases = [b.select(carry, b.add(base, st[d]), base) for base, st in zip(new_bases, all_strides)]
                wrap = b.and_(carry, wrap)
            new_bases = [b.select(wrap, b.sub(base, span), base) for base, span in zip(new_bases, spans[d])]
            carry = wrap
        return [b.add(i, b.sub(jend, j0)), zero] + new_index + new_bases

    while_loop(b, [start, b.srem(start, inner)] + index + bases, lambda s: b.icmp_signed("<", s[0], stop), row,
               "row")


def _row_loop(b, spec, module, fname, args, lay, ops, idx_strides, scalars, classes, bases, j0, jend,
              align=None, latch_md=None) -> None:
    """One row: the output's elements ``j0 <= j < jend`` of the row whose operands start at
    element offsets ``bases`` (memory operands, then index operands), their inner strides of
    ``classes`` (``align``, ``latch_md``: as for :func:`_walk_rows`). Sets the error and retry
    slots after the loop when a gather index was out of range or a lane needs the wide trig
    reduction. The row must have at least one element when an input is of class ``"0"``."""
    n_mem = len(ops)
    # inputs constant along the row are loaded once per row, before its loop (a gather's index then
    # is loop-invariant, its loads affine in j, and the loop vectorizes); a row has >= 1 element
    invariant = {k: load_elem(b, ops[k], bases[k], j0, "0") for k in range(1, n_mem) if classes[k] == "0"}
    # the row loop; with fast_trig it also ORs together the lanes' "needs the wide reduction"
    pre_j = b.block
    j_head, j_body, j_done = (b.append_basic_block(n) for n in ("j.head", "j.body", "j.done"))
    b.branch(j_head)
    b.position_at_end(j_head)
    j = b.phi(I64, name="j")
    j.add_incoming(j0, pre_j)
    oob = b.phi(ir.IntType(1), name="oob")  # i1: an index out of range in this row
    oob.add_incoming(ir.Constant(ir.IntType(1), 0), pre_j)
    b.cbranch(b.icmp_signed("<", j, jend), j_body, j_done)
    b.position_at_end(j_body)
    b.trig_guards = [] if spec.fast_trig else None
    guards = []
    leaf = Leaves(b, args, ops, idx_strides, scalars, classes, bases, j, lay["gather"], lay["error"], guards,
                  invariant)
    value = emit_expr(b, spec.expr, leaf)
    if align is None:
        store_elem(b, ops[0], bases[0], j, classes[0], value)
    else:
        st = b.store(value, b.gep(ops[0].ptr, [b.add(bases[0], j)]), align=align)
        st.set_metadata("nontemporal", module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
    new_oob = oob
    for g in guards:
        new_oob = b.or_(new_oob, g)
    oob.add_incoming(new_oob, b.block)
    flags = _retry_flags(b, b.trig_guards or (), j_head, pre_j)
    b.trig_guards = None
    j.add_incoming(b.add(j, const(I64, 1), flags=["nsw"]), b.block)
    latch = b.branch(j_head)
    if latch_md is not None:
        latch.set_metadata("llvm.loop", latch_md)
    elif spec.fast_trig or _has_math(spec.expr):
        latch.set_metadata("llvm.loop", loop_metadata(module, fname, interleave=2))
    b.position_at_end(j_done)
    if guards:
        with b.if_then(oob, likely=False):
            b.store(const(I64, 1), b.gep(args, [const(I64, lay["error"])]))
    if flags:
        again = None
        for phi, sign in flags:
            t = b.icmp_signed("<", phi, ir.Constant(phi.type, 0)) if sign else phi
            again = t if again is None else b.or_(again, t)
        with b.if_then(again, likely=False):
            b.store(const(I64, 1), b.gep(args, [const(I64, lay["retry"])]))
