"""IRBuilder helpers: types of our dtypes, constants, intrinsics and counted loops.

Kernel generators use these instead of writing IR by hand, so every generator declares
intrinsics the same (idempotent) way and loops look the same everywhere.
"""
from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()

# dtype name -> (register type, storage type); complex values are (re, im) pairs of the float type.
_TYPES = {
    "bool": (I1, I8),
    "int8": (I8, I8), "uint8": (I8, I8), "int16": (ir.IntType(16),) * 2, "uint16": (ir.IntType(16),) * 2,
    "int32": (I32, I32), "uint32": (I32, I32), "int64": (I64, I64), "uint64": (I64, I64),
    "float32": (F32, F32), "float64": (F64, F64), "complex64": (F32, F32), "complex128": (F64, F64),
}


def reg_type(dtype) -> ir.Type:
    """Type of one value (one component for complex dtypes) in registers."""
    return _TYPES[dtype.name][0]


def mem_type(dtype) -> ir.Type:
    """Type of one stored element (one component for complex dtypes)."""
    return _TYPES[dtype.name][1]


def const(ty: ir.Type, value) -> ir.Constant:
    """A constant of an integer or float type."""
    if isinstance(ty, ir.IntType):
        return ir.Constant(ty, int(value) & ((1 << ty.width) - 1))
    return ir.Constant(ty, float(value))


def intrinsic(b: ir.IRBuilder, name: str, ty: ir.Type, *args) -> ir.Value:
    """Call the LLVM intrinsic ``name`` overloaded on ``ty`` (declared once per module)."""
    fnty = ir.FunctionType(ty, [a.type for a in args])
    fn = b.module.declare_intrinsic(name, [ty], fnty=fnty)
    return b.call(fn, list(args))


def extern(b: ir.IRBuilder, name: str, ret: ir.Type, argtys: list, *args) -> ir.Value:
    """Call an external C function (declared once per module)."""
    fn = b.module.globals.get(name)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(ret, argtys), name=name)
    return b.call(fn, list(args))


@contextmanager
def for_range(b: ir.IRBuilder, start: ir.Value, stop: ir.Value, name: str = "i"):
    """``for i in range(start, stop)`` with step 1; yields ``i`` with the builder in the body."""
    pre = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    idx = b.phi(start.type, name=name)
    idx.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", idx, stop), body, done)
    b.position_at_end(body)
    yield idx
    nxt = b.add(idx, ir.Constant(start.type, 1), name=f"{name}.next", flags=["nsw"])
    idx.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(done)


def product(b: ir.IRBuilder, values: list) -> ir.Value:
    """The i64 product of ``values`` (1 for none): e.g. a reduction's number of outputs."""
    out = ir.Constant(I64, 1)
    for v in values:
        out = b.mul(out, v)
    return out


def add_offsets(b: ir.IRBuilder, flat, extents: list, strides: list, bases: list, first: int = 0) -> list:
    """Unravel ``flat`` (C order) over ``extents`` and add ``index * strides[m][first + d]`` to
    ``bases[m]`` for every operand m; returns the new bases. Shared by every generator."""
    rem = flat
    bases = list(bases)
    for d in range(len(extents) - 1, -1, -1):
        k = b.srem(rem, extents[d]) if d else rem
        if d:
            rem = b.sdiv(rem, extents[d])
        bases = [b.add(bases[m], b.mul(k, strides[m][first + d])) for m in range(len(bases))]
    return bases


def select(b: ir.IRBuilder, cond, a, c):
    """``a if cond else c`` for plain values and for (re, im) pairs."""
    if isinstance(a, tuple):
        return tuple(b.select(cond, x, y) for x, y in zip(a, c))
    return b.select(cond, a, c)


def kernel_entry(module: ir.Module, fname: str):
    """Start the kernel ``void fname(i64* args, i64 start, i64 stop)``: returns (function, builder
    in its entry block, ``slot(k)`` loading argument slot k (an int or an i64 value), start, stop)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [k if isinstance(k, ir.Value) else const(I64, k)]))
    return fn, b, slot, start, stop


def while_loop(b: ir.IRBuilder, inits: list, cond, body, name: str, metadata=None) -> list:
    """``vals = inits; while cond(vals): vals = body(vals)``; returns the final values (the
    header's phis). ``body`` may emit blocks of its own; ``metadata`` (an ``llvm.loop`` node)
    goes on the back edge."""
    pre = b.block
    head, blk, done = (b.append_basic_block(f"{name}.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    phis = [b.phi(v.type) for v in inits]
    for p, v in zip(phis, inits):
        p.add_incoming(v, pre)
    b.cbranch(cond(phis), blk, done)
    b.position_at_end(blk)
    new = body(phis)
    for p, v in zip(phis, new):
        p.add_incoming(v, b.block)
    back = b.branch(head)
    if metadata is not None:
        back.set_metadata("llvm.loop", metadata)
    b.position_at_end(done)
    return phis


def range_loop(b: ir.IRBuilder, lo, hi, inits: list, body, name: str, metadata=None, step=None) -> list:
    """``for i in range(lo, hi, step): vals = body(i, vals)`` with carried values ``inits`` (i64
    bounds, ``step`` an i64 value, default 1); returns the final values."""
    step = step if step is not None else ir.Constant(I64, 1)
    out = while_loop(b, [lo] + list(inits), lambda s: b.icmp_signed("<", s[0], hi),
                     lambda s: [b.add(s[0], step, flags=["nsw"])] + list(body(s[0], s[1:])), name, metadata)
    return out[1:]


def vector_loop(b: ir.IRBuilder, lo, hi, body, name: str, lanes: int) -> None:
    """``for c in [lo, hi): body(c)``, marked for the loop vectorizer (``lanes`` wide; ``name``
    unique in the function), which then also accepts the runtime overlap checks of several rows
    the body reads."""
    from .elementwise import loop_metadata
    range_loop(b, lo, hi, [], lambda c, _: (body(c), [])[1], name,
               loop_metadata(b.module, f"{b.function.name}.{name}", width=lanes))


def subtract_rows(b: ir.IRBuilder, fty: ir.Type, dst, negs: list, srcs: list, lo, hi, name: str, lanes: int):
    """``dst[c] += sum(neg * src[c] for neg, src in zip(negs, srcs))`` for ``c`` in ``[lo, hi)``
    (``negs``: the rows' negated coefficients; one fused multiply-add per row, in order), as a
    :func:`vector_loop`."""
    def body(c):
        v = b.gep(dst, [c])
        acc = b.load(v)
        for nl, src in zip(negs, srcs):
            acc = intrinsic(b, "llvm.fma", fty, nl, b.load(b.gep(src, [c])), acc)
        b.store(acc, v)
    vector_loop(b, lo, hi, body, name, lanes)
