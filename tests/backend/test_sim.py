"""The ``sim`` device end to end: arrays in emulated VRAM, copies over the emulated USB link,
kernels through the emulated GPU's compute queue, and every injected fault kind."""
import numpy as np
import pytest

import egpu_array as xp
from egpu_array._errors import (DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelLaunchError, LinkError,
                                LinkStallError, LinkTimeoutError, TransferError)
from egpu_array.backend.device import get_device
from egpu_array.backend.usb.asm24 import PcieCompletionError
from egpu_array.backend.usb.emu_link import PRESETS
from egpu_array.backend.usb.sim import SimDevice, sim_settings

RNG = np.random.default_rng(8)
BIG = 700 * 1024 // 8  # float64 elements: a copy of three staging chunks


@pytest.fixture
def sim():
    """The shared ``sim`` device, left without armed faults and with a working link."""
    dev = get_device("sim")
    yield dev
    dev.bridge.faults.clear()
    try:
        dev.synchronize()
    except DeviceError:
        dev.replug()


def data(dtype, shape):
    if dtype == "bool":
        return RNG.integers(0, 2, shape).astype(bool)
    if dtype.startswith("complex"):
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    if dtype.startswith("float"):
        return RNG.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)


def cpu_works():
    a = np.arange(10.0)
    assert np.array_equal(np.asarray(xp.asarray(a) * 2 + 1), a * 2 + 1)


# -- the device ---------------------------------------------------------------------------------
def test_registered_and_named(sim):
    assert get_device("sim") is sim and get_device("sim:0") is sim
    assert sim == "sim" and sim == "sim:0" and sim != "cpu" and not sim.host_memory
    assert "sim" in [d.name for d in xp.__array_namespace_info__().devices()]
    assert xp.__array_namespace_info__().capabilities(device="sim") == \
        xp.__array_namespace_info__().capabilities(device="cpu")


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("EGPU_ARRAY_SIM_VRAM_MB", "64")
    monkeypatch.setenv("EGPU_ARRAY_SIM_LINK", "usb3")
    assert sim_settings() == (64 << 20, PRESETS["USB3_GEN2"])
    monkeypatch.delenv("EGPU_ARRAY_SIM_VRAM_MB")
    monkeypatch.delenv("EGPU_ARRAY_SIM_LINK")
    assert sim_settings() == (512 << 20, PRESETS["USB4"])
    monkeypatch.setenv("EGPU_ARRAY_SIM_VRAM_MB", "100")
    with pytest.raises(ValueError, match="EGPU_ARRAY_SIM_VRAM_MB"):
        sim_settings()
    monkeypatch.setenv("EGPU_ARRAY_SIM_VRAM_MB", "64")
    monkeypatch.setenv("EGPU_ARRAY_SIM_LINK", "usb9")
    with pytest.raises(ValueError, match="EGPU_ARRAY_SIM_LINK"):
        sim_settings()


def test_arrays_live_in_vram(sim):
    a = data("float64", 1000)
    x = xp.asarray(a, device="sim")
    buf = x._node.arg.buffer
    vram = sim.bridge.vram
    assert buf.ptr == vram.ctypes.data + buf.handle
    assert np.array_equal(vram[buf.handle:buf.handle + a.nbytes].view(np.float64), a)


# -- arithmetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int32", "int64", "float32", "float64",
                                   "complex64", "complex128"])
def test_arithmetic_matches_numpy_and_cpu(sim, dtype):
    a, b = data(dtype, (6, 7)), data(dtype, (7,))  # broadcasting
    x, y = xp.asarray(a, device="sim"), xp.asarray(b, device="sim")
    if dtype == "bool":
        z, ref = (x ^ y) | ~x, (a ^ b) | ~a
    elif dtype.startswith(("int", "uint")):
        z, ref = x * y + x - 3, a * b + a - np.array(3, dtype)
    else:
        z, ref = x * y + x / 2, a * b + a / np.array(2, dtype)
    assert z.device == "sim" and z.dtype == x.dtype
    got = np.asarray(z)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    cpu = np.asarray(xp.asarray(a) * xp.asarray(b) + 0) if dtype != "bool" else None
    if cpu is not None:
        np.testing.assert_allclose(np.asarray(x * y + 0), cpu)


