"""Modeled time to move 1 GB host <-> VRAM over the emulated bridge presets.

Every byte goes through the real pyusb transport and the staging code; times are
virtual (the link model's clock), not wall time. To keep it quick, each case
copies 64 MiB and scales the time by 1 GB / 64 MiB (the per-chunk pattern is
identical, so the scaling is linear). "overlap" uses two SRAM windows (bulk
transfer of one chunk overlaps the GPU copy of the previous one), "serial" one.
The last rows repeat USB3 with a 100 us control transfer, the low end of the
reference's unmeasured 0.1-1 ms estimate, to show how much the result depends
on that guess.

The second table streams data through the ``sim`` device with compute: 1 GB of float32 rows
(scaled from 64 MiB in 4 MiB chunks) goes in, is multiplied by a resident 4096 x 4096 matrix
(a compute-bound GEMM under the sim compute model: 2 * 512 * 4096^2 flops per chunk at the
modeled 10 TFLOP/s) and comes back. "overlap": the next chunk's copy-in runs while the kernel
runs (sim's asynchronous compute queue); "serial": the host waits for each kernel before the next
copy. The kernel really runs (on this host's CPU) and one chunk is checked against NumPy; the
times are the virtual clock's. "covered" is the share of kernel time during which a copy was
moving data.

Run: ``python benchmarks/usb_link.py`` (or ``main([])``).
"""
from __future__ import annotations

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import egpu_array as xp  # noqa: E402
from egpu_array.backend.usb.emu_link import PRESETS  # noqa: E402
from egpu_array.backend.usb.sim import SimDevice  # noqa: E402
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


K = 4096  # GEMM inner and output size
CHUNK = 4 << 20  # bytes of input rows per chunk


def pipeline(dev, overlap: bool) -> dict:
    """Stream SAMPLE bytes of rows through ``rows @ w`` on ``dev``; virtual-time figures."""
    rng = np.random.default_rng(0)
    w = xp.asarray(rng.standard_normal((K, K), dtype=np.float32) / 64, device=dev)
    rows = CHUNK // (4 * K)
    host = [rng.standard_normal((rows, K), dtype=np.float32) for _ in range(SAMPLE // CHUNK)]
    dev.synchronize()
    t0, st0 = dev.clock.now(), dev.stats()
    first_kernel = len(dev.timeline()["compute"])
    out, pending = [], None
    for x in host:
        y = xp.asarray(x, device=dev) @ w  # copy-in (overlaps the previous kernel), then launch
        y._realize()
        if not overlap:
            dev.synchronize()
        if pending is not None:
            out.append(np.asarray(pending))  # waits for its kernel only
        pending = y
    out.append(np.asarray(pending))
    dev.synchronize()
    t1, st1 = dev.clock.now(), dev.stats()
    if not np.allclose(out[1], host[1] @ np.asarray(w), rtol=1e-3, atol=1e-3):
        raise SystemExit("usb_link: sim pipeline result differs from NumPy")
    kernels = dev.timeline()["compute"][first_kernel:]
    busy = sum(e - s for _, s, e in kernels)
    covered = sum(dev.copy_overlap(s, e) for _, s, e in kernels)
    link = (st1["h2d_seconds"] - st0["h2d_seconds"]) + (st1["d2h_seconds"] - st0["d2h_seconds"])
    return {"total": t1 - t0, "compute": st1["compute_seconds"] - st0["compute_seconds"],
            "link": link, "covered": covered / busy if busy else 0.0}


def compute_table() -> None:
    """1 GB through a GEMM on sim per preset, with and without overlap."""
    scale = TARGET / SAMPLE
    print(f"\n1 GB in + 1 GB out through rows @ W ({K}x{K} float32) on sim, modeled "
          f"(scaled from {SAMPLE >> 20} MiB in {CHUNK >> 20} MiB chunks)")
    print(f"{'preset':10} {'mode':8} {'total s':>8} {'copies s':>9} {'compute s':>10} "
          f"{'covered':>8} {'vs serial':>10}")
    for i, name in enumerate(("USB3_GEN2", "USB4")):
        dev = SimDevice(index=40 + i, vram_bytes=256 << 20, link_model=PRESETS[name])
        rows = {mode: pipeline(dev, mode == "overlap") for mode in ("serial", "overlap")}
        for mode, r in rows.items():
            print(f"{name:10} {mode:8} {r['total'] * scale:8.3f} {r['link'] * scale:9.3f} "
                  f"{r['compute'] * scale:10.3f} {100 * r['covered']:7.0f}% "
                  f"{rows['serial']['total'] / r['total']:9.2f}x")


def main(argv=None) -> int:
    """Print one row per preset and mode: copies alone, then copies with compute on sim."""
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
    compute_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
