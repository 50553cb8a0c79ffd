"""The cuda device's execution model, emulated on the host: every kernel runs through the same
``.entry`` wrappers as on a GPU (kernels.ptx.add_entries: grid-stride loop, one-thread finalize),
with the special registers (tid, ntid, ctaid, nctaid) read from globals that the launcher sets for
each emulated thread. Threads run one after the other, each over items t, t + T, t + 2T, ..., so
the order of work items differs from the cpu device's contiguous ranges, as it does on a GPU.

This checks the wrappers and that every kernel kind is correct when its work items are spread over
threads this way (NumPy is the oracle); it cannot check NVPTX code generation (see test_cuda_ptx)
or races between threads running at once.
"""
from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

import egpu_array as xp
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.cuda import PER_CALL
from egpu_array.backend.device import Program, register_device
from egpu_array.kernels import ptx, ptx_reduce
from egpu_array.kernels.irb import I32, I64
from egpu_array.kernels.targets import HostTarget

BLOCK, MAX_GRID = 4, 3  # tiny grid: 12 threads, so every launch strides
SREGS = ("tid.x", "ntid.x", "ctaid.x", "nctaid.x")
_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_FIN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _emu_sreg(b: ir.IRBuilder, name: str) -> ir.Value:
    gname = "emu_" + name.replace(".", "_")
    g = b.module.globals.get(gname)
    if g is None:
        g = ir.GlobalVariable(b.module, I32, gname)
        g.initializer = ir.Constant(I32, 0)
    return b.zext(b.load(g), I64)


class HostIntrinsics(ptx_reduce.Intrinsics):
    """Block-reduction operations on the host, for one-thread blocks: special registers from the
    emulation's globals, shuffles that the kernel never uses (no partner lane), no barriers."""

    shared_addrspace = 0

    def sreg(self, b, name):
        return _emu_sreg(b, name)

    def shfl_down(self, b, v, delta):
        return v

    def barrier(self, b):
        pass


class GridEmuTarget(HostTarget):
    """Host object code of the NVPTX entries (and NVPTX generators), special registers emulated."""

    def __init__(self):
        super().__init__()
        self.key = "gridemu:" + self.key
        self.generators = {"reduce": lambda spec, m, f: ptx_reduce.generate(spec, m, f, HostIntrinsics())}

    def compile(self, module: ir.Module) -> bytes:
        ptx.add_entries(module, module.name, sreg=_emu_sreg)
        return super().compile(module)


