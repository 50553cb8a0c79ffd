"""List the devices egpu_array can see, their capabilities and dtypes, and the configuration."""
from __future__ import annotations

import platform
import sys


def add_arguments(parser) -> None:
    parser.add_argument("--dtypes", action="store_true", help="also list each device's dtypes")


def _cache_summary(folder) -> str:
    if folder is None:
        return "off (EGPU_ARRAY_CACHE_DIR=off)"
    try:
        files = [p for p in folder.glob("*.bin") if p.is_file()]
    except OSError:
        return f"{folder} (empty, not created yet)"
    size = sum(p.stat().st_size for p in files)
    return f"{folder} ({len(files)} kernels, {size / 1e6:.1f} MB)"


def pcie_link_lines(link) -> list:
    """The PCIe link of the GPU and of the bridge's downstream port above it, from the Link
    Status register of each one's PCI Express capability (read over ``link``, a UsbGpuLink)."""
    from egpu_array.backend.usb.pcie import GPU_BUS
    lines = []
    for what, bus in (("GPU link", GPU_BUS), ("bridge downstream port", GPU_BUS - 1)):
        try:
            info = link.bus.link(bus)
        except Exception as exc:  # a config read failed: say so, keep listing
            lines.append(f"{what}: cannot read ({type(exc).__name__}: {exc})")
            continue
        lines.append(f"{what}: {info if info is not None else 'no PCI Express capability'}")
    return lines


def sim_lines(dev) -> list:
    """The sim device's emulated link: the USB preset and the PCIe link read from config space."""
    try:
        return [f"link: emulated bridge, {dev.link_model.name} preset"] + pcie_link_lines(dev.link)
    except Exception as exc:
        return [f"link: cannot open the emulator ({type(exc).__name__}: {exc})"]


def usb_bridge_lines(backend=None) -> list:
    """One line per USB bridge pyusb finds (with the GPU behind it), or a line saying none."""
    try:
        from egpu_array.backend.usb.staging import UsbGpuLink
        from egpu_array.backend.usb.transport import find_bridges
        bridges = find_bridges(backend=backend)
    except Exception as exc:  # pyusb or libusb trouble: report it, don't fail the listing
        return [f"usb bridges: cannot search ({type(exc).__name__}: {exc})"]
    if not bridges:
        return ["usb bridges: none found (ASM24xx with the custom firmware; needs libusb)"]
    lines = [f"usb bridges ({len(bridges)}):"]
    for i, dev in enumerate(bridges):
        where = f"bus {getattr(dev, 'bus', '?')} address {getattr(dev, 'address', '?')}"
        try:
            link = UsbGpuLink.open(backend=backend, index=i)
            try:
                g = link.gpu
                lines.append(f"  usb:{i} {where}: GPU {g.vendor:04x}:{g.device:04x} (class {g.class_code:06x}), "
                             f"VRAM window {link.vram_size >> 20} MiB; cannot compute yet (no GPU driver)")
                lines += [f"    {line}" for line in pcie_link_lines(link)]
            finally:
                link.close()
        except Exception as exc:
            lines.append(f"  usb:{i} {where}: bridge found, GPU not reachable ({type(exc).__name__}: {exc})")
    return lines


def run(args) -> int:
    import llvmlite
    import numpy as np

    import egpu_array as xp
    from egpu_array._info import config

    cfg = config()
    info = xp.__array_namespace_info__()
    print(f"egpu_array {xp.__version__} (Array API {xp.__array_api_version__})")
    print(f"python {platform.python_version()}, numpy {np.__version__}, llvmlite {llvmlite.__version__}, "
          f"{platform.machine()} {platform.system()}")
    print(f"kernel cache: {_cache_summary(cfg.cache_dir)}")
    print(f"cpu threads: {cfg.num_threads} (workers spin {cfg.spin_seconds * 1e6:.0f} us)   "
          f"graph limit: {cfg.graph_limit} pending ops")
    status = 0
    try:
        default = info.default_device()
    except Exception as exc:  # e.g. EGPU_ARRAY_DEVICE names a device that is absent
        print(f"default device: ERROR {type(exc).__name__}: {exc}")
        default = None
        status = 1
    else:
        print(f"default device: {default}")
    try:
        devices = info.devices()
    except Exception as exc:
        print(f"devices: ERROR listing devices: {type(exc).__name__}: {exc}")
        return 1
    print(f"devices ({len(devices)}):")
    for dev in devices:
        mark = "  (default)" if default is not None and dev == default else ""
        print(f"  {dev}{mark}")
        target = getattr(dev, "target", None)
        if target is not None:
            desc = getattr(target, "triple", None) or type(target).__name__
            cpu = getattr(target, "cpu", None) or getattr(target, "cpu_name", None)
            print(f"    target: {desc}{f' ({cpu})' if cpu else ''}")
        if getattr(dev, "num_threads", None):
            print(f"    threads: {dev.num_threads}")
        if getattr(dev, "kind", None) == "sim":
            for line in sim_lines(dev):
                print(f"    {line}")
        try:
            caps = info.capabilities(device=dev)
        except Exception as exc:
            print(f"    capabilities: ERROR {type(exc).__name__}: {exc}")
            status = 1
            continue
        for key, value in caps.items():
            print(f"    {key}: {value}")
        if args.dtypes:
            try:
                names = ", ".join(info.dtypes(device=dev))
            except Exception as exc:
                names = f"ERROR {type(exc).__name__}: {exc}"
                status = 1
            print(f"    dtypes: {names}")
    for line in usb_bridge_lines():
        print(line)
    sys.stdout.flush()
    return status
