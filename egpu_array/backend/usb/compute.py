"""The ``sim`` device's compute queue: kernels overlap copies on the virtual clock.

Two sides, as on real hardware:

* :class:`ComputeEngine` is the emulated GPU's compute engine (attached to the BAR0 compute-queue
  registers of :class:`.emu_pcie.Gpu`). A doorbell write hands it the queued kernels; it runs each
  one at once on the host (our CPU kernel on the VRAM array, so the data is final immediately) but
  places it on its own virtual timeline: ``start = max(doorbell arrival, end of the previous
  kernel)``, ``end = start + ComputeModel.seconds(...)``. The fence register shows the sequence
  number of the last kernel whose ``end`` has passed on the virtual clock.
* :class:`ComputeQueue` is the host side (the driver): :meth:`~ComputeQueue.submit` appends a
  command, rings the doorbell (a posted TLP) and returns without waiting, so copies that follow
  run on the link while the kernel runs on the GPU. It remembers which VRAM ranges each in-flight
  kernel touches; :meth:`~ComputeQueue.wait_range` (called before every copy) sleeps until the
  modeled completion of the last kernel touching the copied range, then reads the fence (polling
  with backoff until it shows that kernel). So a copy out of a buffer waits
  for the kernel that writes it, a copy into a buffer waits for kernels still reading it, and
  unrelated copies proceed. A kernel reading a buffer needs no wait for the copy that filled it:
  copies are host-driven and return only after their last copy-engine fence, so the doorbell
  always arrives after the data is in VRAM. A doorbell lost on the way (a posted write, never
  answered) leaves its command in the ring: the next doorbell runs it first, so the fence never
  passes a kernel that did not run; a wait that finds the fence short of a kernel past its modeled
  end rings the doorbell again (once per wait; it carries the write pointer, so ringing twice is
  harmless), and times out with KernelLaunchError only if that one is lost too.

VRAM ranges come from the launch's int64 argument slots: every slot holding an address inside the
VRAM aperture names the whole allocation containing it (conservative for views). A launch whose
slots are given as a bare address (count unknown) is treated as touching all of VRAM and is
waited for at once; so is a launch that changed its own argument slots (error or retry flags the
caller reads right after the launch). Results are therefore never read before, in virtual time,
the kernel producing them has completed.
"""
from __future__ import annotations

import ctypes
from collections import deque

from ..._errors import KernelLaunchError

__all__ = ["ComputeModel", "COMPUTE", "ComputeEngine", "ComputeQueue", "overlap"]

MASK32 = 0xFFFFFFFF
ALL_VRAM = ((0, 1 << 62),)
HISTORY = 4096  # intervals kept for the trace and overlap figures


class ComputeModel:
    """Modeled run time of one kernel on a small eGPU, deterministic:

    ``launch_s + max(nbytes / vram_bytes_per_s, flops_per_work * work / flops_per_s)``.

    ``nbytes`` is what the launcher says the kernel touches, ``work`` its work estimate (elements
    touched; M*N*K multiply-adds for matmul), each counted as ``flops_per_work`` = 2 flops. The
    defaults model a small current eGPU (an RTX 4060-class card: 272 GB/s GDDR6 and 15 fp32
    TFLOP/s peak) at about 70% of peak: 190 GB/s and 10 TFLOP/s, 5 us to start a kernel. A model,
    not a measurement: it is deterministic so virtual-time figures and tests are reproducible.
    """

    __slots__ = ("launch_s", "vram_bytes_per_s", "flops_per_s", "flops_per_work")

    def __init__(self, launch_s: float = 5e-6, vram_bytes_per_s: float = 190e9,
                 flops_per_s: float = 10e12, flops_per_work: float = 2.0):
        self.launch_s, self.vram_bytes_per_s = launch_s, vram_bytes_per_s
        self.flops_per_s, self.flops_per_work = flops_per_s, flops_per_work

    def __repr__(self) -> str:
        return (f"ComputeModel(launch_s={self.launch_s}, vram_bytes_per_s={self.vram_bytes_per_s}, "
                f"flops_per_s={self.flops_per_s}, flops_per_work={self.flops_per_work})")

    def seconds(self, nbytes: int, work: int = 0) -> float:
        """Modeled run time of a kernel touching ``nbytes`` with ``work`` work items."""
        return self.launch_s + max(nbytes / self.vram_bytes_per_s,
                                   self.flops_per_work * work / self.flops_per_s)


