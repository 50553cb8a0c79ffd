"""The ``sim`` device: a simulated eGPU, for developing and testing eGPU code without hardware.

Arrays on ``sim`` live in the VRAM of an emulated GPU behind an emulated ASM24 bridge
(:mod:`.emulator`, plugged into pyusb as its backend). They reach the host only through the
real transport code: :meth:`SimDevice.copy_in` / :meth:`SimDevice.copy_out` are
:meth:`.staging.UsbGpuLink.copy_in` / ``copy_out`` (SRAM-staged bulk transfers, copy-engine
fences), so every byte crosses the modeled link and is counted by the profiler.

* Memory: a :class:`~egpu_array.backend.pool.PoolAllocator` over VRAM offsets from a
  :class:`.vram.VramAllocator`; ``Buffer.ptr`` is the host address of the emulated VRAM plus the
  offset (``Buffer.handle`` is the offset), because the emulated compute engine runs our CPU
  kernels directly on the VRAM array. Out of VRAM raises DeviceOutOfMemoryError.
* Compute: kernels are compiled for the host target and loaded into this device's own MCJIT
  engine (the cpu device's ``load``). A launch goes through the GPU's in-order command queue
  (:mod:`.compute`): the host queues the command and rings the queue doorbell in BAR0 (a posted
  TLP over the link) and returns; the emulated GPU runs the kernel on the host at once but places
  it on the virtual clock after the previous kernel, for its modeled time (:data:`COMPUTE`). So
  kernels overlap copies in virtual time: a copy waits (polling the BAR0 fence) only for the
  in-flight kernels touching the buffer it copies. Register accesses pay the link's latency and
  see link faults (timeouts, completion errors, a pulled cable) like copies do.
  ``timeline()`` lists the virtual-time intervals of kernels and copies (the profiler shows
  them as tracks of a ``sim (virtual time)`` process).
* Faults: a failed copy into a Buffer marks it invalid (arrays holding it raise TransferError
  instead of exposing partial data); a failed copy out raises and writes nothing to the host.
  After the cable comes back (``device.bridge.replug()``), :meth:`SimDevice.reset` reconnects;
  or :meth:`SimDevice.replug` does both. A reset marks every older buffer invalid: a GPU that
  lost its link lost its memory.

Configuration (read when the device is first created): ``EGPU_ARRAY_SIM_VRAM_MB`` (a power of
two, default 512) and ``EGPU_ARRAY_SIM_LINK`` (``usb3`` = USB3 Gen2 10 Gbps, ``usb4`` = 40 Gbps;
default ``usb4``). The emulator itself is created on first use (allocation, copy or launch).
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import deque


from ... import profiler
from ..._errors import TransferError
from ..._info import config
from ...kernels.targets import host_target
from ..cpu import CPUDevice
from ..device import Device, get_device, register_device
from ..pool import PoolAllocator
from .compute import COMPUTE, ComputeEngine, ComputeModel, ComputeQueue, overlap

__all__ = ["SimDevice", "ComputeModel", "ComputeQueue", "COMPUTE", "LINKS", "sim_settings",
           "overlap"]

#: EGPU_ARRAY_SIM_LINK values -> names of emu_link.PRESETS (imported on first use, not at import)
LINKS = {"usb3": "USB3_GEN2", "usb4": "USB4"}
DEFAULT_VRAM_MB = 512
HISTORY = 4096  # copy intervals kept for timeline()
TRACE_PROCESS = "sim (virtual time)"




def sim_settings() -> tuple:
    """(VRAM bytes, link model) from EGPU_ARRAY_SIM_VRAM_MB and EGPU_ARRAY_SIM_LINK."""
    raw = os.environ.get("EGPU_ARRAY_SIM_VRAM_MB", "") or str(DEFAULT_VRAM_MB)
    try:
        mb = int(raw)
    except ValueError:
        mb = 0
    if mb < 1 or mb & (mb - 1):
        raise ValueError(f"sim: EGPU_ARRAY_SIM_VRAM_MB must be a power of two >= 1, got {raw!r}")
    link = (os.environ.get("EGPU_ARRAY_SIM_LINK", "") or "usb4").lower()
    if link not in LINKS:
        raise ValueError(f"sim: EGPU_ARRAY_SIM_LINK must be one of {sorted(LINKS)}, got {link!r}")
    from .emu_link import PRESETS
    return mb << 20, PRESETS[LINKS[link]]


class _VramRaw:
    """Raw allocator of VRAM for the pool: ``(vram address + offset, offset)``."""

    def __init__(self, device: "SimDevice"):
        self.device = device
        self.lock = threading.RLock()  # Buffer.__del__ may release from any thread

    def alloc(self, nbytes: int):
        st = self.device._open()
        with self.lock:
            off = st.vram_alloc.alloc(nbytes)  # DeviceOutOfMemoryError is a MemoryError: retried
        return st.base + off, off

    def release(self, ptr: int, handle) -> None:
        st = self.device._state
        if st is not None:
            with self.lock:
                st.vram_alloc.free(handle)


class _SimPool(PoolAllocator):
    """The pool, remembering its live buffers so a reset can mark them invalid."""

    def alloc(self, nbytes: int):
        buf = super().alloc(nbytes)
        self.device._live.add(buf)
        return buf


class _State:
    """The opened emulator: bridge, link, VRAM allocator, compute queue."""

    def __init__(self, device: "SimDevice"):
        from .emulator import open_emulated
        from .vram import VramAllocator
        self.bridge, self.link = open_emulated(device.link_model, vram_bytes=device.vram_bytes)
        self.vram = self.bridge.vram
        self.base = self.vram.ctypes.data
        self.vram_alloc = VramAllocator(self.link.vram_size)
        self.gpu = self.bridge.bridge.pcie.gpu
        self.queue = None
        self.connect(device)

    def connect(self, device) -> None:
        engine = ComputeEngine(self.gpu, self.bridge.clock, device._run_kernel, device.compute_model)
        if self.queue is not None:
            old = self.queue.engine
            engine.launches, engine.seconds, engine.intervals = old.launches, old.seconds, old.intervals
        self.queue = ComputeQueue(self.link, self.bridge.clock, self.vram_range, engine)

    def vram_range(self, addr: int):
        """(start, end) VRAM offsets of the allocation holding host address ``addr``, or None."""
        off = addr - self.base
        return self.vram_alloc.find(off) if 0 <= off < self.vram.size else None


class SimDevice(Device):
    """A simulated eGPU: emulated bridge + VRAM + copy/compute engines on a virtual clock.

    For developing and testing eGPU code without hardware (see the module docstring). Extra
    attributes: ``bridge`` (the :class:`.emulator.EmulatedBridge`: ``faults``, ``unplug()``,
    ``replug()``, ``vram``, ``clock``), ``link`` (the :class:`.staging.UsbGpuLink`),
    ``link_stats`` (bytes and virtual seconds per direction), ``clock``, ``stats()``.
    """

    kind = "sim"
    host_memory = False

    def __init__(self, index: int = 0, vram_bytes: int | None = None,
                 link_model=None, compute_model: ComputeModel | None = None):
        env_vram, env_link = sim_settings()
        self.index = index
        self.name = "sim" if index == 0 else f"sim:{index}"
        self.vram_bytes = vram_bytes or env_vram
        self.link_model = link_model or env_link
        #: threads of the host CPU that executes the emulated GPU's kernels (for work splitting)
        self.num_threads = config().num_threads   # (get_device here would re-enter its lock)
        self.compute_model = compute_model or COMPUTE
        self._copies = deque(maxlen=HISTORY)  # (direction, start, end, bytes), virtual seconds
        self.target = host_target()
        self.allocator = _SimPool(self, _VramRaw(self))
        self._live = weakref.WeakSet()
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._engine = None
        self._engine_lock = threading.Lock()

    def __eq__(self, other) -> bool:
        if isinstance(other, str) and other == f"sim:{self.index}":
            return True
        return super().__eq__(other)

    __hash__ = Device.__hash__

    # -- the emulator, opened on first use --------------------------------------------------
    def _open(self) -> _State:
        st = self._state
        if st is None:
            with self._lock:
                if self._state is None:
                    self._state = _State(self)
                st = self._state
        return st

    @property
    def bridge(self):
        """The emulated bridge (pyusb backend): faults, unplug/replug, vram, clock."""
        return self._open().bridge

    @property
    def link(self):
        """The UsbGpuLink every copy and register access goes through."""
        return self._open().link

    @property
    def clock(self):
        """The virtual clock of the link and the GPU."""
        return self._open().bridge.clock

    @property
    def link_stats(self):
        """LinkStats: h2d/d2h bytes and virtual-clock seconds of completed copies."""
        return self._open().link.stats

    def stats(self) -> dict:
        """Modeled figures: link bytes/seconds per direction, launches, compute seconds, VRAM use."""
        st = self._open()
        s, q = st.link.stats, st.queue
        return {"link": self.link_model.name, "h2d_bytes": s.h2d_bytes, "h2d_seconds": s.h2d_seconds,
                "d2h_bytes": s.d2h_bytes, "d2h_seconds": s.d2h_seconds,
                "h2d_bytes_per_s": s.rate("h2d"), "d2h_bytes_per_s": s.rate("d2h"),
                "launches": q.engine.launches, "compute_seconds": q.engine.seconds,
                "compute_busy_until": q.engine.free_at,
                "virtual_seconds": st.bridge.clock.now(), "vram_bytes": st.link.vram_size,
                "vram_used": st.vram_alloc.used}

    def timeline(self) -> dict:
        """Virtual-time intervals (seconds) of recent work: ``compute`` holds (kernel, start, end),
        ``copies`` (direction, start, end, bytes); at most the last 4096 of each."""
        st = self._open()
        return {"compute": list(st.queue.engine.intervals), "copies": list(self._copies)}

    def copy_overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end) during which a copy was moving data over the link."""
        return overlap([(t0, t1) for _, t0, t1, _ in self._copies], start, end)

    @property
    def capabilities(self) -> dict:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    # -- kernels ------------------------------------------------------------------------------
    def load(self, binary: bytes, fname: str, spec):
        """Load host object code into this device's JIT engine (the cpu device's loader)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = self.target.jit_engine()
        return CPUDevice.load(self, binary, fname, spec)

    def _run_kernel(self, program, args, n: int, nbytes: int, work=None) -> None:
        """The emulated compute engine: our CPU kernel on the VRAM array (cpu thread pool)."""
        get_device("cpu").launch(program, args, n, nbytes, work=work)

    def launch(self, program, args, n: int, nbytes: int = 0, work: int | None = None) -> None:
        """Queue ``program`` over ``[0, n)`` on the compute queue (see :mod:`.compute`); returns
        before it completes in virtual time. ``work`` (elements touched, or multiply-adds) feeds
        the compute model and the cpu device's launch."""
        with self._lock:
            st = self._open()
            ran = st.queue.engine.launches
            st.queue.submit(program, args, n, nbytes, work)
            if profiler._active and st.queue.engine.launches > ran:
                name, t0, t1 = st.queue.engine.intervals[-1]
                profiler.record_virtual(name, "compute", t0, t1, TRACE_PROCESS, {"bytes": nbytes})

    def synchronize(self) -> None:
        """Wait (polling the fence over the link) until every queued kernel has completed."""
        if self._state is not None:
            with self._lock:
                self._state.queue.wait_all()

    def _copy(self, direction: str, vram: int, nbytes: int, move):
        """Wait for kernels touching VRAM [vram, vram + nbytes), then ``move()``; record it."""
        st = self._open()
        st.queue.wait_range(vram, vram + nbytes)
        t0 = st.bridge.clock.now()
        result = move(st.link)
        t1 = st.bridge.clock.now()
        self._copies.append((direction, t0, t1, nbytes))
        if profiler._active:
            profiler.record_virtual(f"copy {direction}", f"copy {direction}", t0, t1,
                                    TRACE_PROCESS, {"bytes": nbytes})
        return result

    # -- copies -------------------------------------------------------------------------------
    def copy_in(self, buf, offset: int, host) -> None:
        """Copy a contiguous host array to the buffer at byte ``offset`` over the link.

        On failure the buffer is marked invalid and the error re-raised; ``host`` is only read.
        """
        try:
            with self._lock:
                src, at = memoryview(host).cast("B"), buf.handle + offset
                self._copy("to_device", at, host.nbytes, lambda link: link.copy_in(at, src))
        except BaseException:
            buf.valid = False
            raise

    def copy_out(self, buf, offset: int, host) -> None:
        """Copy bytes of the buffer at byte ``offset`` into a contiguous host array.

        ``host`` is written only after the whole copy arrived; a failure raises and writes nothing.
        """
        if not buf.valid:
            raise TransferError(f"{self.name}: buffer holds invalid data (an earlier copy into it "
                                "failed, or the device was reset)")
        with self._lock:
            at = buf.handle + offset
            data = self._copy("from_device", at, host.nbytes,
                              lambda link: link.copy_out(at, host.nbytes))
        memoryview(host).cast("B")[:] = data

    # -- cable ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Reconnect after a device loss or link failure (the bridge must be plugged in).

        Reopens the bridge through pyusb, powers up and enumerates PCIe again, resynchronizes the
        compute queue and marks every buffer allocated before as invalid.
        """
        with self._lock:
            st = self._open()
            st.link.reconnect()
            st.connect(self)
            for buf in list(self._live):
                buf.valid = False

    def replug(self) -> None:
        """Simulate plugging the cable back in (``bridge.replug()``), then :meth:`reset`."""
        with self._lock:
            self._open().bridge.replug()
            self.reset()

    def unplug(self) -> None:
        """Simulate pulling the cable: every link operation fails with DeviceLostError."""
        self._open().bridge.unplug()


def _sim_devices() -> list:
    """``sim`` and every further emulated device made so far (``sim:1``, ...: each is created on
    first use, so the list grows as a program names them)."""
    from ..device import _instances
    made = sorted({d.index for d in list(_instances.values()) if isinstance(d, SimDevice)} - {0})
    return ["sim"] + [f"sim:{i}" for i in made]


register_device("sim", SimDevice, _sim_devices)
