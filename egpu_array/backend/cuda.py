"""The ``cuda`` device: NVIDIA GPUs (eGPUs in Thunderbolt/USB4 enclosures included) through the
CUDA driver API (:mod:`.cuda_driver`, loaded at run time; no CUDA toolkit needed).

* Kernels: PTX from :class:`~egpu_array.kernels.targets.NVPTXTarget` (sm_80 PTX for every GPU of
  compute capability 8.0 and up, which the driver JIT-compiles for the GPU at hand), loaded with
  ``cuModuleLoadDataEx``. Each launch copies its int64 argument slots into a device block on the
  compute stream (ordered before the kernel) and runs ``NAME_grid`` over a grid-stride loop (runs of
  :data:`PER_CALL` work items per call); kernels
  that write their slots (error / retry flags) have them copied back before ``launch`` returns.
  Chunked reductions run one thread block per chunk (kernels.ptx_reduce: shared memory and warp
  shuffles); their finalize step is a second kernel on the same stream (a block per output for
  block reductions). float32/float64 products run one block of 256 threads per 128 x 128 output
  tile (kernels.ptx_gemm, mode tile2d).
* DLPack: arrays export their device pointer as kDLCUDA and kDLCUDA tensors import without a
  copy (egpu_array._dlpack; streams are ordered with events, see :meth:`CUDADevice.stream_wait`).
* Memory: a :class:`~egpu_array.backend.pool.PoolAllocator` over ``cuMemAlloc``; out of memory
  empties the pool's cache and retries once, then raises DeviceOutOfMemoryError.
* Queues: a compute stream and a copy stream. A copy to the device waits (event) only for the
  kernels that used its block before the pool recycled it, so uploads overlap queued kernels; a
  copy from the device waits for all compute queued before it; compute queued after a copy into
  device memory waits for that copy.
  Host<->device copies go through STAGING_BUFFERS pinned staging buffers in chunks: filling one
  (a memmove split among host threads, :func:`.host_copy.host_copy`) overlaps the DMAs of the
  others.

Without a driver, a GPU, or a working ``cuInit``, no ``cuda`` device is listed and asking for one
raises DeviceError saying why.
"""
from __future__ import annotations

import ctypes
import operator
import threading
import time

from .. import profiler
from .._errors import DeviceError, KernelLaunchError
from ..kernels import ptx_gemm as _ptx_gemm
from ..kernels.targets import nvptx_target
from . import cuda_driver as cu
from .cuda_args import ENTRY_BYTES as ARG_ENTRY_BYTES, ArgRing
from .device import Device, Program, register_device
from .host_copy import host_address, host_copy
from .cuda_memory import CudaPool, CudaRaw, Staging

__all__ = ["CUDADevice", "EventTimer", "BLOCK", "PER_CALL", "STAGING_CHUNK", "list_devices", "parse_ptx_header"]

#: threads per block of the grid-stride kernels
BLOCK = 256
#: threads per block by launch mode, where the kernel fixes them (default BLOCK): the tiled GEMM
#: (kernels.ptx_gemm, mode "tile2d") runs 256 threads per 128 x 128 output tile
MODE_THREADS = {_ptx_gemm.LAUNCH_MODE: _ptx_gemm.THREADS}
#: bytes per pinned staging buffer (STAGING_BUFFERS per device)
STAGING_CHUNK = 32 << 20
#: pinned staging buffers per device: filling one overlaps the DMAs of the others
STAGING_BUFFERS = 3
#: work items per call of the per-range function, by kernel kind (default 1): runs of 2 elements
#: share one index unravel (64-bit divisions are slow on GPUs). Measured on an H200 (a * b + c,
#: float32, 2^26 elements, benchmarks/gpu.py sweep): 1 -> 56%, 2 -> 76%, 4 -> 54%, 8 -> 37% of the
#: device-to-device copy bandwidth (256 threads per block, 64 blocks per SM)
PER_CALL = {"elementwise": 2}
#: grid-stride kernels launch at most this many blocks per multiprocessor (same sweep: 16 -> 73%,
#: 32 -> 74%, 64 -> 76% at 2 items per call)
BLOCKS_PER_SM = 64
#: bytes of the device block that holds a launch's argument slots
ARG_BYTES = 1 << 16