def test_strided_views_and_math(sim):
    a = data("float32", (8, 10))
    x = xp.asarray(a, device="sim")
    v, ref = x[::2, ::-3].T, a[::2, ::-3].T
    assert v.device == "sim"
    np.testing.assert_array_equal(np.asarray(v), ref)
    np.testing.assert_allclose(np.asarray(xp.exp(v) - xp.sin(v) * v), np.exp(ref) - np.sin(ref) * ref,
                               rtol=1e-5, atol=1e-6)
    c = data("complex128", (5, 4))
    z = xp.asarray(c, device="sim")
    np.testing.assert_allclose(np.asarray(xp.conj(z[:, ::-1]) * z[::-1, :]),
                               np.conj(c[:, ::-1]) * c[::-1, :])
    assert np.asarray(xp.asarray(c, device="sim") == z).all()


def test_results_stay_on_sim_until_asked(sim):
    a = data("float64", 5000)
    with xp.profile() as p:
        x = xp.asarray(a, device="sim")
        y = xp.sqrt(xp.abs(x)) * 3 + x
        z = y - 1
        xp.synchronize(z)  # computed on the device; nothing comes back
        assert y.device == z.device == "sim"
    assert p.bytes_to_device == a.nbytes and p.bytes_from_device == 0 and p.launches == 1


def test_profiler_counts_exactly_the_link_bytes(sim):
    a = data("float64", 3000)
    s0 = (sim.link_stats.h2d_bytes, sim.link_stats.d2h_bytes)
    with xp.profile() as p:
        x = xp.asarray(a, device="sim")
        b = np.asarray(x + 1)
        c = np.asarray(x.to_device("cpu"))
        d = np.asarray(x[10:2010:2])  # a strided view copies its extent
    assert np.array_equal(b, a + 1) and np.array_equal(c, a) and np.array_equal(d, a[10:2010:2])
    assert p.bytes_to_device == a.nbytes
    assert p.bytes_from_device == 2 * a.nbytes + 1999 * 8
    assert (sim.link_stats.h2d_bytes - s0[0], sim.link_stats.d2h_bytes - s0[1]) == \
        (p.bytes_to_device, p.bytes_from_device)


@pytest.mark.parametrize("key", [(slice(None), 0), (slice(None, None, 50), slice(None, None, 25)),
                                 (slice(None, None, -7), 3)])
def test_sparse_view_downloads_only_its_elements(sim, key):
    """A view whose elements lie far apart (a column, stepped rows and columns) is packed on the
    device before it crosses the link: its bytes move, not the span it strides over (a column of
    a 1000 x 1000 matrix moved 7,992,008 bytes for 8,000)."""
    a = data("float64", (1000, 1000))
    x = xp.asarray(a, device="sim")
    want = a[key]
    for read, copies in ((np.asarray, 1), (lambda v: np.asarray(v.to_device("cpu")), 1),
                         (np.from_dlpack, 1), (lambda v: np.asarray(v.to_device("sim:1")), 2)):
        with xp.profile() as p:
            got = read(x[key])
        assert np.array_equal(got, want) and p.bytes_from_device == copies * want.nbytes


def test_to_device_both_ways(sim):
    a = data("int16", (3, 4))
    x = xp.asarray(a)
    s = x.to_device("sim")
    assert s.device == "sim" and x.device == "cpu"
    back = s.to_device("cpu")
    assert back.device == "cpu" and np.array_equal(np.asarray(back), a)
    assert s.to_device(sim) is s
    with pytest.raises(ValueError):
        np.asarray(s, copy=False) if np.lib.NumpyVersion(np.__version__) >= "2.0.0" \
            else s.__array__(copy=False)


def test_mixing_devices_raises(sim):
    x, y = xp.asarray([1.0, 2.0], device="sim"), xp.asarray([1.0, 2.0])
    with pytest.raises(ValueError, match="different devices"):
        x + y
    with pytest.raises(ValueError):
        y * x
    with pytest.raises(ValueError):
        xp.where(xp.asarray([True, False]), x, x)


def test_launches_go_through_the_compute_queue_and_clock(sim):
    x = xp.asarray(data("float64", 1 << 16), device="sim")
    st0 = sim.stats()
    np.asarray(x * 2)
    st1 = sim.stats()
    assert st1["launches"] == st0["launches"] + 1
    assert st1["compute_seconds"] > st0["compute_seconds"]
    assert st1["virtual_seconds"] > st0["virtual_seconds"]


