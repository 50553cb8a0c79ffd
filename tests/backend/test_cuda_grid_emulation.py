"""The cuda device's execution model, emulated on the host: every kernel runs through the same
``.entry`` wrappers as on a GPU (kernels.ptx.add_entries: grid-stride loop, one-thread finalize),
with the special registers (tid, ntid, ctaid, nctaid) read from globals that the launcher sets for
each emulated thread. Threads of grid kernels run one after the other, each over items t, t + T,
t + 2T, ..., so the order of work items differs from the cpu device's contiguous ranges, as it
does on a GPU.

Block kernels (launch mode "block": block reductions incl. argmax/argmin, block scans, the radix
sort's phases) run a block at a time with every thread of the block an OS thread running at once:
``bar.sync`` is a barrier of the block's threads, a shuffle / ``match.any`` is an exchange through
a barrier of the warp's lanes, shared memory is a host global (blocks do not overlap), special
registers come from thread-local state (see HostIntrinsics). The gridemu device uses warps of 4
lanes (the kernels take the warp width from their Intrinsics: same code, shuffle trees of 2 steps,
3 warps per block) because each shuffle or barrier costs the emulation a round of thread
wake-ups; gridemu32 runs 32-lane warps on small data.

This checks the wrappers and that every kernel is correct when its work is spread over threads and
blocks this way (NumPy is the oracle), and that no thread misses a barrier or shuffle the others
reach (a barrier times out). It cannot check NVPTX code generation (see test_cuda_ptx), the GPU's
memory model (weak ordering between blocks, atomics' visibility), warp-synchronous behaviour at
32 lanes beyond the cases run on gridemu32, or races in general: threads interleave as the OS and
the GIL schedule them, so a missing barrier shows only if the interleaving hits it (removing the
block scan's second barrier did fail its test when tried, but no schedule is guaranteed).
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from llvmlite import ir

import egpu_array as xp
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.cuda import PER_CALL
from egpu_array.backend.device import Program, register_device
from egpu_array.kernels import ptx, ptx_reduce, ptx_sort
from egpu_array.kernels.irb import I32, I64, const, extern
from egpu_array.kernels.targets import HostTarget

BLOCK, MAX_GRID = 4, 3  # tiny grid: 12 threads, so every launch strides
#: (lanes per warp, threads per block) of block kernels on the gridemu device: warps of 4 lanes
#: run the same code as 32-lane ones (shuffle trees of 2 steps instead of 5) at a fraction of the
#: emulation's cost (a shuffle is two barrier waits of every lane); three warps per block. The
#: gridemu32 device runs real 32-lane warps, two per block, on small data.
EMU_WARP, BLOCK_THREADS = 4, 12
BARRIER_TIMEOUT = 60.0  # seconds: a barrier not every thread reaches fails the launch
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


class _BlockRun:
    """One emulated thread block: its special registers, the block barrier and, per warp, a
    barrier and the 32 words a shuffle exchanges. Every thread of the block is an OS thread."""

    def __init__(self, ntid: int, ctaid: int, nctaid: int, warp: int):
        self.ntid, self.ctaid, self.nctaid, self.warp = ntid, ctaid, nctaid, warp
        self.bar = threading.Barrier(ntid, timeout=BARRIER_TIMEOUT)
        self.warps = [(threading.Barrier(min(warp, ntid - warp * w), timeout=BARRIER_TIMEOUT), [0] * warp)
                      for w in range(-(-ntid // warp))]
        self.errors = []
        self.barriers = 0  # block barriers passed (thread 0 counts)

    def fail(self, e: BaseException) -> None:
        self.errors.append(e)
        self.bar.abort()
        for bar, _ in self.warps:
            bar.abort()


_tls = threading.local()  # .run (the _BlockRun), .tid of the calling emulated thread


def _cb(restype, *argtypes):
    """A ctypes callback that records any exception in the block run instead of losing it."""
    def wrap(f):
        def safe(*a):
            try:
                return f(*a)
            except BaseException as e:  # noqa: BLE001
                _tls.run.fail(e)
                return 0 if restype is not None else None
        return ctypes.CFUNCTYPE(restype, *argtypes)(safe)
    return wrap


@_cb(ctypes.c_int32, ctypes.c_int32)
def _cb_sreg(code):
    run = _tls.run
    return (_tls.tid, run.ntid, run.ctaid, run.nctaid)[code]


@_cb(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32)
def _cb_shfl(v, delta, mode):
    """shfl.sync (full mask) in mode 0 (down, clamp to the last lane), 1 (up, clamp 0) or 2 (idx),
    or match.any.sync (mode 3): every lane of the warp must call it; out-of-range sources give the
    lane its own value."""
    run, tid = _tls.run, _tls.tid
    bar, words = run.warps[tid // run.warp]
    lane = tid % run.warp
    words[lane] = v
    bar.wait()
    if mode == 3:  # match.any: the mask of the lanes holding the same word
        got = sum(1 << k for k in range(bar.parties) if words[k] == v)
        got = got - (1 << 32) if got >= 1 << 31 else got
    else:
        src = (lane + delta, lane - delta, delta)[mode]
        got = words[src] if 0 <= src < bar.parties else v
    bar.wait()  # nobody overwrites a word before every lane has read
    return got


@_cb(None)
def _cb_barrier():
    if _tls.run.bar.wait() == 0:
        _tls.run.barriers += 1


for _name, _f in (("emu_block_sreg", _cb_sreg), ("emu_block_shfl", _cb_shfl), ("emu_block_bar", _cb_barrier)):
    llvm.add_symbol(_name, ctypes.cast(_f, ctypes.c_void_p).value)
_SREG_CODE = {"tid.x": 0, "ntid.x": 1, "ctaid.x": 2, "nctaid.x": 3}


class HostIntrinsics(ptx_reduce.Intrinsics):
    """The GPU operations of block kernels as calls into the emulator (the callbacks above): the
    threads of a block run at once as OS threads, shuffles exchange words through a per-warp
    barrier, ``bar.sync`` is a block-wide barrier. Shared memory is a plain global: blocks run one
    after the other, so one copy serves them all."""

    shared_addrspace = 0

    def __init__(self, warp: int):
        self.warp = warp

    def sreg(self, b, name):
        return b.zext(extern(b, "emu_block_sreg", I32, [I32], const(I32, _SREG_CODE[name])), I64)

    def _shfl(self, b, v, delta, mode):
        return extern(b, "emu_block_shfl", I32, [I32, I32, I32], v, const(I32, delta), const(I32, mode))

    def shfl_down(self, b, v, delta):
        return self._shfl(b, v, delta, 0)

    def shfl_up(self, b, v, delta):
        return self._shfl(b, v, delta, 1)

    def match_any(self, b, v):
        return self._shfl(b, v, 0, 3)

    def barrier(self, b):
        extern(b, "emu_block_bar", ir.VoidType(), [])


class GridEmuTarget(HostTarget):
    """Host object code of the NVPTX entries (and NVPTX generators), special registers emulated."""

    def __init__(self, warp: int):
        super().__init__()
        self.key = f"gridemu-threads-w{warp}:" + self.key  # (block kernels call the emulator's callbacks)
        self.generators = {"reduce": lambda spec, m, f: ptx_reduce.generate(spec, m, f, HostIntrinsics(warp)),
                           "sort": lambda spec, m, f: ptx_sort.generate(spec, m, f, HostIntrinsics(warp))}

    def compile(self, module: ir.Module) -> bytes:
        ptx.add_entries(module, module.name, sreg=_emu_sreg)
        return super().compile(module)


class GridEmuDevice(CPUDevice):
    """Host memory; kernels launched as a grid of BLOCK x (up to) MAX_GRID emulated threads."""

    kind = "gridemu"
    warp, block_threads = EMU_WARP, BLOCK_THREADS

    def __init__(self, index: int = 0):
        # its own target machine (the device's engine owns it); 8 "threads" so that the reduction
        # scheduler splits long reductions into chunks, though launches run here (this class's
        # launch), never on the cpu device's work queue
        super().__init__(target=GridEmuTarget(self.warp), num_threads=8)
        self.name = type(self).kind
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
        mode = ptx_reduce.launch_mode(spec)
        return Program(fname, (_ENTRY(entry), regs, mode), spec, _FIN(fin) if fin else None)

    def launch(self, program, args, n, nbytes=0, work=None):
        entry, regs, mode = program.fn
        addr = args if isinstance(args, int) else ctypes.addressof(args)
        per = PER_CALL.get(program.spec.kind, 1) if mode == "grid" else 1
        grid = min(-(-n // (BLOCK * per)) if mode == "grid" else n, MAX_GRID)
        self.launches.append((program.spec.kind, n, grid, program.tail is not None, mode))

        def run(fn, g, blk, *a):  # threads one after the other (kernels without barriers)
            assert all(regs[r] is not None for r in ("tid.x", "ctaid.x")), "special registers unread"
            for c in range(g):
                for t in range(blk):
                    for r, v in zip(SREGS, (t, blk, c, g)):
                        if regs[r] is not None:
                            regs[r].value = v
                    fn(addr, *a)
        if n > 0:
            if mode == "grid":
                run(entry, grid, BLOCK, n, per)
            else:
                for c in range(grid):
                    run_block(entry, self.block_threads, self.warp, c, grid, addr, n, per)
        if program.tail is not None:
            if ptx_reduce.block_finalized(program.spec):  # a block per output, barriers
                for c in range(2):
                    run_block(program.tail, self.block_threads, self.warp, c, 2, addr)
            else:
                run(program.tail, 2, 2)  # only thread 0 of block 0 may run the finalize step


def run_block(entry, ntid: int, warp: int, ctaid: int, nctaid: int, *args) -> "_BlockRun":
    """Run block ``ctaid`` of a block kernel: ``ntid`` OS threads call ``entry(*args)`` at once
    (ctypes releases the GIL while they run compiled code; the callbacks take it back)."""
    block = _BlockRun(ntid, ctaid, nctaid, warp)

    def thread(t):
        _tls.run, _tls.tid = block, t
        entry(*args)
    threads = [threading.Thread(target=thread, args=(t,)) for t in range(ntid)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if block.errors:
        raise AssertionError(f"block {ctaid}: {block.errors[0]!r}") from block.errors[0]
    return block


class GridEmu32Device(GridEmuDevice):
    """The emulation with the GPU's 32-lane warps, two per block (slower: small data only)."""

    kind = "gridemu32"
    warp, block_threads = 32, 64


