"""Generator of the batched small-matrix product: ``C[t] = A[t] @ B[t]`` for batches of matrices
too small for the packed GEMM (``kernels.gemm`` pads every product to its 6 x 16 register tiles and
packs each operand, which costs more than the arithmetic for a 3 x 3 or 16 x 16 matrix).

One work item per matrix of the batch. Row ``i`` of C is accumulated in place over K: ``C[i, :] =
sum_k A[i, k] * B[k, :]``, so the innermost loop runs along rows of B and C; when both are
unit-stride (``unit`` in the spec) it is a contiguous loop that LLVM vectorizes.

``void NAME(i64* args, i64 start, i64 stop)``; args: the ``n_batch`` batch extents, M, N, K, then
for C, A and B a pointer and strides over (batch..., rows, columns). Strides are elements.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, add_offsets, const, for_range, mem_type, kernel_entry

__all__ = ["GemmSmallSpec", "generate"]


@dataclass(frozen=True)
class GemmSmallSpec:
    """Batched small product of one real dtype over ``n_batch`` batch dimensions; ``unit``: the
    rows of B and C are contiguous."""
    dtype: str
    n_batch: int
    unit: bool

    kind = "gemm_small"

    @property
    def name(self) -> str:
        return f"gemm_small_{self.dtype}_b{self.n_batch}{'_u' if self.unit else ''}"


def generate(spec: GemmSmallSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    fn, b, slot, start, stop = kernel_entry(module, fname)
    nb = spec.n_batch
    extents = [slot(d) for d in range(nb)]
    m, n, k = slot(nb), slot(nb + 1), slot(nb + 2)
    ops = []
    pos = nb + 3
    for _ in range(3):  # C, A, B
        ptr = b.inttoptr(slot(pos), fty.as_pointer())
        ops.append((ptr, [slot(pos + 1 + d) for d in range(nb + 2)]))
        pos += nb + 3
    (c, cst), (a, ast), (bm, bst) = ops
    zero = const(I64, 0)
    at = lambda p, i: b.gep(p, [i])  # noqa: E731
    col = (lambda j, st: j) if spec.unit else (lambda j, st: b.mul(j, st))

    with for_range(b, start, stop, name="t") as t:
        cb, ab, bb = add_offsets(b, t, extents, [cst, ast, bst], [zero, zero, zero]) if nb else (zero, zero, zero)
        with for_range(b, zero, m, name="i") as i:
            crow = at(c, b.add(cb, b.mul(i, cst[nb])))
            arow = b.add(ab, b.mul(i, ast[nb]))
            with for_range(b, zero, n, name="z") as j:
                b.store(ir.Constant(fty, 0.0), at(crow, col(j, cst[nb + 1])))
            with for_range(b, zero, k, name="k") as kk:
                aik = b.load(at(a, b.add(arow, b.mul(kk, ast[nb + 1]))))
                brow = at(bm, b.add(bb, b.mul(kk, bst[nb])))
                with for_range(b, zero, n, name="j") as j:
                    cp = at(crow, col(j, cst[nb + 1]))
                    prod = b.fmul(aik, b.load(at(brow, col(j, bst[nb + 1]))))
                    b.store(b.fadd(b.load(cp), prod), cp)
    b.ret_void()
    return fn
