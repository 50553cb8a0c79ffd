"""The cuda driver layer and device without a GPU: error mapping, no driver -> no devices and a clean
import, and the device's memory pool and staged copies against a fake ``libcuda`` (a small C
library built here whose "device memory" is host memory), selected with ``EGPU_ARRAY_LIBCUDA``.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from egpu_array import DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelLaunchError
from egpu_array.backend import cuda_driver as cu
from egpu_array.kernels.ptx import KernelCompileError

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------- error mapping
@pytest.mark.parametrize("code, cls", [
    (2, DeviceOutOfMemoryError), (4, DeviceLostError), (999, DeviceLostError), (100, DeviceError),
    (218, KernelCompileError), (209, KernelCompileError), (700, KernelLaunchError),
    (719, KernelLaunchError), (1, DeviceError), (12345, DeviceError)])
def test_error_classes(code, cls):
    e = cu.error_for(code, "cuSomething(x)")
    assert type(e) is cls
    assert isinstance(e, DeviceError)
    assert "cuSomething(x)" in str(e)


def test_out_of_memory_is_a_memory_error():
    e = cu.error_for(2, "cuMemAlloc of 10 bytes")
    assert isinstance(e, MemoryError) and "CUDA_ERROR_OUT_OF_MEMORY" in str(e)


def test_sticky_faults_say_the_context_is_gone():
    assert "restart the process" in str(cu.error_for(700, "k"))
    assert "restart" not in str(cu.error_for(2, "k"))


def test_driver_names_and_log_go_into_the_message():
    e = cu.error_for(218, "loading kernel k", ("CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
                     "JIT log:\nline 3: syntax error")
    assert "a PTX JIT compilation failed" in str(e) and "syntax error" in str(e)
    assert "CUresult 4242" in str(cu.error_for(4242, "x"))


# ---------------------------------------------------------------------------------- no driver
def _run(code: str, **env) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=e, timeout=120, cwd=ROOT)


def test_no_driver_lists_no_devices_and_imports_cleanly():
    r = _run("""
        import egpu_array as xp
        from egpu_array.backend import cuda_driver as cu
        assert cu._driver is None and cu._driver_error is None, "import must not load libcuda"
        names = [d.name for d in xp.__array_namespace_info__().devices()]
        assert not any(n.startswith("cuda") for n in names), names
        try:
            xp.ones(3, device="cuda:0")
        except xp.DeviceError as e:
            print("ERR", e)
        """, EGPU_ARRAY_LIBCUDA="/nonexistent/libcuda.so.1")
    assert r.returncode == 0, r.stderr
    assert "ERR cuda: cannot load the CUDA driver library '/nonexistent/libcuda.so.1'" in r.stdout


# ---------------------------------------------------------------------------------- fake driver
FAKE_C = r"""
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
typedef int CUresult;
static size_t used = 0;
static size_t limit(void) { const char *s = getenv("FAKE_CUDA_MEM"); return s ? strtoull(s, 0, 10) : (1u << 30); }
static int envint(const char *n, int d) { const char *s = getenv(n); return s ? atoi(s) : d; }
CUresult cuInit(unsigned f) { return envint("FAKE_CUDA_INIT", 0); }
CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
CUresult cuGetErrorName(int c, const char **s) { *s = c == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : c == 218 ? "CUDA_ERROR_INVALID_PTX" : c == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_OTHER"; return 0; }
CUresult cuGetErrorString(int c, const char **s) { *s = "fake driver says so"; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = envint("FAKE_CUDA_COUNT", 1); return 0; }
CUresult cuDeviceGet(int *d, int i) { *d = i; return 0; }
CUresult cuDeviceGetName(char *b, int n, int d) { strncpy(b, "Fake GPU", n); return 0; }
CUresult cuDeviceGetAttribute(int *v, int a, int d) { *v = a == 75 ? 8 : a == 76 ? 6 : a == 16 ? 10 : 0; return 0; }
CUresult cuDeviceTotalMem_v2(size_t *b, int d) { *b = limit(); return 0; }
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { *c = (void *)0x1234; return 0; }
CUresult cuCtxSetCurrent(void *c) { return 0; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *t = limit(); *f = limit() - used; return 0; }
CUresult cuStreamCreate(void **s, unsigned f) { *s = malloc(1); return 0; }
CUresult cuStreamSynchronize(void *s) { return 0; }
static int waits = 0;
int fake_waits(void) { return waits; }
CUresult cuStreamWaitEvent(void *s, void *e, unsigned f) { waits++; return 0; }
CUresult cuEventCreate(void **e, unsigned f) { *e = malloc(1); return 0; }
/* the order of queued operations: C (copy to device), L (launch), R (event record), S (event wait),
   with the events recorded and waited for */
static char trace[1 << 16]; static int ntrace = 0; static void *recs[4096], *syncs[4096]; static int nrec = 0, nsync = 0;
static void note(char c) { if (ntrace < (int)sizeof trace - 1) trace[ntrace++] = c; }
const char *fake_trace(void) { trace[ntrace] = 0; return trace; }
void fake_trace_reset(void) { ntrace = nrec = nsync = 0; }
void *fake_recorded(int i) { return recs[i]; }
void *fake_synced(int i) { return syncs[i]; }
CUresult cuEventRecord(void *e, void *s) { note('R'); if (nrec < 4096) recs[nrec++] = e; return 0; }
CUresult cuEventSynchronize(void *e) { note('S'); if (nsync < 4096) syncs[nsync++] = e; return 0; }
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) {
  if (used + n > limit()) return 2;
  size_t *b = malloc(n + 16); b[0] = n; used += n; *p = (uint64_t)(b + 2); return 0; }