COMPUTE = ComputeModel()


class ComputeEngine:
    """GPU side: runs doorbelled kernels, keeps their virtual timeline, answers the fence."""

    def __init__(self, gpu, clock, run, model: ComputeModel = COMPUTE):
        """Attach to ``gpu`` (its doorbell and fence registers); ``run`` executes a command."""
        self.gpu, self.clock, self.run, self.model = gpu, clock, run, model
        self.commands: deque = deque()  # written by the host before the doorbell
        self.done: deque = deque()  # (end, seq) not yet visible in the fence
        self.fence = gpu.cq["fence"]
        self.free_at = 0.0
        self.launches, self.seconds = 0, 0.0
        self.intervals: deque = deque(maxlen=HISTORY)  # ("kind name", start, end)
        gpu.on_launch, gpu.on_fence = self.doorbell, self.read_fence

    def doorbell(self, seq: int) -> None:
        """Run every queued command now; each completes at its modeled virtual time."""
        while self.commands:
            cseq, program, args, n, nbytes, work = self.commands.popleft()
            self.run(program, args, n, nbytes, work)
            dt = self.model.seconds(nbytes, n if work is None else work)
            start = max(self.clock.now(), self.free_at)
            self.free_at = start + dt
            self.done.append((self.free_at, cseq))
            kind = getattr(program.spec, "kind", None)
            self.intervals.append((f"{kind} {program.name}" if kind else program.name,
                                   start, self.free_at))
            self.launches += 1
            self.seconds += dt

    def read_fence(self) -> int:
        """The fence register: the last sequence number completed by now."""
        now = self.clock.now()
        while self.done and self.done[0][0] <= now:
            self.fence = self.done.popleft()[1]
        self.gpu.cq["fence"] = self.fence
        return self.fence


def _copy_slots(args):
    """A copy of a launch's argument slots (a NumPy int64 array or a ctypes array)."""
    if hasattr(args, "ctypes") and hasattr(args, "copy"):
        return args.copy()
    return type(args).from_buffer_copy(args)


