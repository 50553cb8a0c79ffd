"""The cuda device's tiled GEMM (kernels.ptx_gemm), its thread blocks emulated on the host.

The generator emits each phase between barriers as the body of ``gpu.threads(b)``. Here that body
is a loop over the 256 threads of the block (:class:`HostThreads`), so a block runs phase by
phase as barriers order it on a GPU: every thread's loads into shared memory, then every thread's
products, ... The per-thread accumulators live in an array with one row per thread, the special
registers (``ctaid.x``, ``nctaid.x``) are globals the launcher sets per block, and the "shared"
arrays are module globals. Matmuls go through the namespace (``_matmul``'s dispatch, argument
slots, epilogue lowering) on a device whose target says ``tiled_gemm``; NumPy is the oracle.

Shared-memory races are checked: every shared load and store also stamps a shadow word with
(phase, thread); a thread touching a slot that another thread wrote (or, for a store, read) in the
same phase counts as a race, and every launch must count none. Since the kernel's shared addresses
depend on the thread index and the arguments only (not on timing), this finds every pair of
unordered conflicting shared accesses of the launches run here. A test removes a barrier and
checks that races are then reported. A 16-byte vector access (shared, or a global load of A or B)
that is not 16-byte aligned is counted with the races; the global vector loads are counted too
(``launches[-1][3]``), so tests check which operands take the vector path and which the element one.

What this cannot show: NVPTX code generation and ptxas (test_cuda_ptx assembles these kernels),
races on global memory (each output element is written by one thread by construction; not
checked), bank conflicts, coalescing, occupancy or speed, warp-level behaviour, or that the GPU's
barrier (``bar.sync 0``) is reached by all threads (the generator keeps barriers outside the
per-thread phases, in loops whose bounds are the same for every thread of a block).
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from llvmlite import ir

import egpu_array as xp
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.device import Program, register_device
from egpu_array.kernels import ptx, ptx_gemm
from egpu_array.kernels.irb import I32, I64, const, for_range
from egpu_array.kernels.targets import HostTarget

MAX_GRID = 3  # few blocks, so that blocks stride over the tiles
MASK = (1 << 20) - 1
_TD = llvm.create_target_data("e-i64:64-v128:128")
_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


def _global(module, name, ty):
    g = module.globals.get(name)
    if g is None:
        g = ir.GlobalVariable(module, ty, name)
        g.initializer = ir.Constant(ty, None)
    return g


class HostThreads(ptx_gemm.Gpu):
    """The block's threads as loops, shared memory as globals with a race-checking shadow.

    ``skip_barrier``: the number (0, 1, ...) of an emitted barrier to drop (negative test)."""

    shared_addrspace = 0
    global_addrspace = 0
    lanes = ptx_gemm.THREADS

    def __init__(self, skip_barrier: int | None = None):
        self.skip_barrier = skip_barrier
        self.n_barriers = 0

    def sreg(self, b, name):
        return b.zext(b.load(_global(b.module, "emu_" + name.replace(".", "_"), I32)), I64)

    @contextmanager
    def threads(self, b):
        with for_range(b, const(I64, 0), const(I64, ptx_gemm.THREADS), "thread") as tid:
            yield tid

    def lane(self, b, tid):
        return tid

    def barrier(self, b):
        k, self.n_barriers = self.n_barriers, self.n_barriers + 1
        if k != self.skip_barrier:
            phase = _global(b.module, "emu_phase", I64)
            b.store(b.add(b.load(phase), const(I64, 1)), phase)

    def _shadow(self, b, g, idx, kind):
        arr = _global(b.module, f"{g.name}_{kind}", ir.ArrayType(I64, g.value_type.count))
        return b.gep(arr, [const(I32, 0), idx])

    def _stamps(self, b, g, idx, tid):
        """(phase, this thread's stamp, writer's and reader's shadow pointers, their values)."""
        phase = b.load(_global(b.module, "emu_phase", I64))
        me = b.add(tid, const(I64, 1))
        wp, rp = self._shadow(b, g, idx, "w"), self._shadow(b, g, idx, "r")
        return phase, me, wp, rp, b.load(wp), b.load(rp)

    def _other(self, b, stamp, phase, me):
        """Whether ``stamp`` was left in this phase by another thread (or by several)."""
        same = b.icmp_unsigned("==", b.lshr(stamp, const(I64, 20)), phase)
        return b.and_(same, b.icmp_unsigned("!=", b.and_(stamp, const(I64, MASK)), me))

    def _race(self, b, cond):
        races = _global(b.module, "emu_races", I64)
        b.store(b.add(b.load(races), b.zext(cond, I64)), races)

    def shared_load(self, b, g, idx, tid):
        phase, me, wp, rp, w, r = self._stamps(b, g, idx, tid)
        self._race(b, self._other(b, w, phase, me))
        stamp = b.shl(phase, const(I64, 20))
        b.store(b.or_(stamp, b.select(self._other(b, r, phase, me), const(I64, MASK), me)), rp)
        return b.load(b.gep(g, [const(I32, 0), idx]))

    def shared_store(self, b, value, g, idx, tid):
        phase, me, wp, rp, w, r = self._stamps(b, g, idx, tid)
        self._race(b, b.or_(self._other(b, w, phase, me), self._other(b, r, phase, me)))
        b.store(b.or_(b.shl(phase, const(I64, 20)), me), wp)
        b.store(value, b.gep(g, [const(I32, 0), idx]))

    def global_load(self, b, ptr, align=None):
        """A load of A or B; 16-byte vector loads are counted (``emu_vloads``) and checked aligned."""
        if isinstance(ptr.type.pointee, ir.VectorType):
            vl = _global(b.module, "emu_vloads", I64)
            b.store(b.add(b.load(vl), const(I64, 1)), vl)
            self._race(b, b.icmp_unsigned("!=", b.and_(b.ptrtoint(ptr, I64), const(I64, 15)), const(I64, 0)))
        return b.load(ptr, align=align)

    def _aligned(self, b, g, idx, n):
        """Count a misaligned vector access (its first element not at a multiple of 16 bytes)."""
        size = g.value_type.element.get_abi_size(_TD)
        off = b.mul(b.zext(idx, I64), const(I64, size))
        self._race(b, b.icmp_unsigned("!=", b.and_(off, const(I64, 15)), const(I64, 0)))
        assert size * n == 16

    def shared_load_vec(self, b, g, idx, n, tid):
        self._aligned(b, g, idx, n)
        return [self.shared_load(b, g, b.add(idx, const(idx.type, e)), tid) for e in range(n)]

    def shared_store_vec(self, b, values, g, idx, tid):
        self._aligned(b, g, idx, len(values))
        for e, v in enumerate(values):
            self.shared_store(b, v, g, b.add(idx, const(idx.type, e)), tid)


class TileEmuTarget(HostTarget):
    """Host code; ``ptx_gemm`` specs through :class:`HostThreads` (``tiled_gemm``: _matmul picks them)."""

    tiled_gemm = True

    def __init__(self, skip_barrier=None):
        super().__init__()
        self.key = f"tileemu{skip_barrier}:" + self.key
        self.generators = {"ptx_gemm": lambda spec, m, f: ptx_gemm.generate(spec, m, f, HostThreads(skip_barrier))}

    def optimize(self, module):
        """No IR passes (compile time; the emulation runs small products)."""
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        return mod


class TileEmuDevice(CPUDevice):
    """Host memory; ``ptx_gemm`` kernels launched as blocks (one call per block), the rest as on cpu."""

    kind = "tileemu"

    def __init__(self, index: int = 0, skip_barrier=None, kind: str = "tileemu"):
        super().__init__(target=TileEmuTarget(skip_barrier), num_threads=1)  # its own target machine
        self.name = f"{kind}:{index}"  # (devices compare by name: kernels are cached per device)
        self.launches = []  # (work items, blocks, races, vector loads) of each tiled GEMM launch

    def load(self, binary, fname, spec):
        if spec.kind != "ptx_gemm":
            return super().load(binary, fname, spec)
        with self._engine_lock:
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
            self._engine.finalize_object()
            entry = self._engine.get_function_address(fname + ptx.ENTRY_SUFFIX)
            names = ("emu_ctaid_x", "emu_nctaid_x", "emu_phase", "emu_races", "emu_vloads")
            regs = {n: self._engine.get_global_value_address(n) for n in names}
        assert entry and all(regs.values()), regs
        kinds = {"emu_ctaid_x": ctypes.c_int32, "emu_nctaid_x": ctypes.c_int32}
        regs = {n: kinds.get(n, ctypes.c_int64).from_address(a) for n, a in regs.items()}
        return Program(fname, ("tiled", _ENTRY(entry), regs), spec)

    def launch(self, program, args, n, nbytes=0, work=None):
        if not (isinstance(program.fn, tuple) and program.fn[0] == "tiled"):
            return super().launch(program, args, n, nbytes, work)
        _, entry, regs = program.fn
        grid = min(n, MAX_GRID)
        before, vl = regs["emu_races"].value, regs["emu_vloads"].value
        for c in range(grid):
            regs["emu_ctaid_x"].value, regs["emu_nctaid_x"].value = c, grid
            regs["emu_phase"].value += 1  # blocks have shared memory of their own
            entry(args, n, 1)
        self.launches.append((n, grid, regs["emu_races"].value - before, regs["emu_vloads"].value - vl))


register_device("tileemu", TileEmuDevice, lambda: [])
DEV = "tileemu:0"
rng = np.random.default_rng(11)


def _dev():
    from egpu_array.backend.device import get_device
    return get_device(DEV)


def _check(got, want, k, dtype):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 8 * max(k, 1) * np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))