CUresult cuMemFree_v2(uint64_t p) { size_t *b = (size_t *)p - 2; used -= b[0]; free(b); return 0; }
CUresult cuMemHostAlloc(void **p, size_t n, unsigned f) { *p = malloc(n); return 0; }
CUresult cuMemFreeHost(void *p) { free(p); return 0; }
static int copies = 0;
int fake_copies(void) { return copies; }
size_t fake_used(void) { return used; }
CUresult cuMemcpyHtoDAsync_v2(uint64_t d, const void *h, size_t n, void *s) { copies++; note('C'); memcpy((void *)d, h, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void *h, uint64_t d, size_t n, void *s) { copies++; memcpy(h, (void *)d, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s2, size_t n, void *s) { memcpy((void *)d, (void *)s2, n); return 0; }
CUresult cuModuleLoadDataEx(void **m, const void *img, unsigned n, int *opts, void **vals) {
  if (envint("FAKE_CUDA_JIT_OK", 0)) { *m = malloc(1); return 0; }
  for (unsigned i = 0; i < n; i++) if (opts[i] == 5) strcpy((char *)vals[i], "ptxas fatal: fake JIT refuses everything");
  return 218; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) { *f = strdup(name); return 0; }
/* a launch records its grid, block, function name and parameters; the "kernel" sets slot
   FAKE_CUDA_WRITE_SLOT of the argument block to 7 (a flag written by the kernel) */
static int64_t last[5]; static char last_name[128]; static int64_t seen[128];
int64_t fake_last(int i) { return last[i]; }
int64_t fake_seen(int i) { return seen[i]; }  /* the argument block as the last kernel found it */
const char *fake_last_name(void) { return last_name; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shm, void *s, void **params, void **extra) {
  strncpy(last_name, (const char *)f, 127);
  note('L');
  memcpy(seen, (void *)*(uint64_t *)params[0], sizeof seen);
  last[0] = gx; last[1] = bx; last[2] = (int64_t)*(uint64_t *)params[0];
  last[3] = strstr(last_name, "_fin") ? -1 : *(int64_t *)params[1];
  last[4] = strstr(last_name, "_fin") ? -1 : *(int64_t *)params[2];
  int w = envint("FAKE_CUDA_WRITE_SLOT", -1);
  if (w >= 0) ((int64_t *)last[2])[w] = 7;
  return 0; }
"""


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the fake libcuda")
    d = tmp_path_factory.mktemp("fakecuda")
    (d / "fake.c").write_text(FAKE_C)
    so = d / "libcuda_fake.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(so), str(d / "fake.c")], check=True)
    return str(so)


@pytest.fixture
def fake_device(fake_libcuda, monkeypatch):
    """A CUDADevice over the fake driver (not registered: a fresh instance per test)."""
    from egpu_array.backend import cuda
    lib = ctypes.CDLL(fake_libcuda)  # the same loaded library the driver layer will use
    lib.fake_used.restype = ctypes.c_size_t
    monkeypatch.setenv("EGPU_ARRAY_LIBCUDA", fake_libcuda)
    monkeypatch.setenv("FAKE_CUDA_MEM", str(lib.fake_used() + (1 << 20)))  # 1 MiB free
    monkeypatch.setattr(cuda, "STAGING_CHUNK", 4096)
    cu.reset_for_tests()
    try:
        yield cuda.CUDADevice(0), lib
    finally:
        cu.reset_for_tests()


def test_cuinit_failure_lists_no_devices(fake_libcuda):
    r = _run("""
        from egpu_array.backend import cuda, cuda_driver as cu
        assert cuda.list_devices() == [], cuda.list_devices()
        try:
            cuda.CUDADevice(0)
        except cu.DeviceError as e:
            print("ERR", e)
        """, EGPU_ARRAY_LIBCUDA=fake_libcuda, FAKE_CUDA_INIT="100")
    assert r.returncode == 0, r.stderr
    assert "ERR cuda: cuInit (driver initialisation) failed: CUDA_ERROR_NO_DEVICE" in r.stdout


def test_fake_driver_device_properties(fake_device):
    dev, lib = fake_device
    assert dev.name == "cuda:0" and dev.compute_capability == (8, 6) and dev.gpu_name == "Fake GPU"
    assert dev.target.key.startswith("nvptx:sm_80:")
    info = dev.info()
    assert info["total_memory"] == int(os.environ["FAKE_CUDA_MEM"])
    assert info["free_memory"] == info["total_memory"] - lib.fake_used()


@pytest.mark.parametrize("nbytes", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 40000])
def test_staged_copies_round_trip(fake_device, nbytes):
    """Chunked, double-buffered copies through the pinned staging buffers keep every byte."""
    dev, lib = fake_device
    host = np.random.default_rng(nbytes).integers(0, 256, nbytes + 8, dtype=np.uint8)
    buf = dev.allocator.alloc(nbytes + 8)
    before = lib.fake_copies()
    dev.copy_in(buf, 8, host[8:])
    dev.copy_in(buf, 0, host[:8])
    back = np.zeros_like(host)
    dev.copy_out(buf, 0, back)
    assert np.array_equal(back, host)
    part = np.zeros(nbytes, dtype=np.uint8)
    dev.copy_out(buf, 8, part)
    assert np.array_equal(part, host[8:])
    chunks = -(-nbytes // 4096)
    assert lib.fake_copies() - before == 2 * chunks + 1 + (-(-(nbytes + 8) // 4096))


def test_out_of_memory_empties_the_pool_then_raises(fake_device, monkeypatch):
    dev, lib = fake_device
    monkeypatch.setenv("FAKE_CUDA_MEM", str(lib.fake_used() + 1_000_000))  # 1 MB free from here
    a = dev.allocator.alloc(300_000)
    del a  # cached by the pool, not freed
    assert dev.allocator.cached_bytes > 0
    b = dev.allocator.alloc(900_000)  # fits only after the cache is given back
    assert dev.allocator.cached_bytes == 0
    with pytest.raises(DeviceOutOfMemoryError, match="requested 500000 bytes") as info:
        dev.allocator.alloc(500_000)
    assert isinstance(info.value, MemoryError)
    del b


def test_module_load_failure_carries_the_jit_log(fake_device):
    from egpu_array.kernels.spec import SortSpec
    from egpu_array.kernels.targets import nvptx_target
    dev, _ = fake_device
    spec = SortSpec("float32", False, False, "local")
    ptx = b"// egpu_array args=8 writes=0\n.version 7.8\n"
    with pytest.raises(KernelCompileError, match="fake JIT refuses everything") as info:
        dev.load(ptx, "k_x", spec)
    assert "CUDA_ERROR_INVALID_PTX" in str(info.value) and spec.name in str(info.value)
    assert nvptx_target(80) is dev.target


def test_ptx_header_is_required(fake_device):
    dev, _ = fake_device
    from egpu_array.kernels.spec import SortSpec
    with pytest.raises(KernelLaunchError, match="header"):
        dev.load(b".version 7.8\n", "k_x", SortSpec("float32", False, False, "local"))


@pytest.mark.parametrize("writes", [False, True])
def test_launch_copies_slots_and_reads_flags_back(fake_device, monkeypatch, writes):
    """A launch puts the int64 slots in the device block, sizes the grid-stride grid, and copies
    the slots back only for kernels that write them (error / retry flags)."""
    from egpu_array.backend import cuda
    from egpu_array.backend.device import Program
    from egpu_array.kernels.spec import SortSpec
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    lib.fake_last_name.restype = ctypes.c_char_p
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    monkeypatch.setenv("FAKE_CUDA_WRITE_SLOT", "3")
    prog = dev.load(f"// egpu_array args=4 writes={int(writes)}\n".encode(), "k_t", SortSpec("int8", 0, 0, "local"))
    assert isinstance(prog, Program) and prog.tail is None
    slots = (ctypes.c_int64 * 4)(11, 22, 33, 0)
    n = 10 ** 6
    dev.launch(prog, slots, n)
    assert lib.fake_last_name() == b"k_t_grid"
    assert lib.fake_last(0) == min(-(-n // cuda.BLOCK), dev.max_grid) and lib.fake_last(1) == cuda.BLOCK  # sort: 1 per call
    assert lib.fake_last(3) == n and lib.fake_last(4) == 1
    block = (ctypes.c_int64 * 4).from_address(lib.fake_last(2))
    assert list(block) == [11, 22, 33, 7]  # the slots reached the device; the "kernel" wrote slot 3
    assert slots[3] == (7 if writes else 0)  # read back only when the kernel writes its slots
    arr = np.array([5, 6, 7, 8], dtype=np.int64)  # the sorting launcher passes an address
    dev.launch(prog, arr.ctypes.data, 3)
    assert lib.fake_last(0) == 1 and list((ctypes.c_int64 * 4).from_address(lib.fake_last(2)))[:3] == [5, 6, 7]


def test_launch_runs_the_finalize_kernel(fake_device, monkeypatch):
    from egpu_array.kernels.spec import ReduceSpec
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    lib.fake_last_name.restype = ctypes.c_char_p
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    spec = ReduceSpec("sum", (("in", 0),), ("float32",), (), 0, "float32", "float32", "float32", 1, 1,
                      ("c", "c"), "", True)
    prog = dev.load(b"// egpu_array args=20 writes=0\n", "k_r", spec)
    dev.launch(prog, (ctypes.c_int64 * 20)(), 64)
    # the finalize runs a block per output (block reductions) or guards on thread 0 (others)
    assert lib.fake_last_name() == b"k_r_fin_grid"
    from egpu_array.backend.cuda import BLOCK
    assert lib.fake_last(0) == min(64, 2 * dev.multiprocessors) and lib.fake_last(1) == BLOCK


def test_dynamic_slot_kernels_need_a_sized_argument_block(fake_device, monkeypatch):
    from egpu_array.kernels.spec import SortSpec
    dev, _ = fake_device
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    prog = dev.load(b"// egpu_array args=-1 writes=0\n", "k_d", SortSpec("int8", 0, 0, "local"))
    with pytest.raises(KernelLaunchError, match="indexes its arguments at run time"):
        dev.launch(prog, np.zeros(4, dtype=np.int64).ctypes.data, 5)
    dev.launch(prog, np.zeros(4, dtype=np.int64), 5)  # a NumPy array carries its size


def test_elementwise_launches_runs_of_work_items(fake_device, monkeypatch):
    from egpu_array.backend import cuda
    from egpu_array.kernels.spec import ElementwiseSpec
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    spec = ElementwiseSpec((("in", 0),), ("float32",), (), 0, "float32", 1, ("c", "c"))
    prog = dev.load(b"// egpu_array args=5 writes=0\n", "k_e", spec)
    dev.launch(prog, (ctypes.c_int64 * 5)(), 10_000)
    per = cuda.PER_CALL["elementwise"]
    assert lib.fake_last(4) == per and lib.fake_last(0) == -(-10_000 // (cuda.BLOCK * per))


def test_block_mode_kernels_get_a_block_per_work_item(fake_device, monkeypatch):
    from egpu_array.backend import cuda
    from egpu_array.kernels.spec import ReduceSpec
    dev, lib = fake_device
    lib.fake_last.restype = ctypes.c_int64
    lib.fake_last_name.restype = ctypes.c_char_p
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    spec = ReduceSpec("sum", (("in", 0),), ("float32",), (), 0, "float32", "float64", "float32", 1, 1,
                      ("c", "c"), "", True)
    prog = dev.load(b"// egpu_array args=20 writes=0 mode=block\n", "k_b", spec)
    slots = (ctypes.c_int64 * 20)()
    dev.launch(prog, slots, 7)
    assert lib.fake_last_name() == b"k_b_fin_grid"  # the chunked spec's finalize kernel ran last
    prog2 = dev.load(b"// egpu_array args=20 writes=0 mode=block\n", "k_c",
                     ReduceSpec("sum", (("in", 0),), ("float32",), (), 0, "float32", "float64", "float32", 1, 1,
                                ("c", "c"), "", False))
    dev.launch(prog2, slots, 7)
    assert lib.fake_last_name() == b"k_c_grid"
    assert lib.fake_last(0) == 7 and lib.fake_last(1) == cuda.BLOCK and lib.fake_last(4) == 1
    dev.launch(prog2, slots, 10 ** 6)
    assert lib.fake_last(0) == dev.max_grid


def test_uploads_wait_only_for_the_previous_users_of_their_block(fake_device):
    """A copy into a block fresh from the driver orders nothing before it (it overlaps queued
    kernels); into a recycled block it first waits for the event recorded when it was freed."""
    dev, lib = fake_device
    h = np.arange(1000, dtype=np.uint8)
    a = dev.allocator.alloc(1000)
    w0 = lib.fake_waits()
    dev.copy_in(a, 0, h)
    assert lib.fake_waits() - w0 == 1  # only: compute waits for this copy
    ptr = a.ptr
    del a  # back to the pool, with an event on the compute stream
    b = dev.allocator.alloc(1000)
    assert b.ptr == ptr
    w0 = lib.fake_waits()
    dev.copy_in(b, 0, h)
    assert lib.fake_waits() - w0 == 2  # the copy waits for the block's earlier users, compute for the copy
    w0 = lib.fake_waits()
    dev.copy_in(b, 0, h)
    assert lib.fake_waits() - w0 == 1  # that event was consumed
    out = np.zeros_like(h)
    dev.copy_out(b, 0, out)
    assert np.array_equal(out, h)


# ---------------------------------------------------------------------------------- argument ring
def _traced(lib):
    lib.fake_trace.restype = ctypes.c_char_p
    lib.fake_seen.restype = ctypes.c_int64
    lib.fake_last.restype = ctypes.c_int64
    lib.fake_recorded.restype = lib.fake_synced.restype = ctypes.c_void_p
    lib.fake_seen.argtypes = lib.fake_last.argtypes = lib.fake_recorded.argtypes = lib.fake_synced.argtypes = \
        [ctypes.c_int]
    lib.fake_trace_reset()


def test_launch_arguments_reach_the_kernel_intact(fake_device, monkeypatch):
    """Every launch's slots (any int64 values, 1 to 128 slots through the ring, more through the
    device's own block) are what its kernel finds, across several laps of the ring."""
    from egpu_array.backend import cuda_args
    from egpu_array.kernels.spec import SortSpec
    dev, lib = fake_device
    _traced(lib)
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    prog = dev.load(b"// egpu_array args=-1 writes=0\n", "k_a", SortSpec("int8", 0, 0, "local"))
    rng = np.random.default_rng(0)
    blocks = []
    for i in range(2 * cuda_args.ENTRIES + 5):
        count = [1, 2, 7, 64, 127, 128][i % 6] if i % 50 else 200
        slots = rng.integers(-2 ** 63, 2 ** 63 - 1, count, dtype=np.int64, endpoint=True)
        slots[-1] = [-1, 2 ** 63 - 1, -2 ** 63, 0][i % 4]
        kept = slots.copy()
        dev.launch(prog, slots, 1 + i)
        seen = [lib.fake_seen(k) for k in range(min(count, 128))]
        assert seen == kept[:128].tolist(), i
        blocks.append(lib.fake_last(2))
    ring = [b for b, i in zip(blocks, range(len(blocks))) if i % 50]
    assert len(set(ring[:cuda_args.ENTRIES])) == cuda_args.ENTRIES  # consecutive launches: distinct blocks
    assert blocks[0] == blocks[50] and blocks[0] not in ring  # more than 128 slots: the device's own block


def test_ring_reuse_waits_for_the_launches_of_the_last_lap(fake_device, monkeypatch):
    """An event is recorded after the launches of each group of ring entries; an entry is reused
    (a lap later) only after waiting for the event of its group, never before, and only once per
    group. The copy of the arguments is queued before the launch that reads them."""
    from egpu_array.backend import cuda_args
    from egpu_array.kernels.spec import SortSpec
    dev, lib = fake_device
    _traced(lib)
    monkeypatch.setenv("FAKE_CUDA_JIT_OK", "1")
    prog = dev.load(b"// egpu_array args=4 writes=0\n", "k_w", SortSpec("int8", 0, 0, "local"))
    slots = (ctypes.c_int64 * 4)(1, 2, 3, 4)
    G, E = cuda_args.GROUP, cuda_args.ENTRIES
    for _ in range(E):
        dev.launch(prog, slots, 10)
    lap = ("CL" * G + "R") * (E // G)
    assert lib.fake_trace().decode() == lap  # no waits in the first lap
    for _ in range(G + 1):
        dev.launch(prog, slots, 10)
    assert lib.fake_trace().decode() == lap + "SCL" + "CL" * (G - 1) + "R" + "SCL"
    # the waits are for the events recorded after groups 0 and 1 of the first lap
    assert lib.fake_synced(0) == lib.fake_recorded(0) and lib.fake_synced(1) == lib.fake_recorded(1)
    assert lib.fake_recorded(0) != lib.fake_recorded(1)
    # a kernel that writes its slots: read back from its own entry, and waited for at once
    monkeypatch.setenv("FAKE_CUDA_WRITE_SLOT", "2")
    prog_w = dev.load(b"// egpu_array args=4 writes=1\n", "k_x", SortSpec("int8", 0, 0, "local"))
    dev.launch(prog_w, slots, 10)
    assert list(slots) == [1, 2, 7, 4]