def parse_ptx_header(ptx: bytes) -> tuple:
    """(slots, writes, mode) from the ``// egpu_array args=N writes=W mode=M`` line that
    NVPTXTarget writes first (mode "grid" when absent)."""
    line = ptx[:ptx.find(b"\n")].decode(errors="replace")
    fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
    try:
        return int(fields["args"]), fields["writes"] == "1", fields.get("mode", "grid")
    except (KeyError, ValueError):
        raise KernelLaunchError("cuda: the PTX lacks its egpu_array header line "
                                "(it was not produced by NVPTXTarget)") from None


def _address(src) -> int:
    """The host address of a launch's slots as :meth:`CUDADevice.launch` holds them (a ctypes
    array or a c_void_p)."""
    return (src.value or 0) if isinstance(src, ctypes.c_void_p) else ctypes.addressof(src)


class CUDADevice(Device):
    """One CUDA GPU (``cuda:N``), through the driver API."""

    kind = "cuda"
    host_memory = False

    def __init__(self, index: int = 0):
        drv = cu.driver()
        n = drv.device_count()
        if not 0 <= index < n:
            raise DeviceError(f"cuda: no device cuda:{index}; the driver sees {n} CUDA device(s)")
        self.drv = drv
        self.index = index
        self.name = f"cuda:{index}"
        self.handle = drv.device(index)
        self.ctx = drv.out_ptr("cuDevicePrimaryCtxRetain", self.handle, what=f"opening {self.name}")
        self._tls = threading.local()
        self._bind()
        attr = lambda a: drv.attribute(a, self.handle)  # noqa: E731
        self.compute_capability = (attr("compute_capability_major"), attr("compute_capability_minor"))
        self.multiprocessors = attr("multiprocessor_count")
        self.gpu_name = drv.device_name(self.handle)
        self.total_memory = drv.total_mem(self.handle)
        self.integrated = bool(attr("integrated"))
        arch = self.compute_capability[0] * 10 + self.compute_capability[1]
        # one PTX for every GPU of compute capability 8.0 and up (the driver JIT-compiles it for
        # the actual GPU): the PTX the tests assemble for sm_80/86/89/90 is the PTX that runs
        self.target = nvptx_target(80 if arch >= 80 else arch)
        #: the reduction scheduler splits long reductions into this many chunks per output at most / 4
        self.num_threads = self.multiprocessors * 4
        self.max_grid = self.multiprocessors * BLOCKS_PER_SM
        self._freed = {}  # block address -> event recorded on the compute stream when it was freed
        self._free_events = []
        self._lock = threading.RLock()
        self.allocator = CudaPool(self, CudaRaw(self))
        flags = cu.CU["CU_STREAM_NON_BLOCKING"]
        self.compute = drv.out_ptr("cuStreamCreate", flags)
        self.copy = drv.out_ptr("cuStreamCreate", flags)
        self._compute_done = drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"])
        self._copy_done = drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"])
        self._staging = None
        self._args = drv.mem_alloc(ARG_BYTES)
        self._modules = []
        # for the per-launch driver calls (Driver.raw: no argument conversion): the compute stream
        # as a c_void_p, each loaded function's c_void_p, cuEventRecord; the launch state (argument
        # ring, kernel parameters) is made at the first launch (_start_launches)
        self._compute_p = ctypes.c_void_p(self.compute)
        self._fn_ptrs = {}
        self._record = drv.raw("cuEventRecord")
        self._hot = None

    def __repr__(self) -> str:
        return f"Device({self.name!r}: {self.gpu_name}, sm_{self.compute_capability[0]}{self.compute_capability[1]})"

    def _bind(self) -> None:
        """Make this device's primary context current on the calling thread."""
        if getattr(self._tls, "bound", False):
            return
        self.drv.call("cuCtxSetCurrent", self.ctx, what=f"binding {self.name}'s context")
        self._tls.bound = True

    @property
    def capabilities(self) -> dict:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def info(self) -> dict:
        """Name, compute capability, memory and multiprocessors of the GPU."""
        self._bind()
        free, total = self.drv.mem_info()
        return {"name": self.gpu_name, "compute_capability": self.compute_capability,
                "multiprocessors": self.multiprocessors, "total_memory": total, "free_memory": free,
                "integrated": self.integrated, "ptx_target": self.target.key}

    # -- kernels ---------------------------------------------------------------------------------
    def load(self, binary: bytes, fname: str, spec) -> Program:
        """Load PTX into a module; the Program's ``fn`` is ``(function, slots, writes, mode)``."""
        from ..kernels.ptx import ENTRY_SUFFIX
        slots, writes, mode = parse_ptx_header(binary)
        with self._lock:
            self._bind()
            mod = self.drv.load_module(binary, f"kernel {spec.name} ({fname})")
            self._modules.append(mod)
            fn = self.drv.out_ptr("cuModuleGetFunction", mod, (fname + ENTRY_SUFFIX).encode(),
                                  what=f"finding {fname}{ENTRY_SUFFIX}")
            tail = None
            if getattr(spec, "chunked", False):
                tail = self.drv.out_ptr("cuModuleGetFunction", mod, (fname + "_fin" + ENTRY_SUFFIX).encode(),
                                        what=f"finding {fname}_fin{ENTRY_SUFFIX}")
        return Program(fname, (fn, slots, writes, mode), spec, tail)

    def _host_slots(self, args, slots: int):
        """(address, count) of the launch's int64 slots: a ctypes array, a NumPy array or an address."""
        if isinstance(args, int):
            if slots < 0:
                raise KernelLaunchError("cuda: this kernel indexes its arguments at run time; pass them "
                                        "as a ctypes or NumPy int64 array, not an address")
            return args, slots
        if hasattr(args, "ctypes") and hasattr(args, "nbytes"):
            return args.ctypes.data, args.nbytes // 8
        return ctypes.addressof(args), ctypes.sizeof(args) // 8

    def _start_launches(self) -> tuple:
        """The state of launches, made at the first: the argument ring, the kernel parameters (args
        pointer, n, per) and their address arrays, reused (cuLaunchKernel reads the values before it
        returns), and cuLaunchKernel without argument conversion."""
        ring = self._arg_ring = ArgRing(self.drv, self.compute)
        self._params = (ctypes.c_uint64(), ctypes.c_int64(), ctypes.c_int64())
        self._param_ptrs = (ctypes.c_void_p * 3)(*[ctypes.addressof(p) for p in self._params])
        self._tail_ptrs = (ctypes.c_void_p * 1)(ctypes.addressof(self._params[0]))
        self._hot = (ring, self._params, self._param_ptrs, self._tail_ptrs, self.drv.raw("cuLaunchKernel"),
                     self._fn_ptrs)
        return self._hot

    def launch(self, program: Program, args, n: int, nbytes: int = 0, work: int | None = None) -> None:
        """Queue ``program`` over work items ``[0, n)`` on the compute stream (then its finalize
        kernel, if any). Returns at once unless the kernel writes its argument slots."""
        t0 = time.perf_counter()
        fn, slots, writes, mode = program.fn
        if isinstance(args, ctypes.Array):  # the scheduler's argument blocks (passed by address)
            src, count = args, ctypes.sizeof(args) >> 3
        else:
            addr, count = self._host_slots(args, slots)
            src = ctypes.c_void_p(addr)
        if slots >= 0:  # count = max(min(count, slots), 1)
            if count > slots:
                count = slots
            if count < 1:
                count = 1
        size = count * 8
        if size > ARG_BYTES:
            raise KernelLaunchError(f"cuda: kernel {program.name} has {count} argument slots; at most "
                                    f"{ARG_BYTES // 8} are supported")
        with self._lock:
            if not getattr(self._tls, "bound", False):
                self._bind()
            hot = self._hot
            if hot is None:
                hot = self._start_launches()
            ring, (p_args, p_n, p_per), param_ptrs, tail_ptrs, launch_fn, fn_ptrs = hot
            drv = self.drv
            if size <= ARG_ENTRY_BYTES:  # a ring entry: pinned source, no wait on earlier launches
                block = ring.put(src, size, program.name)
            else:  # pageable source: the driver takes the bytes before returning, ordered in the stream
                block = self._args
                drv.call("cuMemcpyHtoDAsync_v2", block, _address(src), size, self.compute,
                         what=f"copying the arguments of {program.name}")
            p_args.value = block
            try:
                if n > 0:
                    # grid: a thread per run of `per` items; block: a block per item (block reductions)
                    if mode == "grid":
                        per = PER_CALL.get(program.spec.kind, 1)
                        grid = -(-n // (BLOCK * per))
                    else:
                        per = 1
                        grid = n
                    if grid > self.max_grid:
                        grid = self.max_grid
                    p_n.value = n
                    p_per.value = per
                    threads = MODE_THREADS.get(mode, BLOCK)
                    if type(grid) is not int or type(threads) is not int:  # (NumPy integers: C ints)
                        grid, threads = operator.index(grid), operator.index(threads)
                    fp = fn_ptrs.get(fn)
                    if fp is None:
                        fp = fn_ptrs[fn] = ctypes.c_void_p(fn)
                    # (grid and threads are ints below 2**31: max_grid and the block sizes bound them)
                    code = launch_fn(fp, grid, 1, 1, threads, 1, 1, 0, self._compute_p, param_ptrs, None)
                    if code:
                        raise cu.error_for(code, f"launching {program.name} ({grid} x {threads} threads)",
                                           drv.describe(code))
                if program.tail is not None:
                    # a block per output (block finalize) or one thread (others guard on thread 0)
                    self._launch(program.tail, max(1, min(n, 2 * self.multiprocessors)), BLOCK,
                                 tail_ptrs, program.name + " (finalize)")
            finally:
                if block != self._args:
                    ring.close()
            if writes:
                drv.call("cuMemcpyDtoHAsync_v2", _address(src), block, size, self.compute,
                         what=f"reading back the flags of {program.name}")
                drv.call("cuStreamSynchronize", self.compute, what=f"running {program.name}")
            elif profiler._active:
                drv.call("cuStreamSynchronize", self.compute, what=f"running {program.name}")
        if profiler._active:
            profiler.record_launch(program.name, t0, time.perf_counter(), nbytes, device=self.name)

    def _launch(self, fn: int, grid: int, block: int, params, name: str) -> None:
        """Queue ``fn`` on the compute stream; ``params`` is the array of kernel parameter addresses.
        ``grid`` and ``block`` are ints below 2**31 (passed without conversion, see Driver.raw)."""
        grid, block = operator.index(grid), operator.index(block)
        fp = self._fn_ptrs.get(fn)
        if fp is None:
            fp = self._fn_ptrs[fn] = ctypes.c_void_p(fn)
        code = self.drv.raw("cuLaunchKernel")(fp, grid, 1, 1, block, 1, 1, 0, self._compute_p, params, None)
        if code:
            raise cu.error_for(code, f"launching {name} ({grid} x {block} threads)", self.drv.describe(code))

    def synchronize(self) -> None:
        """Wait for every queued kernel and copy; raises the error of a failed kernel."""
        with self._lock:
            self._bind()
            self.drv.call("cuStreamSynchronize", self.compute, what=f"{self.name}: synchronize (compute)")
            self.drv.call("cuStreamSynchronize", self.copy, what=f"{self.name}: synchronize (copies)")

    # -- copies ------------------------------------------------------------------------------------
    def _stage(self) -> Staging:
        if self._staging is None:
            self._staging = Staging(self.drv, STAGING_CHUNK, STAGING_BUFFERS)
        return self._staging

    def _copy_after_compute(self) -> None:
        """The copy stream waits for the compute work queued so far."""
        self.drv.call("cuEventRecord", self._compute_done, self.compute)
        self.drv.call("cuStreamWaitEvent", self.copy, self._compute_done, 0)

    def _copy_after_users(self, buf) -> None:
        """The copy stream waits for the kernels that used ``buf``'s block before it was last freed
        (nothing to wait for on a block fresh from the driver)."""
        ev = self._freed.pop(buf.ptr, None)
        if ev is not None:
            self.drv.call("cuStreamWaitEvent", self.copy, ev, 0)
            self._free_events.append(ev)  # the wait took the event's state: it may be re-recorded

    def copy_in(self, buf, offset: int, host) -> None:
        """Copy a contiguous host array to the buffer at byte ``offset`` (chunks through the two
        pinned staging buffers; returns when the host array has been read, the last DMAs may
        still run). It waits only for earlier kernels that used the buffer's block (so it overlaps
        other queued work); later kernels wait for it. On failure the buffer is marked invalid.
        The buffer must be one no queued kernel uses any more (a new one from the pool, as
        ``_transfer.from_host`` passes)."""
        total, base = host_address(host)
        try:
            with self._lock:
                self._bind()
                drv, st = self.drv, self._stage()
                self._copy_after_users(buf)
                for i, pos in enumerate(range(0, total, st.nbytes)):
                    k = i % st.count
                    size = min(st.nbytes, total - pos)
                    st.wait(k)  # the DMA that last used this staging buffer is done
                    host_copy(st.ptrs[k], base + pos, size)
                    drv.call("cuMemcpyHtoDAsync_v2", buf.ptr + offset + pos, st.ptrs[k], size, self.copy,
                             what=f"copying {size} bytes to {self.name}")
                    drv.call("cuEventRecord", st.events[k], self.copy)
                    st.used[k] = True
                drv.call("cuEventRecord", self._copy_done, self.copy)
                drv.call("cuStreamWaitEvent", self.compute, self._copy_done, 0)
        except BaseException:
            buf.valid = False
            raise

    def copy_out(self, buf, offset: int, host) -> None:
        """Copy bytes of the buffer at byte ``offset`` into a contiguous host array, after the
        compute work queued so far; the DMA of one chunk overlaps the memmove of the previous."""
        from .._errors import TransferError
        if not buf.valid:
            raise TransferError(f"{self.name}: buffer holds invalid data (an earlier copy into it failed)")
        total, base = host_address(host)
        with self._lock:
            self._bind()
            drv, st = self.drv, self._stage()
            self._copy_after_compute()
            pending = None  # (k, pos, size) whose DMA was queued but not yet copied out
            for i, pos in enumerate(range(0, total, st.nbytes)):
                k = i % st.count
                size = min(st.nbytes, total - pos)
                st.wait(k)
                drv.call("cuMemcpyDtoHAsync_v2", st.ptrs[k], buf.ptr + offset + pos, size, self.copy,
                         what=f"copying {size} bytes from {self.name}")
                drv.call("cuEventRecord", st.events[k], self.copy)
                st.used[k] = True
                if pending is not None:
                    self._drain(st, *pending, base)
                pending = (k, pos, size)
            if pending is not None:
                self._drain(st, *pending, base)

    def _drain(self, st: Staging, k: int, pos: int, size: int, base: int) -> None:
        st.wait(k)
        host_copy(base + pos, st.ptrs[k], size)

    def copy_device(self, dst, dst_offset: int, src, src_offset: int, nbytes: int) -> None:
        """Device-to-device copy on the compute stream (ordered with kernels)."""
        with self._lock:
            self._bind()
            self.drv.call("cuMemcpyDtoDAsync_v2", dst.ptr + dst_offset, src.ptr + src_offset, nbytes,
                          self.compute, what=f"copying {nbytes} bytes within {self.name}")

    # -- DLPack (see egpu_array._dlpack) -----------------------------------------------------------
    @property
    def dlpack_code(self) -> tuple:
        """(kDLCUDA, ordinal): DLPack's name for this device."""
        return (2, self.index)

    @property
    def stream_handle(self) -> int:
        """The compute stream (a ``CUstream``): what a DLPack producer is asked to order work on."""
        return self.compute

    def stream_wait(self, waiter: int | None, on: int | None = None) -> None:
        """Make stream ``waiter`` wait (an event, no host block) for the work queued so far on
        stream ``on`` (default: our compute stream). ``waiter`` None: block the host until it is
        done instead (cuCtxSynchronize when ``on`` is None too: a stream we cannot name)."""
        with self._lock:
            self._bind()
            drv = self.drv
            if waiter is None and on is None:
                drv.call("cuCtxSynchronize", what=f"{self.name}: DLPack synchronize")
                return
            ev = getattr(self, "_dlpack_event", None)
            if ev is None:  # one event, re-recorded: a wait takes the state it had when queued
                ev = self._dlpack_event = drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"])
            drv.call("cuEventRecord", ev, self.compute if on is None else on, what="DLPack: recording an event")
            if waiter is None:
                drv.call("cuEventSynchronize", ev, what="DLPack: waiting for the consumer's stream")
            else:
                drv.call("cuStreamWaitEvent", waiter, ev, 0, what="DLPack: ordering the consumer's stream")


class EventTimer:
    """Device time between two events on a device's compute stream (benchmarks)::

        t = EventTimer(dev); t.start(); ...queue work...; seconds = t.stop()
    """

    def __init__(self, device: CUDADevice):
        self.device = device
        device._bind()
        self.events = [device.drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DEFAULT"]) for _ in range(2)]

    def start(self) -> None:
        self.device._bind()
        self.device.drv.call("cuEventRecord", self.events[0], self.device.compute)

    def stop(self) -> float:
        """Seconds of device time since :meth:`start` (waits for the queued work)."""
        drv = self.device.drv
        self.device._bind()
        drv.call("cuEventRecord", self.events[1], self.device.compute)
        drv.call("cuEventSynchronize", self.events[1], what="waiting for a timing event")
        ms = ctypes.c_float()
        drv.call("cuEventElapsedTime", ctypes.byref(ms), self.events[0], self.events[1])
        return ms.value / 1e3


def list_devices() -> list:
    """Names of the CUDA devices present (none without a driver or a GPU)."""
    return [f"cuda:{i}" for i in range(cu.device_count())]


register_device("cuda", CUDADevice, list_devices)