register_device("gridemu", GridEmuDevice, lambda: [])
register_device("gridemu32", GridEmu32Device, lambda: [])

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


def _scan_ref(op, h, axis, dtype):
    f = np.cumsum if op == "cumulative_sum" else np.cumprod
    with np.errstate(all="ignore"):
        return f(h, axis=axis, dtype=dtype)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64", "int8", "uint8", "int64", "uint64", "complex64"]),
       st.sampled_from(["cumulative_sum", "cumulative_prod"]),
       st.sampled_from([(1,), (11,), (12,), (13,), (100,), (3, 37), (5, 1), (2, 3, 25)]),
       st.booleans(), st.booleans(), st.integers(0, 2**32 - 1))
def test_block_scans_match_numpy(dtype, op, shape, last_axis, flip, seed):
    """cumsum/cumprod as block scans (kernels.ptx_scan): rows shorter and longer than a block
    (tiles with carries), integer wrap-around, strided (reversed) input, NaN/inf, complex."""
    r = np.random.default_rng(seed)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        h = r.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)  # sums and products wrap
    else:
        h = r.standard_normal(shape) * (1.2 if op == "cumulative_prod" else 3)
        if dtype.startswith("complex"):
            h = h + 1j * r.standard_normal(shape)
        h = h.astype(dtype)
        if h.size > 4 and dtype.startswith("float"):
            h.flat[r.integers(0, h.size, 2)] = [np.nan, np.inf]
    axis = h.ndim - 1 if last_axis else 0
    x = _on(h)
    if flip:
        x, h = x[..., ::-1], h[..., ::-1]
    acc = {"int8": np.int64, "uint8": np.uint64}.get(dtype)  # the standard's default sum/prod dtypes
    got = np.asarray(getattr(xp, op)(x, axis=axis))
    want = _scan_ref(op, h, axis, acc)
    assert got.dtype == want.dtype
    if dtype.startswith(("int", "uint")):
        assert np.array_equal(got, want)
    else:
        tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_block_scans_ran_as_blocks_with_barriers():
    from egpu_array.backend.device import get_device
    dev = get_device(DEV)
    before = len(dev.launches)
    h = np.arange(1, 40, dtype=np.int64)
    assert np.array_equal(np.asarray(xp.cumulative_sum(_on(h), include_initial=True)), np.concatenate([[0], np.cumsum(h)]))
    assert [mode for *_, mode in dev.launches[before:] if _] [-1:] == ["block"]


