"""Emulated GPU copy engine: SRAM <-> VRAM with the sentinel/fence handshakes.

It runs on its own virtual timeline. A copy-in chunk starts once its sentinel
(``0x51000000 | seq`` in the chunk's last dword) has landed in the SRAM window
and the engine is free; when done it writes ``seq + 1`` to the fence. A copy-out
chunk starts once the host has credited the window as consumed; when done it
writes the release register, which lets an armed F2 bulk IN go. Work is done
lazily: the bridge calls :meth:`run_until` before anything observes SRAM, VRAM
or the fence, so results appear exactly at their modeled completion times.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .asm24 import SLOT
from .memmap import (CE_OP_COPY_IN, CE_OP_COPY_OUT, COPY_IN_CHUNK, COPY_OUT_CHUNK,
                     CREDIT_XDATA, FENCE_XDATA, RELEASE_XDATA, WINDOW_BYTES, padded_in,
                     sentinel)


@dataclass
class Job:
    """One programmed copy: ``total`` bytes in chunks of ``chunk`` through ``windows``."""

    op: int
    vram: int
    total: int
    chunk: int
    windows: int
    seq0: int
    t0: float
    k: int = 0

    @property
    def nchunks(self) -> int:
        """Number of chunks."""
        return math.ceil(self.total / self.chunk)

    def payload(self, k: int) -> int:
        """Bytes of VRAM data in chunk ``k``."""
        return min(self.chunk, self.total - k * self.chunk)

    def window_base(self, k: int) -> int:
        """SRAM offset of chunk ``k``'s window."""
        return (k % self.windows) * WINDOW_BYTES


class CopyEngine:
    """The emulated GPU's DMA engine, started by the BAR0 doorbell register."""

    def __init__(self, bridge, gpu, clock, model):
        """Attach to ``bridge`` (SRAM, XDATA, link state) and ``gpu`` (VRAM, doorbell)."""
        self.bridge, self.gpu, self.clock, self.model = bridge, gpu, clock, model
        gpu.on_doorbell = self.start
        self.reset()

    def reset(self) -> None:
        """Idle, no job, no pending releases."""
        self.job: Job | None = None
        self.error = ""
        self.free_at = 0.0
        self.releases: deque[tuple[float, int]] = deque()
        self.credit_byte = self.bridge.xdata[CREDIT_XDATA]
        self.consumed = 0
        self.credit_times: list[tuple[float, int]] = []

    def start(self, regs: dict) -> None:
        """Doorbell: replace any running job with the one in ``regs``."""
        self.run_until(self.clock.now())
        limit = {CE_OP_COPY_IN: COPY_IN_CHUNK, CE_OP_COPY_OUT: COPY_OUT_CHUNK}
        vram = regs["vram_hi"] << 32 | regs["vram_lo"]
        job = Job(regs["op"], vram, regs["total"], regs["chunk"], regs["windows"],
                  regs["seq"], self.clock.now())
        self.job, self.error = None, ""
        self.releases.clear()
        self.credit_byte, self.consumed, self.credit_times = self.bridge.xdata[CREDIT_XDATA], 0, []
        if job.op not in limit or not 0 < job.chunk <= limit[job.op] or job.windows not in (1, 2):
            self.error = f"bad copy-engine job {regs}"
        elif job.vram + job.total > self.gpu.vram.size or job.total <= 0:
            self.error = f"copy of {job.total} B at VRAM {job.vram:#x} exceeds VRAM"
        else:
            self.job = job

    def credit_written(self, value: int, t: float) -> None:
        """The host wrote the copy-out credit byte (chunks consumed, mod 256)."""
        self.consumed += (value - self.credit_byte) & 0xFF
        self.credit_byte = value
        self.credit_times.append((t, self.consumed))

    def _ready_time(self, job: Job, k: int) -> float | None:
        if job.op == CE_OP_COPY_IN:
            end = job.window_base(k) + padded_in(job.payload(k)) - 4
            word = int.from_bytes(self.bridge.sram[end:end + 4].tobytes(), "little")
            return self.bridge.slot_time[end // SLOT] if word == sentinel(job.seq0 + k) else None
        need = k - job.windows + 1  # chunks the host must have consumed
        if need <= 0:
            return job.t0
        return next((t for t, c in self.credit_times if c >= need), None)

    def _step(self, limit: float) -> bool:
        job = self.job
        if job is None or job.k >= job.nchunks or not self.bridge.pcie_up:
            return False
        k = job.k
        ready = self._ready_time(job, k)
        if ready is None:
            return False
        n = job.payload(k)
        end = max(self.free_at, ready) + self.model.copy_engine_setup_s \
            + n / self.model.copy_engine_bytes_per_s
        if end > limit:
            return False
        base, dst = job.window_base(k), job.vram + k * job.chunk
        sram, vram = self.bridge.sram, self.gpu.vram
        if job.op == CE_OP_COPY_IN:
            vram[dst:dst + n] = sram[base:base + n]
            self.bridge.write_xdata32(FENCE_XDATA, job.seq0 + k + 1)
        else:
            sram[base:base + n] = vram[dst:dst + n]
            self.bridge.write_xdata32(RELEASE_XDATA, job.seq0 + k)
            self.releases.append((end, job.seq0 + k))
        self.free_at, job.k = end, k + 1
        return True

    def run_until(self, t: float) -> None:
        """Finish every chunk whose modeled completion is at or before ``t``."""
        while self._step(t):
            pass

    def take_release(self) -> float | None:
        """Run until a release is written; pop and return its time (None: never)."""
        while not self.releases and self._step(math.inf):
            pass
        return self.releases.popleft()[0] if self.releases else None


def as_uint8(data) -> np.ndarray:
    """A read-only uint8 view of bytes-like ``data``."""
    return np.frombuffer(data, dtype=np.uint8)
