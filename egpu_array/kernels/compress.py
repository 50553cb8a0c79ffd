"""Generator of compress kernels: ``x[mask]`` for a boolean mask over the leading axes of ``x``.

Two launches of the same kernel kind, over chunks of ``chunk`` mask elements (work item = chunk):

- ``phase == "count"``: args ``n, chunk, mask pointer, counts pointer``; writes the number of
  True elements of each chunk (int64). The host reads these few numbers (the result's size is
  data-dependent) and turns them into each chunk's first output row;
- ``phase == "write"``: args ``n, chunk, rowlen, mask pointer, x pointer, out pointer, count,
  then one first-output-row per chunk``; copies the rows (``rowlen`` contiguous elements of the
  contiguous ``x``) of the True mask elements, in order. With ``rowlen == 1`` the loop is
  branch-free: every element is stored, at its output position when selected and otherwise at
  the scratch element ``out[count]`` just past the result (allocated for that purpose).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .compact_chunks import chunk_range
from .elementwise import dtype_named
from .irb import I64, I8, const, for_range, while_loop
from .scatter import _Mem

__all__ = ["CompressSpec", "generate"]


@dataclass(frozen=True)
class CompressSpec:
    """A compress kernel for elements of ``dtype``; ``phase`` is ``"count"`` or ``"write"``."""
    dtype: str
    phase: str

    kind = "compress"

    @property
    def name(self) -> str:
        return f"compress_{self.phase}_{self.dtype}"


def generate(spec: CompressSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the compress kernel for ``spec`` to ``module`` under the name ``fname``."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [k if isinstance(k, ir.Value) else const(I64, k)]))

    zero = const(I64, 0)
    n, chunk = slot(0), slot(1)
    with for_range(b, start, stop, name="c") as c:
        lo, hi = chunk_range(b, c, chunk, n)
        if spec.phase == "count":
            mask = b.inttoptr(slot(2), I8.as_pointer())
            counts = b.inttoptr(slot(3), I64.as_pointer())
            total = while_loop(b, [lo, zero], lambda s: b.icmp_signed("<", s[0], hi),
                           lambda s: [b.add(s[0], const(I64, 1)),
                                      b.add(s[1], b.zext(b.icmp_unsigned("!=", b.load(b.gep(mask, [s[0]])),
                                                                         const(I8, 0)), I64))], "cnt")[1]
            b.store(total, b.gep(counts, [c]))
        else:
            _write(b, spec, slot, c, lo, hi)
    b.ret_void()
    return fn


def _write(b, spec, slot, c, lo, hi):
    """The write phase for chunk ``c`` (mask elements [lo, hi))."""
    one = const(I64, 1)
    rowlen = slot(2)
    mask = b.inttoptr(slot(3), I8.as_pointer())
    dtype = dtype_named(spec.dtype)
    x, out = _Mem(b, slot(4), dtype), _Mem(b, slot(5), dtype)
    scratch = slot(6)
    first = slot(b.add(const(I64, 7), c))

    def selected(i):
        return b.icmp_unsigned("!=", b.load(b.gep(mask, [i])), const(I8, 0))

    with b.if_else(b.icmp_signed("==", rowlen, one)) as (single, rows):
        with single:  # branch-free: unselected elements go to the scratch slot out[count]
            def step(s):
                i, o = s
                m = selected(i)
                out.store(b.select(m, o, scratch), x.load(i))
                return [b.add(i, one), b.add(o, b.zext(m, I64))]
            while_loop(b, [lo, first], lambda s: b.icmp_signed("<", s[0], hi), step, "one")
        with rows:
            def row(s):
                i, o = s
                m = selected(i)
                with b.if_then(m):
                    src, dst = b.mul(i, rowlen), b.mul(o, rowlen)
                    with for_range(b, const(I64, 0), rowlen, name="k") as k:
                        out.store(b.add(dst, k), x.load(b.add(src, k)))
                return [b.add(i, one), b.add(o, b.zext(m, I64))]
            while_loop(b, [lo, first], lambda s: b.icmp_signed("<", s[0], hi), row, "rows")