def _chunked_arg(x, op: str, axis, chunks: int, out_dtype=xp.int64) -> np.ndarray:
    """A reduction with a forced number of chunks per output (the block-reduction path; the
    scheduler does not chunk argmax/argmin yet): the node's accumulator is int64 or float64, so
    the partials buffer has the 8 bytes per chunk that kernels.ptx_reduce._ArgBest stores (an
    int64 index)."""
    from egpu_array import _schedule
    from egpu_array._array import Array
    from egpu_array._graph import LazyNode, View, contiguous_strides
    from egpu_array._statistical import reduce_node
    node = reduce_node(op, op, x, axis, False, out_dtype, acc=out_dtype)._node
    buf = node.device.allocator.alloc(max(1, int(np.prod(node.shape))) * 8)
    view = View(buf, contiguous_strides(node.shape), 0)
    _schedule._realize_reduce(node, view, chunks=chunks)
    return np.asarray(Array._new(LazyNode("buffer", (), node.dtype, node.shape, view, node.device)))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64", "int8", "uint8", "int64", "bool"]),
       st.sampled_from(["argmax", "argmin"]), st.sampled_from([(1,), (7,), (60,), (257,), (3, 41), (2, 5, 9)]),
       st.sampled_from([None, 0, -1]), st.integers(2, 9), st.sampled_from(["plain", "ties", "nan", "inf", "zeros"]),
       st.integers(0, 2**32 - 1))