def test_out_of_vram():
    dev = SimDevice(index=9, vram_bytes=1 << 20)
    keep = [xp.asarray(np.zeros(32 * 1024), device=dev) for _ in range(3)]  # 3 x 256 KiB
    with pytest.raises(DeviceOutOfMemoryError, match="sim:9"):
        xp.asarray(np.zeros(64 * 1024), device=dev)  # 512 KiB
    del keep[:]
    x = xp.asarray(np.ones(64 * 1024), device=dev)  # the pool's cache is emptied and retried
    assert float(np.asarray(x).sum()) == 64 * 1024


def test_cached_fft_tables_are_let_go_when_vram_runs_out():
    """The FFT tables a device keeps (up to 64 of them) go when an allocation there fails, before
    the retry: on 8 MiB of VRAM, FFTs of many lengths ran out of memory with no array of the
    user's alive."""
    from egpu_array import _fft_plan
    dev = SimDevice(index=10, vram_bytes=8 << 20)
    for n in (2**16, 3 * 2**14, 5 * 2**13, 9 * 2**13, 15 * 2**12, 25 * 2**11, 27 * 2**11, 45 * 2**10,
              75 * 2**10):
        h = np.exp(1j * np.arange(n) * 0.01)
        np.testing.assert_allclose(np.asarray(xp.fft.fft(xp.asarray(h, device=dev))), np.fft.fft(h),
                                   atol=1e-9 * n)
    assert any(k[0] == dev for k in _fft_plan._tables)  # (it still caches what fits)


# -- faults -------------------------------------------------------------------------------------
def _check_recovered(sim):
    cpu_works()
    a = data("float64", BIG)
    x = xp.asarray(a, device="sim")
    assert np.array_equal(np.asarray(x * 2), a * 2)


# (kind, op, nth, count, expected error, needs a replug)
COPY_IN_FAULTS = [
    ("timeout", "bulk_out", 2, 1, LinkTimeoutError, False),
    ("stall", "bulk_out", 2, 2, LinkStallError, False),
    ("link_down", "bulk_out", 2, 1, LinkError, True),
    ("unplug", "bulk_out", 2, 1, DeviceLostError, True),
]


@pytest.mark.parametrize("kind, op, nth, count, exc, replug", COPY_IN_FAULTS)
def test_copy_in_fault(sim, kind, op, nth, count, exc, replug):
    a = data("float64", BIG)
    saved = a.copy()
    sim.bridge.faults.arm(kind, op, nth=nth, count=count)
    with pytest.raises(exc) as info:
        xp.asarray(a, device="sim")
    assert info.type is exc and (kind, op) in sim.bridge.faults.fired
    assert np.array_equal(a, saved)  # the host source is untouched
    cpu_works()
    if replug:
        sim.bridge.replug()
        sim.reset()
    _check_recovered(sim)


# (kind, op, nth, expected error, needs a replug)
COPY_OUT_FAULTS = [
    ("timeout", "bulk_in", 2, LinkTimeoutError, False),
    ("stall", "bulk_in", 2, LinkStallError, False),
    ("short_read", "bulk_in", 2, TransferError, False),
    ("link_down", "ctrl_out", 3, LinkTimeoutError, True),  # the armed bulk IN never comes
    ("unplug", "bulk_in", 2, DeviceLostError, True),
]


@pytest.mark.parametrize("kind, op, nth, exc, replug", COPY_OUT_FAULTS)
def test_copy_out_fault(sim, kind, op, nth, exc, replug):
    a = data("float64", BIG)
    x = xp.asarray(a, device="sim")
    count = 2 if kind == "stall" else 1
    sim.bridge.faults.arm(kind, op, nth=nth, count=count)
    got = None
    with pytest.raises(exc) as info:
        got = np.asarray(x)
    assert got is None and info.type is exc and (kind, op) in sim.bridge.faults.fired
    host = np.full(a.shape, -1.0)
    if not replug:  # the same array reads back whole once the fault is gone
        assert np.array_equal(np.asarray(x), a)
        sim.bridge.faults.arm(kind, op, nth=nth, count=count)
        with pytest.raises(exc):  # a failed copy out writes nothing
            sim.copy_out(x._node.arg.buffer, 0, host.view(np.uint8))
        assert (host == -1.0).all()
    cpu_works()
    if replug:
        sim.replug()
        with pytest.raises(TransferError, match="invalid"):  # a reset lost the device's memory
            np.asarray(x)
    _check_recovered(sim)


