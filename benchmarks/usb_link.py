"""Modeled time to move 1 GB host <-> VRAM over the emulated bridge presets.

Every byte goes through the real pyusb transport and the staging code; times are
virtual (the link model's clock), not wall time. To keep it quick, each case
copies 64 MiB and scales the time by 1 GB / 64 MiB (the per-chunk pattern is
identical, so the scaling is linear). "overlap" uses two SRAM windows (bulk
transfer of one chunk overlaps the GPU copy of the previous one), "serial" one.
The last rows repeat USB3 with a 100 us control transfer, the low end of the
reference's unmeasured 0.1-1 ms estimate, to show how much the result depends
on that guess.

Run: ``python benchmarks/usb_link.py``
"""
from __future__ import annotations

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egpu_array.backend.usb.emu_link import PRESETS  # noqa: E402
from egpu_array.backend.usb.emulator import EmulatedBridge  # noqa: E402
from egpu_array.backend.usb.staging import UsbGpuLink  # noqa: E402

SAMPLE = 64 << 20
TARGET = 1e9


def measure(model, windows: int) -> tuple[float, float]:
    """Modeled seconds for TARGET bytes (h2d, d2h), scaled from a SAMPLE copy."""
    gpu = UsbGpuLink.open(EmulatedBridge(model, vram_bytes=SAMPLE), windows=windows)
    data = os.urandom(SAMPLE)
    gpu.copy_in(0, data)
    if gpu.copy_out(0, SAMPLE) != data:
        raise SystemExit("usb_link: round trip returned different data")
    scale = TARGET / SAMPLE
    return gpu.stats.h2d_seconds * scale, gpu.stats.d2h_seconds * scale


def main() -> None:
    """Print one row per preset and mode."""
    models = list(PRESETS.values())
    models.append(dataclasses.replace(PRESETS["USB3_GEN2"], name="USB3_GEN2@ctrl100us",
                                      ctrl_s=100e-6))
    print(f"1 GB host<->VRAM, modeled (scaled from {SAMPLE >> 20} MiB copies)")
    print(f"{'preset':22} {'mode':8} {'h2d s':>7} {'h2d GB/s':>9} {'d2h s':>7} "
          f"{'d2h GB/s':>9} {'of bulk rate':>13}")
    for model in models:
        for windows, mode in ((2, "overlap"), (1, "serial")):
            h2d, d2h = measure(model, windows)
            frac = TARGET / max(h2d, d2h) / model.bulk_bytes_per_s
            print(f"{model.name:22} {mode:8} {h2d:7.3f} {TARGET / h2d / 1e9:9.3f} "
                  f"{d2h:7.3f} {TARGET / d2h / 1e9:9.3f} {100 * frac:12.0f}%")


if __name__ == "__main__":
    main()