def test_chunked_argmax_argmin_match_numpy(dtype, op, shape, axis, chunks, kind, seed):
    """Block argmax/argmin (value + index pairs merged across threads, warps and chunks): ties go
    to the first index, the first NaN wins, -0.0 equals 0.0, all -inf/+inf rows, empty chunks."""
    r = np.random.default_rng(seed)
    if dtype == "bool":
        h = r.random(shape) < (0.1 if kind == "plain" else 0.9)
    elif dtype.startswith(("int", "uint")):
        h = r.integers(0, 3 if kind == "ties" else 100, shape).astype(dtype)
    else:
        h = (r.integers(-2, 3, shape) if kind == "ties" else r.standard_normal(shape)).astype(dtype)
        if kind == "nan":
            h.flat[r.integers(0, h.size, 1 + h.size // 5)] = np.nan
        elif kind == "inf":
            h[...] = np.inf if r.random() < 0.5 else -np.inf
        elif kind == "zeros":
            h[...] = np.where(r.random(shape) < 0.5, -0.0, 0.0)
    if axis is not None and axis >= h.ndim:
        axis = -1
    got = _chunked_arg(_on(h), op, axis, chunks)
    want = getattr(np, op)(h, axis=axis)
    assert np.array_equal(got, want), (h, got, want)


def test_block_forms_with_32_lane_warps(monkeypatch):
    """The real warp width (32 lanes, 5-step shuffle trees, 2 warps per block) on small data."""
    from egpu_array import _sorting
    monkeypatch.setattr(_sorting, "RADIX_MIN", 256)
    k = rng.integers(-3, 3, 900).astype(np.float32) / 2  # long runs of equal keys: match.any masks
    k[::50] = np.nan
    assert np.array_equal(np.asarray(xp.argsort(xp.asarray(k, device="gridemu32"))), np.argsort(k, kind="stable"))
    h = rng.standard_normal(300)
    h[[77, 201]] = np.nan
    x = xp.asarray(h, device="gridemu32")
    np.testing.assert_allclose(np.asarray(xp.cumulative_sum(x)), np.cumsum(h), rtol=1e-12)
    i = rng.integers(-2**62, 2**62, (2, 150))
    np.testing.assert_array_equal(np.asarray(xp.cumulative_prod(xp.asarray(i, device="gridemu32"), axis=1)),
                                  np.cumprod(i, axis=1))
    assert _chunked_arg(x, "argmax", None, 3) == 77
    g = rng.standard_normal((2, 333))
    g[1, 100:] = g[1].max()  # ties: the first index wins
    assert np.array_equal(_chunked_arg(xp.asarray(g, device="gridemu32"), "argmax", 1, 4), np.argmax(g, axis=1))
    s = rng.standard_normal((2, 500))
    np.testing.assert_allclose(_chunked_arg(xp.asarray(s, device="gridemu32"), "sum", 1, 3, xp.float64),
                               s.sum(axis=1), rtol=1e-12)


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


@pytest.mark.parametrize("dtype,n", [("uint8", 8200), ("float32", 700), ("int64", 700), ("bool", 300)])
def test_block_radix_sort(dtype, n, monkeypatch):
    """The radix sort's count and scatter phases as blocks (kernels.ptx_sort: shared-memory atomic
    counts; match.any ranks within warps, offsets across warps, tile by tile): stable order of
    equal keys (argsort), NaN last, -0.0 == 0.0, descending; 8200 elements make two chunks (the
    driver cuts chunks of at least 4096), the others one (each tile costs the emulation ~6 barrier
    rounds of every thread, so the sizes stay small)."""
    from egpu_array import _sorting
    from egpu_array.backend.device import get_device
    monkeypatch.setattr(_sorting, "RADIX_MIN", 256)
    r = np.random.default_rng(11)
    if dtype == "float32":
        h = r.integers(-40, 40, n).astype(dtype) / 4
        h[r.integers(0, n, 20)] = np.nan
        h[r.integers(0, n, 20)] = -0.0
    elif dtype == "bool":
        h = r.random(n) < 0.5
    else:
        h = r.integers(0, 255 if dtype == "uint8" else 70000, n).astype(dtype)
        h[::7] = h[3]  # many equal keys: stability shows in argsort
    dev = get_device(DEV)
    before = len(dev.launches)
    x = _on(h)
    assert np.array_equal(np.asarray(xp.argsort(x)), np.argsort(h, kind="stable"))
    if dtype != "uint8":
        assert np.array_equal(np.asarray(xp.sort(x)), np.sort(h, kind="stable"), equal_nan=dtype == "float32")
        want = np.asarray(xp.argsort(xp.asarray(h), descending=True))  # the cpu device's radix sort
        assert np.array_equal(np.asarray(xp.argsort(x, descending=True)), want)
    modes = {(k, mode) for k, _, _, _, mode in dev.launches[before:]}
    assert ("sort", "block") in modes and ("sort", "grid") not in modes  # every radix phase a block kernel
    assert any(k == "sort" and mode == "block" and items > 1 for k, items, _, _, mode in dev.launches[before:]) \
        == (n > 8192)


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


def test_gather_errors_name_the_function():
    """Gathers run inside elementwise and reduction kernels here, as on the cuda device (the plain
    gather kernel, kernels.gather, is the cpu and sim devices' path): an index out of range names
    the public function all the same."""
    from egpu_array.backend.device import get_device
    launches = get_device(DEV).launches
    first = len(launches)
    from egpu_array._gather import gather_axes
    x, bad = _on(np.arange(5.0)), _on(np.array([0, 5]))

    def pending_take():  # (take itself is computed at once: a gather left pending, as inside the library)
        return gather_axes(x, [0], [bad._node], "take")
    for func, case in (("take", lambda: xp.take(x, bad)), ("__getitem__", lambda: x[bad]),
                       ("take_along_axis", lambda: xp.take_along_axis(x, bad, axis=0)),
                       ("take", lambda: pending_take() * 2 + 1), ("take", lambda: xp.sum(pending_take()))):
        with pytest.raises(IndexError, match=rf"^{func}: an index is out of bounds for an axis of size 5 "):
            np.asarray(case())
    assert {kind for kind, *_ in launches[first:]} == {"elementwise", "reduce"}


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


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from(["sum", "max", "min", "prod"]),
       st.sampled_from([((1000,), None), ((3, 41), 1), ((37, 5, 29), (0, 2)), ((4, 300), (0, 1)),
                        ((9, 2, 130), (1, 2)), ((6, 7), 0)]),
       st.booleans(), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_chunked_block_reductions_match_numpy(op, case, flip, chunks, seed):
    """Block reductions with a forced number of chunks and the block finalize: rows narrower than
    a block (each step leaves the row: the re-unravel path), several reduced axes, reversed
    (strided) input, several outputs, the unrolled steps and the single steps at row ends."""
    shape, axis = case
    h = np.random.default_rng(seed).standard_normal(shape) * (0.05 if op == "prod" else 3)
    h = 1 + h if op == "prod" else h
    x = _on(h)
    if flip:
        x, h = x[..., ::-1], h[..., ::-1]
    got = _chunked_arg(x, op, axis, chunks, out_dtype=xp.float64)
    np.testing.assert_allclose(got, getattr(np, op)(h, axis=axis), rtol=1e-12)


_WALK_CASES = [(((24, 200), 1), "blocks"), (((5, 8, 130), (0, 2)), "blocks"), (((7, 300), 1), "blocks"),
               (((2000, 6), 0), "spread"), (((3000, 16), 0), "spread"), (((4, 200, 30), 1), "spread")]


@pytest.mark.parametrize("op,dtype,case,walk", [
    (op, dt, case, walk) for op in ("sum", "max", "min", "mean", "argmax", "argmin", "prod")
    for dt in ("float32", "int32") for case, walk in _WALK_CASES] + [
    (op, "float64", case, walk) for op in ("sum", "max", "argmin") for case, walk in _WALK_CASES[::3]])
def test_gpu_walks_match_numpy(op, dtype, case, walk):
    """The GPU walks the scheduler picks (kernels.spec.ReduceSpec.walk): a block per long
    contiguous row ("blocks": thread 0 stores the result, post-op and cast included), chunks of
    columns spread over neighbouring threads ("spread", a block per output combines them), and
    the chunked block kernel for few long rows; NaN, -0.0, ties and int32 wrap-around as NumPy."""
    (shape, axis), integer = case, dtype == "int32"
    if (op == "mean" and integer) or (op in ("argmax", "argmin") and isinstance(axis, tuple)):
        pytest.skip("not defined for this dtype / axis tuple")
    g = np.random.default_rng(abs(hash((op, dtype, shape))) % 2**32)
    h = (g.integers(-2**30, 2**30, shape) if integer and op == "sum" else g.integers(-3, 4, shape) if integer
         else g.standard_normal(shape)).astype(dtype)
    if op == "prod" and not integer:
        h = (1 + 0.01 * h).astype(dtype)
    if not integer:  # NaN in one or two outputs; zeros of both signs along one output's reduced axes
        h.reshape(-1)[[5, 17]] = np.nan
        first = tuple(0 if d not in np.atleast_1d(axis) else slice(None) for d in range(h.ndim))
        h[first] = 0.0
        h[tuple(1 if isinstance(k, slice) else k for k in first)] = -0.0
    seen = []
    from egpu_array.kernels import cache
    cache.recorders.append(lambda device, spec: seen.append(spec))
    try:
        got = np.asarray(getattr(xp, op)(_on(h), axis=axis))
    finally:
        cache.recorders.pop()
    want = getattr(np, op)(h, axis=axis)
    walks = {s.walk for s in seen if s.kind == "reduce"}
    assert walks == {walk}, walks
    if integer or op in ("argmax", "argmin", "max", "min"):
        np.testing.assert_array_equal(got, want)
        if op in ("max", "min") and not integer:  # the library's rule for mixed zeros (any order)
            zero = want == 0
            assert zero.any() and np.all(np.signbit(got[zero]) == (op == "min"))
            assert np.array_equal(np.signbit(got[~zero]), np.signbit(want[~zero]))
    else:  # against the float64 result (NumPy's float32 sums have their own rounding)
        want = getattr(np, op)(h.astype(np.float64), axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-12,
                                   atol=1e-3 if dtype == "float32" else 1e-12)