def test_failed_copy_in_marks_the_buffer_invalid(sim):
    a = data("float64", BIG)
    x = xp.asarray(a, device="sim")
    y = x + 1  # a pending reader of x's buffer
    buf = x._node.arg.buffer
    new = data("float64", BIG)
    saved = new.copy()
    sim.bridge.faults.arm("timeout", "bulk_out", nth=2)
    with pytest.raises(LinkTimeoutError):
        sim.copy_in(buf, 0, new.view(np.uint8))
    assert not buf.valid and np.array_equal(new, saved)
    for bad in (lambda: np.asarray(x), lambda: x.to_device("cpu"), lambda: float(x[0])):
        with pytest.raises(TransferError, match="invalid"):
            bad()
    _check_recovered(sim)


def test_expression_reading_an_invalid_buffer_raises(sim):
    x = xp.asarray(data("float64", 100), device="sim")
    y = x + 1
    x._node.arg.buffer.valid = False  # what a failed copy into it does
    for bad in (lambda: np.asarray(y), lambda: np.asarray(x * 2)):
        with pytest.raises(TransferError, match="invalid"):
            bad()


INVALID_INPUT_READERS = {
    "sort": lambda x, y: xp.sort(x), "argsort": lambda x, y: xp.argsort(x),
    "cumulative_sum": lambda x, y: xp.cumulative_sum(x), "concat": lambda x, y: xp.concat([y, x]),
    "stack": lambda x, y: xp.stack([x, y]), "mask": lambda x, y: x[x > 0], "nonzero": lambda x, y: xp.nonzero(x),
    "unique_values": lambda x, y: xp.unique_values(x), "isin": lambda x, y: xp.isin(y, x),
    "fft": lambda x, y: xp.fft.fft(x), "take_along_axis": lambda x, y: xp.take_along_axis(y, xp.argsort(x), axis=0),
    "matmul": lambda x, y: x @ y, "searchsorted": lambda x, y: xp.searchsorted(x, y),
}


@pytest.mark.parametrize("func", sorted(INVALID_INPUT_READERS))
def test_every_path_refuses_an_invalid_input(sim, func):
    """Functions that hand a buffer to their kernels directly (sorts, scans, copies, compaction,
    fft...) refuse memory a reset or failed copy left invalid, as expressions do (they computed
    from it: zeros after a reset that cleared the memory, the old values otherwise)."""
    y = xp.asarray(data("float64", 64), device="sim")
    x = xp.asarray(data("float64", 64), device="sim")
    x._node.arg.buffer.valid = False  # what a reset of the device or a failed copy into it does
    with pytest.raises(TransferError, match="invalid"):
        r = INVALID_INPUT_READERS[func](x, y)
        for a in r if isinstance(r, tuple) else (r,):
            np.asarray(a)


@pytest.mark.parametrize("kind", ["ur", "ca"])
def test_pcie_completion_error_on_launch(sim, kind):
    a = data("float32", 1000)
    x = xp.asarray(a, device="sim")
    y = x * 3
    launches = sim.stats()["launches"]
    sim.bridge.faults.arm(kind, "tlp", count=2)  # the doorbell (posted) and the fence read
    with pytest.raises(PcieCompletionError) as info:
        np.asarray(y)
    assert isinstance(info.value, TransferError)
    assert sim.stats()["launches"] == launches + 1  # the kernel ran; its completion was lost
    cpu_works()
    np.testing.assert_array_equal(np.asarray(y), a * 3)  # y was never realized: recomputed now
    _check_recovered(sim)


def test_lost_doorbell_runs_with_the_next_one(sim):
    """A doorbell lost on the way (ret_error on the posted write) leaves its kernel in the ring;
    the wait for it rings again and the kernel runs, so the fence never passes a kernel that did
    not run. Before, the next kernel's fence covered the lost one: y then read memory never
    written (a pool block's old values) and a lost x[1:3] = 7 was gone without an error; and
    later, a wait never rang again, so reads, uploads into the same memory and synchronize()
    failed until some unrelated kernel was launched."""
    a = data("float64", 64)
    stale = [xp.asarray(np.full(64, -999.0), device="sim") for _ in range(3)]
    del stale  # the pool now holds blocks of -999
    x = xp.asarray(a, device="sim")
    y = x * 3
    sim.bridge.faults.arm("ret_error", "tlp")  # y's doorbell
    np.testing.assert_array_equal(np.asarray(y), a * 3)
    assert ("ret_error", "tlp") in sim.bridge.faults.fired
    sim.bridge.faults.arm("ret_error", "tlp")  # the doorbell of the write into x
    x[1:3] = 7.0
    expected = a.copy()
    expected[1:3] = 7.0
    np.testing.assert_array_equal(np.asarray(x), expected)
    z = x - 1
    sim.bridge.faults.arm("ret_error", "tlp")  # z's doorbell ...
    sim.bridge.faults.arm("ret_error", "tlp", nth=3)  # ... and the wait's ring (after a fence read)
    with pytest.raises(KernelLaunchError):
        np.asarray(z)
    sim.bridge.faults.clear()
    sim.synchronize()  # rings again: z's kernel runs
    np.testing.assert_array_equal(np.asarray(z), expected - 1)
    _check_recovered(sim)