def _last_launch_clean(expect_tiles=None):
    n, grid, races, _ = _dev().launches[-1]
    assert races == 0, f"{races} shared-memory races or misaligned vector accesses"
    if expect_tiles is not None:
        assert n == expect_tiles
    return n, grid


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(1, 2, 1), (128, 128, 8), (129, 127, 9), (130, 70, 33), (5, 260, 50)])
def test_shapes(dtype, m, n, k):
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    got = xp.asarray(a, device=DEV) @ xp.asarray(b, device=DEV)
    _check(got, a @ b, k, dtype)
    _last_launch_clean(ptx_gemm.tile_count(m, n, 1))


def _make(rows, cols, how, dtype):
    """(NumPy array, device array) of shape (rows, cols): row-major ("n"), a transposed view
    ("t"), every 2nd row and 3rd column ("step"), reversed axes ("neg"), or a view starting one
    element into its buffer ("off": its pointer is not 16-byte aligned)."""
    if how == "t":
        h = rng.standard_normal((cols, rows)).astype(dtype)
        return h.T, xp.asarray(h, device=DEV).mT
    if how == "step":
        h = rng.standard_normal((2 * rows, 3 * cols)).astype(dtype)
        return h[::2, ::3], xp.asarray(h, device=DEV)[::2, ::3]
    if how == "neg":
        h = rng.standard_normal((rows, cols)).astype(dtype)
        return h[::-1, ::-1], xp.asarray(h, device=DEV)[::-1, ::-1]
    if how == "off":
        h = rng.standard_normal((rows, cols + 1)).astype(dtype)
        return h[:, 1:], xp.asarray(h, device=DEV)[:, 1:]
    h = rng.standard_normal((rows, cols)).astype(dtype)
    return h, xp.asarray(h, device=DEV)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(1, 140), st.integers(2, 140), st.integers(1, 70), st.sampled_from([(), (2,), (3, 1)]))