class ComputeQueue:
    """Host side: submit kernels without waiting, wait for the ones a copy depends on."""

    def __init__(self, link, clock, vram_ranges, engine: ComputeEngine, timeout_s: float = 1.0):
        """``vram_ranges(value)`` gives the (start, end) VRAM offsets of the allocation holding
        host address ``value``, or None (for any int64 slot value)."""
        from .memmap import cq_offset
        self.link, self.clock, self.engine = link, clock, engine
        self.vram_ranges, self.timeout_s = vram_ranges, timeout_s
        self.doorbell, self.fence_reg = cq_offset("doorbell"), cq_offset("fence")
        self.seq = self.fence = link.read32(0, self.fence_reg)
        self.inflight: deque = deque()  # (seq, ranges, modeled seconds, expected end)
        self.expected_free = 0.0  # the driver's estimate of when the queue drains

    def _ranges(self, args):
        """VRAM ranges named by the argument slots, and a snapshot of the slots (None: unknown)."""
        if isinstance(args, int):
            return ALL_VRAM, None
        if hasattr(args, "ctypes") and hasattr(args, "nbytes"):
            addr, count = args.ctypes.data, args.nbytes // 8
        else:
            addr, count = ctypes.addressof(args), ctypes.sizeof(args) // 8
        slots = tuple((ctypes.c_int64 * count).from_address(addr))
        found = {r for r in map(self.vram_ranges, slots) if r is not None}
        return tuple(sorted(found)), (addr, count, slots)

    def submit(self, program, args, n: int, nbytes: int, work=None) -> None:
        """Queue one kernel and ring the doorbell; returns before the kernel completes (unless
        its argument slots are unknown or it wrote them: then it waits for it)."""
        ranges, snap = self._ranges(args)
        self.seq = (self.seq + 1) & MASK32
        dt = self.engine.model.seconds(nbytes, n if work is None else work)
        ring = self.engine.commands
        command = (self.seq, program, args, n, nbytes, work)
        ring.append(command)
        try:
            self.link.write32(0, self.doorbell, self.seq)
        except BaseException:
            if any(c is command for c in ring):  # the caller sees the failure: it never runs
                ring.remove(command)
            raise
        if any(c is command for c in ring):
            # The doorbell (a posted write: never answered) was lost on the way. As in a GPU's
            # ring, the command waits there for the next doorbell, which runs it first, in order:
            # the fence never passes a kernel that did not run. Its argument slots are copied
            # (the caller's go away when this returns); slots given as a bare address cannot be,
            # so that command is dropped and its wait below times out.
            ring.remove(command)
            if snap is not None:
                ring.append(command[:2] + (_copy_slots(args),) + command[3:])
        self.expected_free = max(self.clock.now(), self.expected_free) + dt
        self.inflight.append((self.seq, ranges, dt, self.expected_free))
        if snap is None or tuple((ctypes.c_int64 * snap[1]).from_address(snap[0])) != snap[2]:
            self.wait_seq(self.seq, program.name)

    def _reached(self, seq: int) -> bool:
        return (self.fence - seq) & MASK32 < 0x80000000

    def wait_seq(self, seq: int, what: str = "kernel") -> None:
        """Sleep until the modeled completion of ``seq`` (the driver knows the model), then poll
        the fence (one register read each, with backoff) until it shows ``seq``."""
        if not self._reached(seq):
            budget = self.timeout_s + sum(entry[2] for entry in self.inflight)
            self.clock.advance_to(max((e[3] for e in self.inflight if e[0] == seq), default=0.0))
            deadline, delay, rung = self.clock.now() + budget, 2e-6, False
            while True:
                self.fence = self.link.read32(0, self.fence_reg)
                if self._reached(seq):
                    break
                if self.clock.now() > deadline:
                    raise KernelLaunchError(
                        f"sim: {what} did not complete: queue fence {self.fence:#x}, expected "
                        f"{seq:#x} within {budget:.3g} s of virtual time (doorbell lost?)")
                if not rung:  # past its modeled end: ring again (the write pointer, idempotent), as
                    rung = True  # a lost doorbell leaves its commands waiting in the ring
                    self.link.write32(0, self.doorbell, self.seq)
                self.clock.sleep(delay)
                delay = min(2 * delay, 100e-6)
        while self.inflight and self._reached(self.inflight[0][0]):
            self.inflight.popleft()

    def wait_range(self, lo: int, hi: int) -> None:
        """Wait for every in-flight kernel touching VRAM offsets [lo, hi)."""
        last = None
        for seq, ranges, _, _ in self.inflight:
            if any(a < hi and lo < b for a, b in ranges):
                last = seq
        if last is not None:
            self.wait_seq(last, "a kernel writing or reading the copied buffer")

    def wait_all(self) -> None:
        """Wait for every submitted kernel (and read the fence at least once)."""
        self.fence = self.link.read32(0, self.fence_reg)
        self.wait_seq(self.seq)


def overlap(intervals, start: float, end: float) -> float:
    """Seconds of [start, end) covered by the union of ``intervals`` ((t0, t1) pairs)."""
    covered, cursor = 0.0, start
    for t0, t1 in sorted(intervals):
        t0, t1 = max(t0, cursor), min(t1, end)
        if t1 > t0:
            covered += t1 - t0
            cursor = t1
    return covered
