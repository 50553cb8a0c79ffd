"""Kernels overlapping copies on ``sim``, in virtual time (backend/usb/compute.py).

A launch returns after its doorbell; the kernel completes at its modeled virtual time. Copies
that do not touch its buffers run meanwhile; a copy out of its result waits for its fence.
"""
import json

import numpy as np
import pytest

import egpu_array as xp
from egpu_array.backend.usb.compute import ComputeModel, overlap
from egpu_array.backend.usb.emu_link import PRESETS
from egpu_array.backend.usb.memmap import cq_offset
from egpu_array.backend.usb.sim import SimDevice

RNG = np.random.default_rng(80)
N = 512  # a 512^3 float32 matmul: 2.7e8 flops -> ~27 us modeled, ~3 MB -> ~17 us of VRAM traffic


@pytest.fixture(scope="module")
def dev():
    """A private sim device on the USB4 preset (its own clock and timeline)."""
    return SimDevice(index=11, vram_bytes=64 << 20, link_model=PRESETS["USB4"])


def _kernel(dev, name_part):
    """The last kernel interval (name, start, end) whose name contains ``name_part``."""
    found = [k for k in dev.timeline()["compute"] if name_part in k[0]]
    assert found, [k[0] for k in dev.timeline()["compute"]]
    return found[-1]


def _matmul(dev):
    a = RNG.standard_normal((N, N)).astype(np.float32)
    b = RNG.standard_normal((N, N)).astype(np.float32)
    x, y = xp.asarray(a, device=dev), xp.asarray(b, device=dev)
    z = x @ y
    z._realize()  # launch now; nothing is read back
    return a @ b, z, _kernel(dev, "gemm")


def test_compute_model_is_the_documented_formula():
    m = ComputeModel(launch_s=1e-6, vram_bytes_per_s=1e9, flops_per_s=1e12, flops_per_work=2.0)
    assert m.seconds(1000, 10) == pytest.approx(1e-6 + 1e-6)  # memory-bound
    assert m.seconds(1000, 10 ** 6) == pytest.approx(1e-6 + 2e-6)  # compute-bound


def test_compute_bound_kernel_overlaps_an_unrelated_copy(dev):
    other = RNG.standard_normal(1 << 17)
    buf = dev.allocator.alloc(other.nbytes)  # before the matmul: not its freed workspace
    expected, z, (name, start, end) = _matmul(dev)
    model = dev.compute_model
    assert end - start == pytest.approx(model.seconds(0, N ** 3))  # compute-bound in the model
    assert end - start > model.seconds(3 * N * N * 4, 0)
    # the host goes on at once: an unrelated 1 MB copy-in runs while the kernel runs
    dev.copy_in(buf, 0, other)
    direction, c0, c1, nbytes = dev.timeline()["copies"][-1]
    assert (direction, nbytes) == ("to_device", other.nbytes)
    assert c0 < end  # started before the kernel finished
    covered = dev.copy_overlap(start, end) / (end - start)
    assert covered >= 0.8, covered
    # reading the result waits for the kernel's fence, and is exact
    got = np.asarray(z)
    direction, r0, r1, _ = dev.timeline()["copies"][-1]
    assert direction == "from_device" and r0 >= end
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-3)
    back = np.empty_like(other)
    dev.copy_out(buf, 0, back)
    np.testing.assert_array_equal(back, other)


def test_kernel_starts_after_the_copy_that_fills_its_input(dev):
    a = RNG.standard_normal(1 << 16)
    x = xp.asarray(a, device=dev)
    _, c0, c1, _ = dev.timeline()["copies"][-1]
    y = x * 3
    y._realize()
    _, start, end = dev.timeline()["compute"][-1]
    assert start >= c1
    np.testing.assert_array_equal(np.asarray(y), a * 3)


def test_unrelated_copy_out_does_not_wait_but_dependent_does(dev):
    a = RNG.standard_normal(1 << 15)
    x = xp.asarray(a, device=dev)
    _, z, (_, start, end) = _matmul(dev)
    assert end > dev.clock.now()
    np.testing.assert_array_equal(np.asarray(x), a)  # x is not touched by the kernel
    _, r0, r1, _ = dev.timeline()["copies"][-1]
    assert r0 < end
    np.asarray(z)
    _, r0, _, _ = dev.timeline()["copies"][-1]
    assert r0 >= end


def test_copy_into_a_buffer_a_kernel_still_reads_waits(dev):
    a = RNG.standard_normal((N, N)).astype(np.float32)
    x = xp.asarray(a, device=dev)
    z = x @ x
    z._realize()
    _, start, end = _kernel(dev, "gemm")
    buf = x._realize().buffer
    dev.copy_in(buf, 0, np.zeros(16, dtype=np.float32))  # would overwrite the kernel's input
    _, c0, _, _ = dev.timeline()["copies"][-1]
    assert c0 >= end
    np.testing.assert_allclose(np.asarray(z), a @ a, rtol=2e-4, atol=2e-3)


def test_fence_register_shows_completion_in_virtual_time(dev):
    _, z, (_, start, end) = _matmul(dev)
    st = dev._open()
    seq = st.queue.seq
    fence = dev.link.read32(0, cq_offset("fence"))
    assert dev.clock.now() < end and fence == (seq - 1) & 0xFFFFFFFF
    dev.synchronize()
    assert dev.clock.now() >= end
    assert dev.link.read32(0, cq_offset("fence")) == seq


def test_profiler_trace_has_virtual_time_tracks(dev, tmp_path):
    with xp.profile() as prof:
        _, z, _ = _matmul(dev)
        np.asarray(z)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in trace if e["name"] == "process_name"}
    pid = next(p for p, name in procs.items() if name == "sim (virtual time)")
    threads = {e["args"]["name"] for e in trace if e["name"] == "thread_name" and e["pid"] == pid}
    assert {"compute", "copy to_device", "copy from_device"} <= threads
    kernel = next(e for e in trace if e.get("ph") == "X" and e["pid"] == pid and e["cat"] == "compute"
                  and "gemm" in e["name"])
    read = [e for e in trace if e.get("ph") == "X" and e["pid"] == pid and e["cat"] == "copy"
            and e["name"] == "copy from_device"][-1]
    assert read["ts"] >= kernel["ts"] + kernel["dur"] - 1e-6


def test_overlap_helper():
    assert overlap([(0, 1), (0.5, 2), (3, 4)], 0.5, 3.5) == pytest.approx(2.0)
    assert overlap([], 0, 1) == 0.0


def test_lost_doorbell_is_an_error_not_stale_data():
    from egpu_array._errors import KernelLaunchError
    dev = SimDevice(index=13, vram_bytes=4 << 20, link_model=PRESETS["USB4"])
    a = RNG.standard_normal(1000)
    x = xp.asarray(a, device=dev)
    st = dev._open()
    st.gpu.on_launch = None  # the GPU no longer hears the doorbell
    st.queue.timeout_s = 0.002
    y = x + 1
    y._realize()  # queued: the host does not wait
    with pytest.raises(KernelLaunchError, match="did not complete"):
        np.asarray(y)  # the copy out waits for the fence, which never comes
    dev.replug()  # reconnect: a fresh compute engine
    np.testing.assert_array_equal(np.asarray(xp.asarray(a, device=dev) + 1), a + 1)
