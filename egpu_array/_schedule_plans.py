"""Plans for small eager ops: the lowering, spec and program of an op over leaves, memoized
(and, for whole expressions over contiguous leaves, the spec and program once lowered).

An op whose sources are all leaves (buffers laid out like the result, C-contiguous, or scalars),
computed into C-contiguous memory, is the common eager case (``x + 1.0``, ``a * b``, ``sin(x)``).
Its kernel depends only on the op, the dtypes, which sources are the same leaf, and the device: the
first such op goes through the general path (``_schedule.lower_elementwise``, the spec, the kernel
cache) and its plan is kept; later ones only fill in the argument slots. The launch is the same
kernel with the same slots the general path builds, so the semantics are the general path's.
"""
from __future__ import annotations

import dataclasses

from . import profiler
from ._graph import contiguous_strides
from .kernels import cache as _kcache
from .kernels import elementwise as _ew

__all__ = ["leaf_plan", "remember_plan", "known_spec", "remember_spec", "clear_plans", "contiguous_of",
           "expression_plan_key", "expression_plan", "remember_expression"]

#: (op, result dtype, id(device), then per source: its slot tag and dtype) -> _Plan
_PLANS: dict = {}
#: shape -> C-contiguous strides (the layout the plans cover)
_CONTIG: dict = {}
#: ops whose node is not an elementwise instruction over its sources
_EXCLUDED = frozenset({"gather", "reduce", "matmul"})


class _Plan:
    """What a repeated op needs: the program and spec, the device (held so that ``id(device)``
    in the key is never reused), the bytes touched per element, and the spec's fast_trig.
    ``out_size``: the output's itemsize where large outputs are streamed on this device (see
    ``kernels.elementwise.streams_output``), else 0; :meth:`switched` gives the other variant."""

    __slots__ = ("program", "spec", "device", "item_bytes", "fast_trig", "out_size", "other")

    def __init__(self, program, spec, device, item_bytes: int, out_dtype):
        self.program, self.spec, self.device = program, spec, device
        self.item_bytes = item_bytes
        self.fast_trig = spec.fast_trig
        streams = _ew.streams_output(getattr(device.target, "triple", ""), spec.expr, out_dtype, 1 << 62)
        self.out_size = out_dtype.itemsize if streams else 0
        self.other = None

    def switched(self) -> tuple:
        """``(program, spec)`` of the same kernel with ``stream`` flipped (compiled once)."""
        if self.other is None:
            spec = dataclasses.replace(self.spec, stream=not self.spec.stream)
            self.other = (_kcache.get_program(self.device, spec), spec)
        return self.other


def leaf_plan(root, out):
    """``(key, plan, inputs, consts)`` when ``root`` is an op over leaves in the covered layout
    (``plan`` None when not seen yet), else None. ``inputs`` and ``consts`` are the leaves in the
    order ``lower_elementwise`` numbers them (first appearance; equal views and equal shareable
    scalars share one slot, as there)."""
    srcs = root.srcs
    if not srcs or root.op in _EXCLUDED:
        return None
    shape = root.shape
    cs = _CONTIG.get(shape) if type(shape) is tuple else None
    if cs is None:
        cs = contiguous_of(shape)
    if out.strides != cs:
        return None
    key = [root.op, root.dtype, id(root.device)]
    inputs = []
    consts = []
    for s in srcs:  # (a few sources: scans, where lower_elementwise keeps a dict)
        op = s.op
        dtype = s.dtype
        if op == "buffer":
            v = s.arg
            if s.shape != shape or v.strides != cs:
                return None
            buf, off = v.buffer, v.offset
            for tag, t in enumerate(inputs):  # the same view: one input (strides/shape equal here)
                if t.dtype is dtype and t.arg.buffer is buf and t.arg.offset == off:
                    break
            else:
                tag = len(inputs)
                inputs.append(s)
        elif op == "const":
            arg = s.arg
            tag = None
            if _shareable(arg):  # an equal scalar of the same type and dtype: one slot
                ty = type(arg)
                for j, c in enumerate(consts):
                    if c.dtype is dtype and type(c.arg) is ty and (c.arg is arg or c.arg == arg):
                        tag = -1 - j
                        break
            if tag is None:
                tag = -1 - len(consts)
                consts.append(s)
        else:
            return None
        key.append(tag)
        key.append(dtype)
    key = tuple(key)
    plan = _PLANS.get(key)
    if plan is not None:
        if plan.device is not root.device:  # (cannot happen while the plan holds the device)
            plan = None
        elif _kcache.recorders:  # the spec is requested again: tell the recorders, as get_program does
            for r in _kcache.recorders:
                r(plan.device, plan.spec)
    return key, plan, inputs, consts


