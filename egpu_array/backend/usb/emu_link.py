"""Virtual clock, link-speed presets and fault injection of the emulated bridge.

The host is synchronous (pyusb has no async API), so every transfer advances one
virtual clock by its modeled cost; only the GPU copy engine runs on its own
timeline, which is what lets double buffering overlap bulk transfers with copies.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LinkModel:
    """Modeled costs of one link kind (seconds and bytes per second)."""

    name: str
    ctrl_s: float  # one control transfer, setup to status stage, firmware included
    bulk_setup_s: float  # fixed cost of one bulk transfer
    bulk_bytes_per_s: float  # F2 SRAM DMA throughput (the data path)
    stream_write_bytes_per_s: float  # F0 mode 1 (firmware issues one TLP per dword)
    stream_read_bytes_per_s: float  # F0 mode 2
    copy_engine_bytes_per_s: float  # GPU copy engine, SRAM <-> VRAM over PCIe
    copy_engine_setup_s: float  # per copy-engine chunk (sentinel seen -> copy starts)
    training_s: float  # F3 power-up to LTSSM L0


#: Presets. ctrl_s is an estimate (the reference found no measurement; it guesses
#: 0.1-1 ms for USB3): the USB3 figure assumes a lean firmware path, the USB4
#: figure a register round trip through the PCIe tunnel. Bulk figures follow the
#: reference: 700 MB/s raw F2 SRAM at 10 Gbps, ~3 GB/s for a 40 Gbps tunnel.
PRESETS = {
    "USB3_GEN2": LinkModel("USB3_GEN2", ctrl_s=12e-6, bulk_setup_s=2e-6,
                           bulk_bytes_per_s=700e6, stream_write_bytes_per_s=3.6e6,
                           stream_read_bytes_per_s=1.8e6, copy_engine_bytes_per_s=3.2e9,
                           copy_engine_setup_s=2e-6, training_s=30e-3),
    "USB4": LinkModel("USB4", ctrl_s=2e-6, bulk_setup_s=1e-6,
                      bulk_bytes_per_s=3.0e9, stream_write_bytes_per_s=3.6e6,
                      stream_read_bytes_per_s=1.8e6, copy_engine_bytes_per_s=12e9,
                      copy_engine_setup_s=1e-6, training_s=30e-3),
}
USB3_GEN2 = PRESETS["USB3_GEN2"]
USB4 = PRESETS["USB4"]


class VirtualClock:
    """Seconds of modeled time; only the emulator and ``sleep`` advance it."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` (a host-side wait)."""
        self._now += max(0.0, seconds)

    def advance_to(self, t: float) -> None:
        """Move forward to ``t`` (never backwards)."""
        self._now = max(self._now, t)


#: Fault kinds and the operations each may be armed on.
#: ops: ctrl_in, ctrl_out, bulk_in, bulk_out, tlp (a mode-0 TLP inside F0 OUT).
FAULT_OPS = {
    "timeout": {"ctrl_in", "ctrl_out", "bulk_in", "bulk_out"},
    "stall": {"ctrl_in", "ctrl_out", "bulk_in", "bulk_out"},
    "short_read": {"ctrl_in", "bulk_in"},
    "unplug": {"ctrl_in", "ctrl_out", "bulk_in", "bulk_out", "tlp"},
    "link_down": {"ctrl_in", "ctrl_out", "bulk_in", "bulk_out", "tlp"},
    "ur": {"tlp"},
    "ca": {"tlp"},
    "ret_error": {"tlp"},
}


@dataclass
class FaultRule:
    """Fire ``kind`` on matches nth .. nth+count-1 of ``op`` (and ``request`` if set)."""

    kind: str
    op: str
    nth: int = 1
    count: int = 1
    request: int | None = None
    seen: int = field(default=0)

    def matches(self, op: str, request: int | None) -> bool:
        """Count this operation; True when the rule fires on it."""
        if op != self.op or (self.request is not None and request != self.request):
            return False
        self.seen += 1
        return self.nth <= self.seen < self.nth + self.count


class FaultPlan:
    """Armed faults; the emulator asks :meth:`fire` before each operation."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.fired: list[tuple[str, str]] = []

    def arm(self, kind: str, op: str, nth: int = 1, count: int = 1,
            request: int | None = None) -> FaultRule:
        """Arm ``kind`` for the ``nth`` matching ``op`` (1-based), ``count`` times in a row."""
        if kind not in FAULT_OPS:
            raise ValueError(f"FaultPlan.arm: unknown fault {kind!r}, expected one of "
                             f"{sorted(FAULT_OPS)}")
        if op not in FAULT_OPS[kind]:
            raise ValueError(f"FaultPlan.arm: fault {kind!r} cannot be armed on {op!r}, "
                             f"expected one of {sorted(FAULT_OPS[kind])}")
        if nth < 1 or count < 1:
            raise ValueError(f"FaultPlan.arm: nth and count must be >= 1, got {nth}, {count}")
        rule = FaultRule(kind, op, nth, count, request)
        self.rules.append(rule)
        return rule

    def fire(self, op: str, request: int | None = None) -> set[str]:
        """The fault kinds that fire on this operation (usually none)."""
        kinds = {r.kind for r in self.rules if r.matches(op, request)}
        self.fired.extend((k, op) for k in sorted(kinds))
        return kinds

    def clear(self) -> None:
        """Disarm everything."""
        self.rules.clear()