def test_readers_stay_pending_when_the_flush_before_a_write_fails(sim):
    """An in-place write first computes the pending readers of the memory; when one of those
    launches fails, the write raises and every reader not computed stays a reader, so the retried
    write computes it first (they were forgotten: y1, y2 then showed the written values)."""
    a = data("float64", 8)
    x = xp.asarray(a, device="sim")
    y1, y2 = x + 1, x * 2
    sim.bridge.faults.arm("timeout", "ctrl_out")  # y1's doorbell
    with pytest.raises(LinkTimeoutError):
        x += 100
    sim.bridge.faults.clear()
    np.testing.assert_array_equal(np.asarray(x), a)
    x += 100
    np.testing.assert_array_equal(np.asarray(x), a + 100)
    np.testing.assert_array_equal(np.asarray(y1), a + 1)
    np.testing.assert_array_equal(np.asarray(y2), a * 2)


def test_unplug_mid_launch_and_replug(sim):
    x = xp.asarray(data("float64", 100), device="sim")
    sim.unplug()
    for op in (lambda: np.asarray(x + 1), lambda: np.asarray(x),
               lambda: xp.asarray([1.0], device="sim"), sim.synchronize):
        with pytest.raises(DeviceLostError):
            op()
    cpu_works()
    sim.replug()
    with pytest.raises(TransferError, match="invalid"):
        np.asarray(x)
    _check_recovered(sim)


def test_timeout_on_launch_recovers(sim):
    a = data("float64", 100)
    x = xp.asarray(a, device="sim")
    sim.bridge.faults.arm("timeout", "ctrl_in", request=0xF0)  # the fence completion
    with pytest.raises(LinkTimeoutError):
        np.asarray(x + 1)
    np.testing.assert_array_equal(np.asarray(x + 1), a + 1)


# -- figures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_modeled_round_trip_bandwidth(preset):
    model = PRESETS[preset]
    dev = SimDevice(index=10 + sorted(PRESETS).index(preset), vram_bytes=32 << 20, link_model=model)
    a = data("float64", 1 << 20)  # 8 MiB
    x = xp.asarray(a, device=dev)
    assert np.array_equal(np.asarray(x), a)
    s = dev.stats()
    assert s["h2d_bytes"] == s["d2h_bytes"] == a.nbytes
    for d in ("h2d", "d2h"):
        assert 0.8 * model.bulk_bytes_per_s <= s[f"{d}_bytes_per_s"] <= model.bulk_bytes_per_s


def test_copy_in_after_two_copy_outs():
    """Regression: copy-outs take sequence numbers that never reach the copy-in fence; a copy-in
    after two of them waited for a fence value that could not come (staging.UsbGpuLink)."""
    from egpu_array.backend.usb.emulator import open_emulated
    _, gpu = open_emulated(vram_bytes=4 << 20, fence_timeout_s=0.05)
    d = RNG.integers(0, 256, 900 * 1024, dtype=np.uint8).tobytes()
    gpu.copy_in(0, d)
    gpu.copy_out(0, 100)
    gpu.copy_out(0, 600 * 1024)
    gpu.copy_in(0, d[::-1])
    assert gpu.copy_out(0, len(d)) == d[::-1]


def test_dlpack_from_sim_is_an_explicit_profiled_copy(sim):
    a = data("float32", 64)
    x = xp.asarray(a, device="sim")
    assert x.__dlpack_device__() == (1, 0)
    with xp.profile() as prof:
        back = np.from_dlpack(x)
    np.testing.assert_array_equal(back, a)
    assert prof.bytes_from_device == a.nbytes
    with pytest.raises(BufferError):
        x.__dlpack__(copy=False)
    y = xp.from_dlpack(x)  # one of ours: stays on its device, no capsule
    assert y.device == "sim"
