"""A plain read of memory on the cpu device's threads: the reference the memory-bound benchmarks
set their figures against, measured in the same process as the cases.

This machine's memory bandwidth is shared with other tenants and moves by 20-30% between runs
minutes apart, so "% of the limit" alone cannot say whether a slow case is our kernel or the
machine at that moment. :class:`PlainRead` times the simplest fast reading code (one contiguous
range per work item, four 32-byte vector accumulators, no bookkeeping) over a buffer of the
same size as the case's, launched through the same device and work queue as our kernels; the
benchmark interleaves it with the case, so both see the same load.
"""
from __future__ import annotations

import ctypes

from llvmlite import ir

from egpu_array.kernels.irb import I64, const, kernel_entry, range_loop

__all__ = ["PlainRead"]

_LANES, _ACCS = 8, 4            # <8 x float> vectors, four accumulators side by side
_VEC_BYTES = 4 * _LANES


def _generate(module: ir.Module, fname: str) -> None:
    """``void fname(i64* args, i64 start, i64 stop)``: args = [data, out, groups per item]; item
    i sums its ``groups`` groups of four vectors into ``out[i]`` (float32: the result is only there
    so the loads are not dead)."""
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, _LANES)
    fn, b, slot, start, stop = kernel_entry(module, fname)
    data = b.inttoptr(slot(0), vec.as_pointer())
    out = b.inttoptr(slot(1), f32.as_pointer())
    groups = slot(2)
    zero = ir.Constant(vec, [0.0] * _LANES)

    def item(i, _):
        def group(g, accs):
            base = b.mul(g, const(I64, _ACCS))
            return [b.fadd(a, b.load(b.gep(data, [b.add(base, const(I64, k))]), align=_VEC_BYTES))
                    for k, a in enumerate(accs)]
        first = b.mul(i, groups)
        accs = range_loop(b, first, b.add(first, groups), [zero] * _ACCS, group, "g")
        total = accs[0]
        for a in accs[1:]:
            total = b.fadd(total, a)
        lanes = [b.extract_element(total, const(ir.IntType(32), k)) for k in range(_LANES)]
        s = lanes[0]
        for v in lanes[1:]:
            s = b.fadd(s, v)
        b.store(s, b.gep(out, [i]))
        return []

    range_loop(b, start, stop, [], item, "item")
    b.ret_void()


class PlainRead:
    """``PlainRead(device, nbytes)()`` reads about ``nbytes`` of the device's memory (a buffer of
    its own) with :func:`_generate`'s kernel over all the device's threads; ``.nbytes`` is what one
    call reads exactly."""

    def __init__(self, device, nbytes: int, items: int = 256):
        from egpu_array._schedule import pack_args
        target = device.target
        module = target.new_module("plain_read")
        _generate(module, "plain_read")
        self.program = device.load(target.compile(module), "plain_read", None)
        group_bytes = _VEC_BYTES * _ACCS
        groups = max(1, nbytes // (items * group_bytes))
        self.items, self.nbytes = items, items * groups * group_bytes
        self.device = device
        self._data = device.allocator.alloc(self.nbytes)
        ctypes.memset(self._data.ptr, 0, self.nbytes)  # (touched: the pages exist before timing)
        self._out = device.allocator.alloc(4 * items)
        self._args = pack_args([self._data.ptr, self._out.ptr, groups])

    def __call__(self) -> None:
        self.device.launch(self.program, self._args, self.items, self.nbytes, work=self.nbytes // 4)
