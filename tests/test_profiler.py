"""The profiler's report (``print(prof)``) and its Chrome trace (queues on separate tracks)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import egpu_array as xp
from egpu_array import profiler


def _rows(text: str, first_word: str) -> list:
    return [line.split() for line in text.splitlines() if line.split()[:1] == [first_word]]


def test_report_table_from_recorded_work():
    with xp.profile() as prof:
        profiler.record_launch("k_add", 1.0, 1.002, 8_000_000)      # 2 ms, 8 MB
        profiler.record_launch("k_add", 2.0, 2.004, 8_000_000)      # 4 ms, 8 MB
        profiler.record_launch("k_sum", 3.0, 3.001, 1_000_000)      # 1 ms, 1 MB
        profiler.record_transfer("to_device", 4_000_000, 5.0, 5.001)    # 4 MB in 1 ms: 4 GB/s
        profiler.record_transfer("from_device", 2_000_000, 6.0, 6.002)  # 2 MB in 2 ms: 1 GB/s
        profiler.note("something had to be read back")
    text = str(prof)
    assert text == prof.report()
    assert text.splitlines()[0].startswith("3 launches of 2 kernels")
    header = next(line for line in text.splitlines() if line.startswith("kernel"))
    assert header.split() == ["kernel", "launches", "total", "ms", "mean", "us", "MB", "GB/s"]
    (add,) = _rows(text, "k_add")
    assert add[1] == "2" and add[2] == "6.000" and add[3] == "3000.0" and add[4] == "16.00"
    assert add[5] == f"{16e6 / 6e-3 / 1e9:.2f}"
    (total,) = _rows(text, "k_sum")
    assert total[1:] == ["1", "1.000", "1000.0", "1.00", "1.00"]
    # slowest kernel first
    assert text.index("k_add") < text.index("k_sum")
    (h2d,) = _rows(text, "to_device")
    assert h2d[1:] == ["1", "1.000", "1000.0", "4.00", "4.00"]
    (d2h,) = _rows(text, "from_device")
    assert d2h[1:] == ["1", "2.000", "2000.0", "2.00", "1.00"]
    assert "something had to be read back" in text
    assert prof.bytes_to_device == 4_000_000 and prof.bytes_from_device == 2_000_000


def test_report_with_nothing_recorded():
    with xp.profile() as prof:
        pass
    text = str(prof)
    assert "(no kernel launches)" in text
    (h2d,) = _rows(text, "to_device")
    assert h2d[1] == "0" and h2d[-1] == "-"


def test_report_of_real_work_on_sim():
    h = np.arange(100_000, dtype=np.float32)
    with xp.profile() as prof:
        a = xp.asarray(h, device="sim")
        b = np.asarray(xp.exp(a * 1e-5) + a)
    np.testing.assert_allclose(b, np.exp(h * np.float32(1e-5)) + h, rtol=1e-6)
    text = str(prof)
    kernels = [line for line in text.splitlines()[3:] if line.startswith("k_")]
    assert len(kernels) == 1 and kernels[0].split()[1] == "1"   # one fused kernel, launched once
    (h2d,) = _rows(text, "to_device")
    (d2h,) = _rows(text, "from_device")
    assert h2d[1] == "1" and h2d[4] == f"{h.nbytes / 1e6:.2f}"
    assert d2h[1] == "1" and d2h[4] == f"{h.nbytes / 1e6:.2f}"
    assert float(h2d[5]) > 0 and float(d2h[5]) > 0


def test_trace_puts_compute_and_each_copy_direction_on_its_own_track(tmp_path):
    h = np.linspace(0, 1, 50_000)
    with xp.profile() as prof:
        a = xp.asarray(h, device="sim")
        np.asarray(xp.sin(a) * 2.0 + 1.0)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    assert trace == json.loads(json.dumps(prof.trace()))
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    processes = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    by_track = {}
    for e in events:
        assert e["dur"] >= 0
        by_track.setdefault((processes[e["pid"]], names[(e["pid"], e["tid"])]), []).append(e)
    # the host's wall-clock process and the sim device's virtual-time process, each with a track
    # per queue
    assert set(processes.values()) == {"egpu_array", "sim (virtual time)"}
    for process in processes.values():
        tracks = {track: evs for (proc, track), evs in by_track.items() if proc == process}
        assert {"compute", "copy to_device", "copy from_device"} <= set(tracks), process
        tids = {track: {e["tid"] for e in evs} for track, evs in tracks.items()}
        assert len({frozenset(t) for t in tids.values()}) == len(tids)   # one tid per queue
        assert [e["args"]["bytes"] for e in tracks["copy to_device"]] == [h.nbytes]
        assert [e["args"]["bytes"] for e in tracks["copy from_device"]] == [h.nbytes]
        assert all(e["cat"] == "copy" for e in tracks["copy from_device"])
        assert all(e["cat"] == "compute" for e in tracks["compute"])
        assert len(tracks["compute"]) == 1   # one fused kernel


def test_trace_gives_each_named_device_its_own_process():
    with xp.profile() as prof:
        profiler.record_launch("k", 0.0, 0.0, 8, device="cuda:0")
        profiler.record_transfer("to_device", 8, 0.0, 0.0, device="cuda:0")
        profiler.record_launch("k", 0.0, 0.0, 8)
        with profiler.span("compile", "k"):
            pass
    meta = [e for e in prof.trace()["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"]
    pids = {e["args"]["name"]: e["pid"] for e in meta}
    assert set(pids) == {"egpu_array", "cuda:0"} and pids["egpu_array"] != pids["cuda:0"]
    events = [e for e in prof.trace()["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in events if e["name"] == "copy to_device"} == {pids["cuda:0"]}
    assert {e["tid"] for e in events if e["cat"] == "compile"} == {profiler.QUEUES["compile"]}


def test_nested_profiles_both_record_and_nothing_is_recorded_outside():
    with xp.profile() as outer:
        with xp.profile() as inner:
            profiler.record_launch("k", 0.0, 1e-3, 10)
        profiler.record_launch("k", 0.0, 1e-3, 10)
    profiler.record_launch("k", 0.0, 1e-3, 10)   # no profile active: ignored
    assert inner.launches == 1 and outer.launches == 2
    assert outer.kernels["k"] == [2, pytest.approx(2e-3), 20]


def test_transfer_log_tells_the_library_s_own_copies_from_the_caller_s():
    h = np.arange(1000, dtype=np.float32)
    with xp.profile() as prof:
        d = xp.asarray(h, device="sim")          # asked for
        np.asarray(xp.sqrt(d))                   # asked for
        xp.nonzero(d > 500.0)                    # the library reads the output size
    log = prof.transfer_log
    assert [(t["direction"], t["bytes"], t["internal"]) for t in log[:2]] == [
        ("to_device", h.nbytes, None), ("from_device", h.nbytes, None)]
    assert prof.internal_transfers and all(t["internal"] == "nonzero" for t in prof.internal_transfers)
    assert sum(t["bytes"] for t in log) == prof.bytes_to_device + prof.bytes_from_device
    assert any(n.startswith("nonzero") for n in prof.notes)
    copies = [e for e in prof.trace()["traceEvents"] if e["ph"] == "X" and e["cat"] == "copy"]
    assert any(e["args"].get("internal") == "nonzero" for e in copies)


def test_record_transfer_keeps_its_positional_form():
    with xp.profile() as prof:
        profiler.record_transfer("from_device", 8, 0.0, 1e-6, "unique_values")
        profiler.record_transfer("to_device", 16, 0.0, 1e-6)
    assert [t["internal"] for t in prof.transfer_log] == ["unique_values", None]
    assert [t["internal"] for t in prof.internal_transfers] == ["unique_values"]


def test_transfers_name_their_device_and_failed_copies_leave_a_note():
    """Each logged copy names the device at the other end (two sims were indistinguishable), and
    a copy that fails leaves a note (it left no trace at all)."""
    from egpu_array.backend.device import get_device
    h = np.arange(1000.0)
    with xp.profile() as prof:
        np.asarray(xp.asarray(h, device="sim:1"))
        sim = get_device("sim")
        sim.bridge.faults.arm("timeout", "bulk_out")
        with pytest.raises(xp.DeviceError):
            xp.asarray(h, device="sim")
        sim.bridge.faults.clear()
    assert [t["device"] for t in prof.transfer_log] == ["sim:1", "sim:1"]
    assert any("a copy of 8000 bytes to sim failed" in n for n in prof.notes), prof.notes