def test_random_shapes(m, n, k, batch):
    """Tile edges in M, N and K slices, batches; one kernel (float64, row-major operands)."""
    a, b = rng.standard_normal(batch + (m, k)), rng.standard_normal((k, n))
    _check(xp.asarray(a, device=DEV) @ xp.asarray(b, device=DEV), a @ b, k, "float64")
    _last_launch_clean(ptx_gemm.tile_count(m, n, max(1, int(np.prod(batch)))))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(1, 270), st.integers(2, 270), st.integers(1, 40), st.sampled_from(["float32", "float64"]),
       st.sampled_from(["n", "t", "off"]), st.sampled_from(["n", "t", "off"]))
def test_random_shapes_and_layouts(m, n, k, dtype, la, lb):
    """Shapes on both sides of the 128 x 128 tile and of 16-byte rows, with operands contiguous
    along K or along M/N, aligned or not (vector and element loads mixed per slice)."""
    ha, da = _make(m, k, la, dtype)
    hb, db = _make(k, n, lb, dtype)
    before = len(_dev().launches)
    _check(da @ db, ha @ hb, k, dtype)
    assert len(_dev().launches) == before + 1
    _last_launch_clean(ptx_gemm.tile_count(m, n, 1))


@pytest.mark.parametrize("la,lb", [("n", "t"), ("t", "n"), ("t", "t"), ("step", "neg")])
def test_transposed_and_strided(la, lb):
    dtype = "float32"
    m, n, k = 37, 70, 21
    ha, da = _make(m, k, la, dtype)
    hb, db = _make(k, n, lb, dtype)
    _check(da @ db, ha @ hb, k, dtype)
    _last_launch_clean()