class GridEmuDevice(CPUDevice):
    """Host memory; kernels launched as a grid of BLOCK x (up to) MAX_GRID emulated threads."""

    kind = "gridemu"

    def __init__(self, index: int = 0):
        import threading

        from egpu_array.backend.cpu import HostAllocator
        from egpu_array.backend.pool import PoolAllocator
        self.name = "gridemu"
        self.target = GridEmuTarget()  # its own target machine: the engine below owns it
        self.allocator = PoolAllocator(self, HostAllocator())
        self.num_threads = 8  # the reduction scheduler splits long reductions into chunks
        self._pool = None
        empty = llvm.parse_assembly("")
        empty.triple = self.target.triple
        self._engine = llvm.create_mcjit_compiler(empty, self.target.tm)
        self._engine_lock = threading.Lock()
        self.launches = []  # (kind, work items, grid, has finalize) of every launch

    def load(self, binary, fname, spec):
        with self._engine_lock:
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
            self._engine.finalize_object()
            get = self._engine.get_function_address
            entry = get(fname + ptx.ENTRY_SUFFIX)
            fin = get(fname + "_fin" + ptx.ENTRY_SUFFIX) if getattr(spec, "chunked", False) else 0
            regs = {}
            for r in SREGS:
                addr = self._engine.get_global_value_address("emu_" + r.replace(".", "_"))
                regs[r] = ctypes.c_int32.from_address(addr) if addr else None
        assert entry and (fin or not getattr(spec, "chunked", False))
        mode = "block" if ptx_reduce.block_reducible(spec) else "grid"
        return Program(fname, (_ENTRY(entry), regs, mode), spec, _FIN(fin) if fin else None)

    def launch(self, program, args, n, nbytes=0, work=None):
        entry, regs, mode = program.fn
        assert all(regs[r] is not None for r in ("tid.x", "ctaid.x", "nctaid.x")), "special registers unread"
        addr = args if isinstance(args, int) else ctypes.addressof(args)
        per = PER_CALL.get(program.spec.kind, 1) if mode == "grid" else 1
        grid = min(-(-n // (BLOCK * per)) if mode == "grid" else n, MAX_GRID)
        block = BLOCK if mode == "grid" else 1  # block reductions: one-thread blocks (see HostIntrinsics)
        self.launches.append((program.spec.kind, n, grid, program.tail is not None, mode))

        def run(fn, g, blk, *a):
            for c in range(g):
                for t in range(blk):
                    for r, v in zip(SREGS, (t, blk, c, g)):
                        if regs[r] is not None:
                            regs[r].value = v
                    fn(addr, *a)
        if n > 0:
            run(entry, grid, block, n, per)
        if program.tail is not None:
            run(program.tail, 2, 2)  # only thread 0 of block 0 may run the finalize step


register_device("gridemu", GridEmuDevice, lambda: [])

DEV = "gridemu"
rng = np.random.default_rng(7)


def _on(h):
    return xp.asarray(h, device=DEV)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8"])
def test_elementwise_strided_and_broadcast(dtype):
    h = (rng.standard_normal((13, 17)) * 10).astype(dtype)
    r = rng.standard_normal(17).astype(dtype)
    x = _on(h)
    got = np.asarray(x[:, ::-1] * 3 + _on(r))
    np.testing.assert_allclose(got, h[:, ::-1] * 3 + r, rtol=1e-6)


def test_math_and_trig_retry():
    h = np.array([1e30, 3.0, -1e300, 0.5, 2.0, -7.5, 1e-300])
    np.testing.assert_allclose(np.asarray(xp.sin(_on(h)) * xp.exp(-xp.abs(_on(h)))),
                               np.sin(h) * np.exp(-np.abs(h)), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("op", ["sum", "max", "mean", "argmin", "cumulative_sum", "prod"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_reductions(op, axis):
    h = rng.standard_normal((40, 23))
    if op == "cumulative_sum" and axis is None:
        axis = 1
    got = np.asarray(getattr(xp, op)(_on(h), axis=axis))
    want = {"cumulative_sum": np.cumsum}.get(op, getattr(np, op))(h, axis=axis)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "complex64", "bool"])
def test_chunked_block_reductions(dtype):
    """Few outputs, long rows: the scheduler chunks them; on NVPTX each chunk is a block reduction
    (kernels.ptx_reduce), combined by the finalize entry."""
    h = rng.standard_normal(1 << 19) * 4
    if dtype == "complex64":
        h = h + 1j * rng.standard_normal(1 << 19)
    h = (h > 0) if dtype == "bool" else h.astype(dtype)
    x = _on(h)
    if dtype == "bool":
        assert bool(xp.any(x)) and not bool(xp.all(x))
        assert int(xp.count_nonzero(x)) == int(h.sum())
        return
    np.testing.assert_allclose(complex(xp.sum(x)), h.sum(dtype="complex128" if dtype == "complex64" else None),
                               rtol=1e-5 if dtype in ("float32", "complex64") else 1e-10)
    if dtype != "complex64":
        assert float(xp.max(x)) == h.max() and float(xp.min(x)) == h.min()
    m = _on(h.reshape(2, -1))
    np.testing.assert_allclose(np.asarray(xp.sum(m, axis=1)), h.reshape(2, -1).sum(axis=1),
                               rtol=1e-5 if dtype in ("float32", "complex64") else 1e-10)
    if dtype in ("float32", "float64"):
        np.testing.assert_allclose(float(xp.mean(x * 2)), (h * 2).mean(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "int64", "uint8"])
def test_sort_search_unique_nonzero(dtype):
    h = (rng.standard_normal(3001) * 50).astype(dtype)
    x = _on(h)
    assert np.array_equal(np.asarray(xp.sort(x)), np.sort(h, kind="stable"))
    assert np.array_equal(np.asarray(xp.argsort(x, descending=True)), np.argsort(-h.astype(np.float64), kind="stable"))
    s = np.sort(h)
    assert np.array_equal(np.asarray(xp.searchsorted(_on(s), x)), np.searchsorted(s, h))
    assert np.array_equal(np.asarray(xp.unique_values(x)), np.unique(h))
    assert np.array_equal(np.asarray(xp.nonzero(x)[0]), np.nonzero(h)[0])


def test_indexing_copies_and_scatter():
    h = rng.standard_normal((20, 9))
    x = _on(h)
    idx = np.array([3, -1, 7, 3])
    assert np.array_equal(np.asarray(x[_on(idx)]), h[idx])
    assert np.array_equal(np.asarray(x[x > 0]), h[h > 0])
    assert np.array_equal(np.asarray(xp.concat([x, x[:3]])), np.concatenate([h, h[:3]]))
    assert np.array_equal(np.asarray(xp.roll(x, 3, axis=0)), np.roll(h, 3, axis=0))
    with pytest.raises(IndexError):
        np.asarray(x[_on(np.array([20]))])
    y = xp.asarray(x, copy=True)
    hy = h.copy()
    y[_on(np.array([1, 4, 1]))] = _on(np.arange(27.0).reshape(3, 9))
    hy[np.array([1, 4, 1])] = np.arange(27.0).reshape(3, 9)
    assert np.array_equal(np.asarray(y), hy)  # last duplicate wins, as in NumPy


def test_matmul():
    a, b = rng.standard_normal((33, 20)), rng.standard_normal((20, 11))
    np.testing.assert_allclose(np.asarray(_on(a) @ _on(b)), a @ b, rtol=1e-12)


@pytest.mark.parametrize("n", [64, 60, 97])
def test_fft(n):
    h = rng.standard_normal((3, n)) + 1j * rng.standard_normal((3, n))
    np.testing.assert_allclose(np.asarray(xp.fft.fft(_on(h))), np.fft.fft(h), rtol=1e-9, atol=1e-9)
    r = rng.standard_normal((4, n))
    np.testing.assert_allclose(np.asarray(xp.fft.rfft(_on(r))), np.fft.rfft(r), rtol=1e-9, atol=1e-9)


def test_every_kind_ran_through_the_grid():
    """Run last: the launches above covered every kernel kind, strided, and a finalize step."""
    from egpu_array.backend.device import get_device
    launches = get_device(DEV).launches
    kinds = {k for k, *_ in launches}
    assert {"elementwise", "reduce", "sort", "search", "compact", "scatter", "copies", "gemm", "fft"} <= kinds, kinds
    assert any(n > BLOCK * MAX_GRID for _, n, *_ in launches)
    assert any(fin and mode == "block" for *_, fin, mode in launches)  # ptx_reduce + finalize ran
