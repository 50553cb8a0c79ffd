"""KernelSpec: the hashable description of a kernel, and the cache key.

Shapes, strides, pointers and scalar values are runtime arguments, so one compiled kernel serves
every shape of the same structure. An expression is a flat program: a tuple of instructions in
dependency order, whose last instruction is the result:

- ``("in", k)``: element of buffer input k;  ``("arg", k)``: scalar argument k;
- ``("idx", k)``: the index value of index operand k (``arange``, ``eye``, ``tril`` use these);
- ``(op, dtype_name, i, j, ...)``: an op of ``kernels.ops.OPS`` computed in ``dtype_name`` on the
  values of earlier instructions ``i, j, ...``;
- ``("cast", from_name, to_name, i)``.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ElementwiseSpec"]


@dataclass(frozen=True)
class ElementwiseSpec:
    """A fused elementwise kernel over ``ndim`` collapsed dimensions.

    ``classes`` gives, per operand (the output, then buffer inputs, then index operands), the
    class of its stride along the innermost dimension: ``"c"`` (1), ``"0"`` (broadcast) or ``"s"``
    (any); in a ``tiled`` spec also ``"t"`` for inputs (any, and 1 along dimension ``ndim - 2``).
    ``"c"`` and ``"0"`` let the inner loop vectorize.
    """
    expr: tuple
    in_dtypes: tuple
    arg_dtypes: tuple
    n_idx: int
    out_dtype: str
    ndim: int
    classes: tuple
    #: sin/cos/tan with the fast range reduction only; lanes that need the wide one set the
    #: ``retry`` slot and the scheduler reruns the full variant (fast_trig=False)
    fast_trig: bool = False
    #: a large unit-stride 1-d output stored with non-temporal (streaming) stores on x86-64 hosts
    #: (:func:`.elementwise.streams_output` decides; other targets ignore it)
    stream: bool = False
    #: walked in blocks of the last two dimensions (work items count blocks, not elements): the
    #: inputs of class ``"t"`` (unit stride along dimension ``ndim - 2``, read transposed) are
    #: staged block by block in registers and a small buffer (:mod:`.elementwise`, host targets)
    tiled: bool = False

    kind = "elementwise"

    @property
    def name(self) -> str:
        """A short readable name for profiles: the ops in the expression."""
        ops = [ins[0] if ins[0] != "cast" else f"cast_{ins[2]}" for ins in self.expr
               if ins[0] not in ("in", "arg", "idx")]
        seen = list(dict.fromkeys(ops)) or ["copy"]
        return "ew_" + "_".join(seen[:6]) + ("_etc" if len(seen) > 6 else "")


@dataclass(frozen=True)
class ReduceSpec:
    """A reduction (or scan) of a fused elementwise expression over ``n_red`` collapsed dimensions.

    ``op`` is one of :data:`REDUCE_OPS`. Every memory operand has ``n_kept + n_red`` strides (the
    output's are 0 along reduced dimensions, except for scans). When ``chunked``, work item ``w``
    reduces chunk ``c = w % nchunks`` of output ``o = w // nchunks`` (walk "spread": the other way
    round) and stores the raw accumulator at ``partials[o * nchunks + c]`` for a second pass to
    combine. ``post == "divide"`` divides the accumulator by a runtime divisor (mean, var).
    """
    op: str
    expr: tuple
    in_dtypes: tuple
    arg_dtypes: tuple
    n_idx: int
    expr_dtype: str
    acc_dtype: str
    out_dtype: str
    n_kept: int
    n_red: int
    classes: tuple
    post: str
    chunked: bool
    #: "inner": each work item reduces its whole reduced space (rows of the innermost reduced
    #: dimension vectorize); "outer": one kept dimension, contiguous or broadcast in every
    #: operand, is the vectorized inner loop and the reduced space the outer one (axis-0 sums)
    order: str = "inner"
    #: row order only: every row is this many elements long (2..8) and packed in every input
    #: (kernels.reduction_short unrolls it; 0: a general row length)
    short: int = 0
    #: column order only: every input's rows follow one another in memory and the kept dimension
    #: is narrow (kernels.reduction_outer walks runs of rows as one wide row)
    packed: bool = False
    #: GPU block kernels only (kernels.ptx_reduce), row order: "" (the target's default walk),
    #: "blocks" (a thread block reduces each work item, also when not chunked: long contiguous
    #: rows, thread 0 stores the result) or "spread" (chunked; work item ``w`` is chunk
    #: ``w // n_out`` of output ``w % n_out``, so that neighbouring threads read neighbouring
    #: outputs: reductions down columns with too few outputs to fill the GPU)
    walk: str = ""

    kind = "reduce"

    @property
    def name(self) -> str:
        inner = ElementwiseSpec(self.expr, self.in_dtypes, self.arg_dtypes, self.n_idx, self.expr_dtype,
                                1, ()).name[3:]
        return f"red_{self.op}{'_partial' if self.chunked else ''}_{inner}"


#: reduction ops: name -> is it a scan (one output per input element along the axis)
REDUCE_OPS = {"sum": False, "prod": False, "max": False, "min": False, "all": False, "any": False,
              "argmax": False, "argmin": False, "cumsum": True, "cumprod": True}


@dataclass(frozen=True)
class SortSpec:
    """A stable sort of contiguous rows of ``dtype`` (see kernels.sort); ``phase`` is ``"local"``
    (merge sort segments in place) or ``"merge"`` (one merge pass between two buffers), or a radix
    sort phase (``"hist_all"``, ``"hist_low"``, ``"hist"``, ``"prefix"``, ``"scatter[_first]"``: kernels.sort_radix)."""
    dtype: str
    descending: bool
    with_idx: bool
    phase: str

    kind = "sort"

    @property
    def name(self) -> str:
        return f"sort_{self.phase}_{self.dtype}{'_desc' if self.descending else ''}{'_idx' if self.with_idx else ''}"


@dataclass(frozen=True)
class SearchSpec:
    """Binary search of each element of a contiguous array in a sorted 1-D array (kernels.search).

    ``mode``: ``"left"``/``"right"`` (searchsorted: int64 positions) or ``"in"``/``"notin"`` (isin:
    bool), or isin's table phases ``"mark"``, ``"in_table"``, ``"notin_table"`` (kernels.search);
    ``sorter``: the sorted order is given by an int64 permutation."""
    dtype: str
    mode: str
    sorter: bool

    kind = "search"

    @property
    def name(self) -> str:
        return f"search_{self.mode}_{self.dtype}{'_sorter' if self.sorter else ''}"


@dataclass(frozen=True)
class CompactSpec:
    """A compaction that writes a data-dependent number of results (kernels.compact_chunks).

    ``op == "nonzero"``: coordinates of the nonzero elements of a contiguous ``ndim``-D array;
    ``op == "unique"``: from sorted values (and their original positions) the distinct values and,
    per ``outputs`` (a subset of values/indices/counts/inverse), their first indices, counts and the
    inverse map; ``op == "unique_bins"``: the same outputs of integers in a small range, by
    counting (kernels.unique_bins); ``op == "unique_hash"``: of few distinct values, by hashing
    (kernels.unique_hash)."""
    op: str
    dtype: str
    ndim: int
    outputs: tuple
    #: over chunks of the input: "count" (results per chunk), "fill" (each chunk writes from the
    #: sum of the counts before it), "runs" (unique: occurrence counts from the run starts);
    #: unique_bins: "bins", "merge", "emit", "inverse"; unique_hash: "table", "gather", "emit", "inverse"
    phase: str = "fill"

    kind = "compact"

    @property
    def name(self) -> str:
        return f"{self.op}_{self.phase}_{self.dtype}"