def _vector_loads():
    return _dev().launches[-1][3]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("la,lb", [("n", "n"), ("t", "t")])
def test_full_tiles_read_only_vectors(dtype, la, lb):
    """Tiles and slices inside the matrices, operands contiguous along M/N (A transposed, B
    row-major) or along K, 16-byte aligned: every thread reads every slice of A and B as 16-byte
    vectors (``per_thread / vec`` of each operand); the batch entries of A keep that alignment."""
    tl = ptx_gemm.TILINGS[dtype]
    m, n, k = 128, 256, 3 * tl.bk
    ha, da = _make(m, k, la, dtype)
    hb, db = _make(k, n, lb, dtype)
    _check(da @ db, ha @ hb, k, dtype)
    _last_launch_clean(2)
    per_slice = 2 * tl.threads * (tl.per_thread // tl.vec)
    assert _vector_loads() == 2 * 3 * per_slice
    a3 = rng.standard_normal((3, m, k)).astype(dtype)
    _check(xp.asarray(a3, device=DEV) @ db, a3 @ hb, k, dtype)
    _last_launch_clean(6)
    assert _vector_loads() == 6 * 3 * per_slice


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("la,lb", [("n", "n"), ("t", "n"), ("n", "t"), ("t", "t")])
def test_edges_mix_vectors_and_elements(dtype, la, lb):
    """Edge tiles in M, N and K with aligned operands: vectors inside, element loads (zeros past
    the matrix) at the edges, every layout pair."""
    m, n, k = 152, 140, 44
    ha, da = _make(m, k, la, dtype)
    hb, db = _make(k, n, lb, dtype)
    _check(da @ db, ha @ hb, k, dtype)
    _last_launch_clean(4)
    assert _vector_loads() > 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("la,lb,k", [("off", "off", 40), ("n", "n", 21), ("step", "step", 40)])
def test_unaligned_operands_read_elements(dtype, la, lb, k):
    """Operands whose vectors would not be 16-byte aligned (a pointer one element in, a row
    length of 21 or 131 elements) or that have no unit stride: no vector loads, same products."""
    m, n = 70, 131
    ha, da = _make(m, k, la, dtype)
    hb, db = _make(k, n, lb, dtype)
    _check(da @ db, ha @ hb, k, dtype)
    _last_launch_clean(2)
    assert _vector_loads() == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batches_and_broadcast(dtype):
    a = rng.standard_normal((3, 1, 20, 9)).astype(dtype)
    b = rng.standard_normal((2, 9, 67)).astype(dtype)
    got = xp.asarray(a, device=DEV) @ xp.asarray(b, device=DEV)
    _check(got, a @ b, 9, dtype)
    n, grid = _last_launch_clean(ptx_gemm.tile_count(20, 67, 6))
    assert n > grid  # blocks strided over tiles
    v = rng.standard_normal(9).astype(dtype)  # a 1-D x1: one row per batch entry
    _check(xp.asarray(v, device=DEV) @ xp.asarray(b, device=DEV), v @ b, 9, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_epilogue_is_one_launch(dtype):
    a, w = rng.standard_normal((70, 30)).astype(dtype), rng.standard_normal((30, 66)).astype(dtype)
    bias, c = rng.standard_normal(66).astype(dtype), rng.standard_normal((70, 66)).astype(dtype)
    da, dw, db, dc = (xp.asarray(h, device=DEV) for h in (a, w, bias, c))
    before = len(_dev().launches)
    got = np.asarray(xp.maximum(2 * (da @ dw) + db, 0) - 0.5 * dc)
    assert len(_dev().launches) == before + 1
    _last_launch_clean()
    _check(got, np.maximum(2 * (a @ w) + bias, 0) - 0.5 * c, 30, dtype)
    got = np.asarray(xp.tanh(da @ dw) * dc[:, ::-1])  # a libm call, a strided input
    _check(got, np.tanh(a @ w) * c[:, ::-1], 30, dtype)
    got = np.asarray(da @ dw + xp.arange(66, dtype=getattr(xp, dtype), device=DEV))  # an index operand
    _check(got, a @ w + np.arange(66, dtype=dtype), 30, dtype)
    _last_launch_clean()


def test_strided_output_view():
    """The product written into a strided view (the output's column stride is not 1)."""
    a, b = rng.standard_normal((20, 8)), rng.standard_normal((8, 30))
    out = xp.zeros((20, 60), dtype=xp.float64, device=DEV)
    out[:, ::2] = xp.asarray(a, device=DEV) @ xp.asarray(b, device=DEV)
    want = np.zeros((20, 60))
    want[:, ::2] = a @ b
    _check(out, want, 8, "float64")


@pytest.mark.parametrize("skip", [0, 1])
def test_dropping_a_barrier_is_reported_as_a_race(skip):
    """Without the barrier after the loads (0), threads read shared memory that others write in
    the same phase; without the one after the products (1), the next K slice's loads overwrite
    what others read in the same phase: the shadow check must count races either way."""
    kind = f"tilenobar{skip}"
    register_device(kind, lambda i: TileEmuDevice(i, skip, kind), lambda: [])
    from egpu_array.backend.device import get_device
    dev = get_device(f"{kind}:0")
    a, b = rng.standard_normal((40, 40)), rng.standard_normal((40, 40))  # three K slices
    np.asarray(xp.asarray(a, device=dev) @ xp.asarray(b, device=dev))
    assert dev.launches[-1][2] > 0


# ---- the real cuda device's launch of it, over the fake driver of test_cuda_driver ----------------
from .test_cuda_driver import fake_device, fake_libcuda  # noqa: E402,F401  (fixtures)


def test_cuda_device_launches_one_block_of_256_threads_per_tile(fake_device, monkeypatch):
    """On a CUDADevice (fake driver: kernels do not run), a float32 product compiles the tiled
    GEMM's PTX (mode tile2d) and launches min(tiles, max_grid) blocks of 256 threads."""
    import ctypes
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    lib.fake_last_name.restype = ctypes.c_char_p
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    a = xp.asarray(np.ones((130, 9), dtype=np.float32), device=dev)
    w = xp.asarray(np.ones((9, 70), dtype=np.float32), device=dev)
    y = xp.maximum(a @ w, 0)
    y._realize()
    assert lib.fake_last_name().endswith(b"_grid")
    n_tiles = ptx_gemm.tile_count(130, 70, 1)
    assert (lib.fake_last(0), lib.fake_last(1), lib.fake_last(3)) == (min(n_tiles, dev.max_grid), 256, n_tiles)
    from egpu_array.kernels.cache import _memory
    modes = [p.fn[3] for (d, s), p in list(_memory.items()) if d is dev and s.kind == "ptx_gemm"]
    assert modes == ["tile2d"]