def remember_plan(key, root, spec, program, inputs, consts, lowered) -> None:
    """Keep the plan of ``key`` after the general path lowered ``root``, if its leaves are the ones
    :func:`leaf_plan` found (in the same order) and the layout collapsed to one unit-stride loop."""
    if len(lowered.inputs) != len(inputs) or len(lowered.consts) != len(consts) or lowered.iotas \
            or lowered.gathers or spec.ndim != 1 or any(c != "c" for c in spec.classes):
        return
    if any(a is not b for a, b in zip(lowered.inputs, inputs)) \
            or any(a is not b for a, b in zip(lowered.consts, consts)):
        return
    if len(_PLANS) > 4096:
        _PLANS.clear()
    item_bytes = root.dtype.itemsize + sum(n.dtype.itemsize for n in inputs)
    _PLANS[key] = _Plan(program, spec, root.device, item_bytes, root.dtype)


#: (program, input dtypes, const dtypes, result dtype, id(device)) -> _Plan of a whole lowered
#: expression over C-contiguous leaves of the result's shape (see :func:`expression_plan_key`)
_EXPRESSIONS: dict = {}


def expression_plan_key(root, out, lowered):
    """The key of the plan of a lowered expression (``x * y + z``, ``exp(x) - 1.0``) whose
    buffers are all C-contiguous with the result's shape, computed into C-contiguous memory (no
    index leaves, no gathers), or None. Its program and leaves' dtypes fix the kernel (the
    lowering numbers leaves and shared subexpressions itself), so a later expression of the same
    structure skips the strides' collapse and the spec: :func:`expression_plan`."""
    if lowered.iotas or lowered.gathers:
        return None
    shape = root.shape
    cs = contiguous_of(shape)
    if out.strides != cs:
        return None
    for n in lowered.inputs:
        if n.shape != shape or n.arg.strides != cs:
            return None
    return (lowered.expr, tuple([n.dtype for n in lowered.inputs]), tuple([n.dtype for n in lowered.consts]),
            root.dtype, id(root.device))


def expression_plan(key, device):
    """The plan remembered under ``key`` (see :func:`expression_plan_key`), or None."""
    plan = _EXPRESSIONS.get(key)
    if plan is None or plan.device is not device:
        return None
    if _kcache.recorders:  # the spec is requested again: tell the recorders, as get_program does
        for r in _kcache.recorders:
            r(device, plan.spec)
    return plan


def remember_expression(key, root, spec, program, inputs) -> None:
    """Keep the plan of ``key`` once the general path built its kernel, if the layout collapsed
    to one unit-stride loop (always, for the layouts the key admits, but checked)."""
    if spec.ndim != 1 or any(c != "c" for c in spec.classes):
        return
    if len(_EXPRESSIONS) > 4096:
        _EXPRESSIONS.clear()
    item_bytes = root.dtype.itemsize + sum(n.dtype.itemsize for n in inputs)
    _EXPRESSIONS[key] = _Plan(program, spec, root.device, item_bytes, root.dtype)


def contiguous_of(shape: tuple) -> tuple:
    """``contiguous_strides(shape)``, remembered for recent shapes."""
    if type(shape) is not tuple:
        return contiguous_strides(shape)
    cs = _CONTIG.get(shape)
    if cs is None:
        if len(_CONTIG) > 1024:
            _CONTIG.clear()
        cs = _CONTIG[shape] = contiguous_strides(shape)
    return cs


#: (id(device), ElementwiseSpec fields but fast_trig) -> (spec, program, device)
_SPECS: dict = {}


def known_spec(device, fields: tuple):
    """``(spec, program)`` of an ElementwiseSpec with these fields (all but ``fast_trig``, which
    follows from them) already loaded on ``device``, or None: the general path's shortcut past
    building the spec and the kernel cache's lookup."""
    hit = _SPECS.get((id(device), fields))
    if hit is None or hit[2] is not device:
        return None
    if profiler._active:
        profiler.count("cache_hits")
    if _kcache.recorders:
        for r in _kcache.recorders:
            r(device, hit[0])
    return hit[0], hit[1]


def remember_spec(device, fields: tuple, spec, program) -> None:
    """Keep what :func:`known_spec` answers for ``fields`` on ``device``."""
    if len(_SPECS) > 4096:
        _SPECS.clear()
    _SPECS[(id(device), fields)] = (spec, program, device)


def clear_plans() -> None:
    """Forget every plan and remembered spec (the kernel cache's memory was cleared)."""
    _PLANS.clear()
    _SPECS.clear()
    _EXPRESSIONS.clear()
    from ._schedule_reduce import _PLANS as reduce_plans  # reductions of buffer leaves
    reduce_plans.clear()


def _shareable(value) -> bool:
    """Whether equal values of this scalar are interchangeable (not so for signed zeros)."""
    if isinstance(value, complex):
        return value.real != 0 and value.imag != 0
    return value != 0 or not isinstance(value, float)
