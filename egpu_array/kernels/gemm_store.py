"""The output side of the GEMM kernels (kernels.gemm): tile stores and the fused epilogue.

A finished register tile goes to the output in one of two ways. Full tiles of a unit-stride
output are stored straight from the vector registers, adding the partial sums of earlier K slices
and, on the last slice, running the epilogue on vectors when its ops allow
(:func:`vector_epilogue`). Edge tiles, strided outputs and other epilogues spill the tile to the
stack and go element by element, with the elementwise generator's ``Leaves`` and ``emit_expr``.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr, store_elem
from .irb import I64, const, for_range

__all__ = ["TileStores", "vector_epilogue"]

#: ops whose lowering (for float dtypes and bool) is plain IR that works lane-wise on vectors
_VECTOR_OPS = frozenset({"add", "subtract", "multiply", "divide", "negative", "positive", "maximum", "minimum",
                         "where", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                         "logical_and", "logical_or", "logical_not"})


def vector_epilogue(spec) -> bool:
    """Whether full tiles of a GemmSpec can run the epilogue on vectors: a unit-stride output,
    inputs of the GEMM's dtype that are contiguous or broadcast along N, scalars of that dtype, and
    ops from :data:`_VECTOR_OPS` (others, such as libm calls, run element by element)."""
    if spec.classes[0] != "c" or spec.n_idx:
        return False
    for ins in spec.expr:
        tag = ins[0]
        if tag == "in":
            k = ins[1]
            if spec.in_dtypes[k] != spec.dtype or (k != spec.acc_input and spec.classes[k + 1] == "s"):
                return False
        elif tag == "arg":
            if spec.arg_dtypes[ins[1]] != spec.dtype:
                return False
        elif tag not in _VECTOR_OPS or ins[1] not in (spec.dtype, "bool"):
            return False
    return True


class TileStores:
    """Mixin of the GEMM generator: the methods that write a finished tile (they use its builder
    ``b``, ``spec``, tile sizes, output and epilogue operands and per-task bases ``obase``)."""

    def store_tile(self, acc, i0, j0, mr, nr, first, last):
        """Write the valid mr x nr part of a tile: partial sums, or the epilogue on the last slice."""
        b, spec = self.b, self.spec
        full = b.and_(b.icmp_signed("==", mr, const(I64, self.MR)), b.icmp_signed("==", nr, const(I64, self.NR)))
        vec_epi = vector_epilogue(spec)
        if spec.classes[0] == "c":
            fast = full if (spec.identity or vec_epi) else b.and_(full, b.not_(last))
        else:
            fast = ir.Constant(ir.IntType(1), 0)
        with b.if_else(fast) as (then, other):
            with then:
                epi = last if vec_epi and not spec.identity else None
                with b.if_else(first) as (t2, o2):
                    with t2:
                        self._store_vectors(acc, i0, j0, False, epi)
                    with o2:
                        self._store_vectors(acc, i0, j0, True, epi)
            with other:
                tp = b.bitcast(self.tile, self.vec.as_pointer())
                for i, row in enumerate(acc):
                    for v, a in enumerate(row):
                        st = b.store(a, b.gep(tp, [const(I64, i * len(row) + v)]))
                        st.align = 32
                self._store_scalars(i0, j0, mr, nr, first, last)

    def _out_ptr(self, i, j):
        b, c = self.b, self.ops[0]
        off = b.add(self.obase[0], b.add(b.mul(i, c.strides[-2]), b.mul(j, c.strides[-1])))
        return b.gep(c.ptr, [off])

    def _store_vectors(self, acc, i0, j0, add, last):
        """A full tile straight from the registers (unit column stride); when ``last`` is given,
        the epilogue on vectors (see :func:`vector_epilogue`) is selected on the last K slice."""
        b, spec = self.b, self.spec
        vptr = self.vec.as_pointer()
        for i, row in enumerate(acc):
            r = b.add(i0, const(I64, i))
            base = self._out_ptr(r, j0)
            rows = [b.add(o, b.mul(r, op.strides[-2])) for o, op in zip(self.obase, self.ops)]
            for v, a in enumerate(row):
                p = b.bitcast(b.gep(base, [const(I64, v * self.VL)]), vptr)
                if add:
                    old = b.load(p)
                    old.align = self.dt.itemsize
                    a = b.fadd(a, old)
                if last is not None:
                    jv = b.add(j0, const(I64, v * self.VL))
                    a = b.select(last, emit_expr(b, spec.expr, self._vector_leaf(a, rows, jv)), a)
                st = b.store(a, p)
                st.align = self.dt.itemsize

    def _vector_leaf(self, acc, rows, jv):
        """Leaf values of the epilogue for lanes ``jv .. jv + VL`` of a row (element offsets
        ``rows`` of the operands): the product, contiguous or broadcast inputs, splat scalars."""
        b, spec = self.b, self.spec

        def leaf(ins, values):
            if ins[0] == "arg":
                return self.splat(self.scalars[ins[1]])
            if ins[1] == spec.acc_input:
                return acc
            m = ins[1] + 1
            op = self.ops[m]
            if spec.classes[m] == "0":
                return self.splat(b.load(b.gep(op.ptr, [rows[m]])))
            ld = b.load(b.bitcast(b.gep(op.ptr, [b.add(rows[m], jv)]), self.vec.as_pointer()))
            ld.align = self.dt.itemsize
            return ld
        return leaf

    def _store_scalars(self, i0, j0, mr, nr, first, last):
        """Element by element from the spilled tile (plus the output's partial sums unless
        ``first``), through the epilogue on the last K slice. Selects, not branches, keep one
        loop body (compile time): the first slice reads and ignores the output, and earlier
        slices compute and ignore the epilogue."""
        b, spec = self.b, self.spec
        if spec.classes[0] == "c" and (spec.identity or vector_epilogue(spec)):
            # only edge tiles come here: one flat loop, which LLVM leaves scalar (quick to compile)
            with for_range(b, const(I64, 0), b.mul(mr, nr), "se") as e:
                i = b.udiv(e, nr)
                self._store_element(i, b.sub(e, b.mul(i, nr)), i0, j0, first, last)
        else:  # every tile: rows LLVM vectorizes (the epilogue's math included)
            with for_range(b, const(I64, 0), mr, "si") as i:
                with for_range(b, const(I64, 0), nr, "sj") as jj:
                    self._store_element(i, jj, i0, j0, first, last)

    def _store_element(self, i, jj, i0, j0, first, last):
        """Element (i, jj) of the spilled tile to the output at (i0 + i, j0 + jj)."""
        b, spec = self.b, self.spec
        row, j = b.add(i0, i), b.add(j0, jj)
        bases = [b.add(base, b.mul(row, st[-2]))
                 for base, st in zip(self.obase, [o.strides for o in self.ops] + self.idx_strides)]
        v = b.load(b.gep(self.tile, [const(I64, 0), b.add(b.mul(i, const(I64, self.NR)), jj)]))
        v = b.select(first, v, b.fadd(v, b.load(self._out_ptr(row, j))))
        if not spec.identity:
            leaves = Leaves(b, self.args, self.ops, self.idx_strides, self.scalars, spec.classes, bases, j, 0, 0)
            acc_k = spec.acc_input

            def leaf(ins, values):
                return v if ins == ("in", acc_k) else leaves(ins, values)
            v = b.select(last, emit_expr(b, spec.expr, leaf), v)
        store_elem(b, self.ops[0], bases[0], j, spec.classes[0], v)
