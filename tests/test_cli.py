"""The command line, run as a user runs it: ``python -m egpu_array ...`` in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, tmp_path, env_extra=None, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["EGPU_ARRAY_CACHE_DIR"] = str(tmp_path / "kernels")  # a fresh, empty kernel cache
    env.pop("EGPU_ARRAY_DEVICE", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "egpu_array", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tmp_path)


def test_help_lists_subcommands(tmp_path):
    r = run_cli("--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    for word in ("demo", "info", "exit status"):
        assert word in r.stdout


@pytest.mark.parametrize("cmd", ["demo", "info"])
def test_subcommand_help(tmp_path, cmd):
    r = run_cli(cmd, "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:")


def test_no_subcommand_is_a_usage_error(tmp_path):
    r = run_cli(tmp_path=tmp_path)
    assert r.returncode == 2
    assert "usage:" in r.stderr


def test_unknown_option_is_a_usage_error(tmp_path):
    r = run_cli("demo", "--no-such-option", tmp_path=tmp_path)
    assert r.returncode == 2
    assert "unrecognized arguments" in r.stderr


def test_bad_size_is_a_usage_error(tmp_path):
    r = run_cli("demo", "--size", "0", tmp_path=tmp_path)
    assert r.returncode == 2


def test_info_lists_cpu_device(tmp_path):
    r = run_cli("info", "--dtypes", tmp_path=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "Array API 2025.12" in out
    assert "default device: cpu" in out
    assert "  cpu  (default)" in out
    assert "max dimensions:" in out
    assert "float32" in out and "complex128" in out


def test_info_with_unknown_default_device_fails(tmp_path):
    r = run_cli("info", tmp_path=tmp_path, env_extra={"EGPU_ARRAY_DEVICE": "nosuchdevice"})
    assert r.returncode == 1
    assert "ERROR" in r.stdout


def test_demo_small(tmp_path):
    r = run_cli("demo", "--size", "100000", "--repeats", "1", tmp_path=tmp_path)
    out = r.stdout
    assert "demo on device cpu" in out
    header = next(line for line in out.splitlines() if line.startswith("workload"))
    for col in ("check", "ours", "NumPy", "NumPy/ours", "kernels"):
        assert col in header
    assert "a*b + c*d - sin(e)*exp(-a)" in out
    rows = [line for line in out.splitlines() if "float32" in line or "float64" in line or "complex64" in line]
    assert len(rows) >= 3
    # the fused expression is one kernel
    fused = next(line for line in rows if line.startswith("a*b + c*d"))
    assert " ok (" in fused
    assert "checks passed" in out
    assert r.returncode == 0, f"demo failed (exit {r.returncode}):\n{out}\n{r.stderr}"
    assert "FAIL" not in out
    # the kernel cache started empty, so the demo compiled into it
    assert any((tmp_path / "kernels").iterdir())


def test_demo_quiet_has_no_progress(tmp_path):
    r = run_cli("demo", "--size", "2000", "--repeats", "1", "--quiet", tmp_path=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert "demo [" not in r.stderr


# --- cache info / cache clear ----------------------------------------------------------------

def _fill_cache(tmp_path):
    """Compile two kernels into the test's fresh cache folder, as a user's program would."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["EGPU_ARRAY_CACHE_DIR"] = str(tmp_path / "kernels")
    env.pop("EGPU_ARRAY_DEVICE", None)
    code = "import egpu_array as xp; a = xp.arange(10.0); print(float(xp.sum(a * 2.0 + 1.0)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return sorted((tmp_path / "kernels").glob("*.bin"))


@pytest.mark.parametrize("args", [("cache",), ("cache", "info"), ("cache", "clear")])
def test_cache_help(tmp_path, args):
    r = run_cli(*args, "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:")
    assert "cache" in r.stdout


def test_help_lists_cache(tmp_path):
    r = run_cli("--help", tmp_path=tmp_path)
    assert r.returncode == 0 and "cache" in r.stdout


def test_cache_without_action_is_a_usage_error(tmp_path):
    r = run_cli("cache", tmp_path=tmp_path)
    assert r.returncode == 2
    assert "usage:" in r.stderr
    r = run_cli("cache", "explode", tmp_path=tmp_path)
    assert r.returncode == 2


def test_cache_info_before_first_use(tmp_path):
    r = run_cli("cache", "info", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "kernels") in r.stdout
    assert "kernel files: 0" in r.stdout
    assert not (tmp_path / "kernels").exists()  # info creates nothing


def test_cache_info_counts_kernels(tmp_path):
    files = _fill_cache(tmp_path)
    assert files, "computing something should have written kernels"
    size = sum(p.stat().st_size for p in files)
    r = run_cli("cache", "info", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "kernels") in r.stdout
    assert f"kernel files: {len(files)}" in r.stdout
    assert f"({size} bytes)" in r.stdout


def test_cache_clear_removes_only_kernels(tmp_path):
    files = _fill_cache(tmp_path)
    folder = tmp_path / "kernels"
    (folder / "notes.txt").write_text("keep me")
    (folder / "sub.bin").mkdir()                  # a folder, even one named *.bin, stays
    (folder / "sub.bin" / "inner.bin").write_bytes(b"x")
    (folder / ".tmp-abc").write_bytes(b"partial")
    r = run_cli("cache", "clear", "--dry-run", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"would remove {len(files)} kernel files" in r.stdout
    assert all(p.exists() for p in files)
    r = run_cli("cache", "clear", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"removed {len(files)} kernel files" in r.stdout
    assert sorted(folder.glob("*.bin")) == [folder / "sub.bin"]
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "sub.bin" / "inner.bin").exists()
    assert (folder / ".tmp-abc").exists()
    r = run_cli("cache", "info", tmp_path=tmp_path)
    assert "kernel files: 0" in r.stdout
    r = run_cli("cache", "clear", tmp_path=tmp_path)   # clearing twice is fine
    assert r.returncode == 0 and "removed 0 kernel files" in r.stdout
    assert _fill_cache(tmp_path)   # and the library recompiles into the cleared folder


def test_cache_clear_keeps_other_bin_files(tmp_path):
    """A folder chosen with EGPU_ARRAY_CACHE_DIR may hold a user's own ``*.bin`` files: only the
    cache's names (64 hex digits) are counted and removed (``firmware.bin`` was deleted)."""
    files = _fill_cache(tmp_path)
    (tmp_path / "kernels" / "firmware.bin").write_bytes(b"keep")
    r = run_cli("cache", "clear", tmp_path=tmp_path)
    assert r.returncode == 0 and f"removed {len(files)} kernel files" in r.stdout, r.stdout
    assert (tmp_path / "kernels" / "firmware.bin").read_bytes() == b"keep"


def test_cache_folder_that_cannot_be_checked_fails_cleanly(tmp_path):
    r = run_cli("cache", "info", tmp_path=tmp_path, env_extra={"EGPU_ARRAY_CACHE_DIR": str(tmp_path / ("x" * 300))})
    assert r.returncode == 1 and "cannot check" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("name, value", [("EGPU_ARRAY_GRAPH_LIMIT", "abc"), ("EGPU_ARRAY_GRAPH_LIMIT", "1e3"),
                                         ("EGPU_ARRAY_SPIN_US", "inf"), ("EGPU_ARRAY_SPIN_US", "x"),
                                         ("EGPU_ARRAY_NUM_THREADS", "0"), ("EGPU_ARRAY_NUM_THREADS", "2.5")])
def test_malformed_numeric_settings_name_the_variable(tmp_path, name, value):
    """A malformed number in a setting is an error naming the variable (it was int()'s bare
    message at import, or an OverflowError at the first computation for SPIN_US=inf)."""
    r = run_cli("info", tmp_path=tmp_path, env_extra={name: value})
    assert r.returncode != 0 and f"{name} must be" in r.stderr, r.stderr


def test_unknown_default_device_names_the_variable(tmp_path, set_config_env):
    """An unknown EGPU_ARRAY_DEVICE is reported with the variable's name (it read like a bad
    argument of the first function that needed a device)."""
    r = run_cli("selftest", tmp_path=tmp_path, env_extra={"EGPU_ARRAY_DEVICE": "bogus"})
    assert r.returncode == 2 and "EGPU_ARRAY_DEVICE='bogus'" in r.stderr, r.stderr
    import egpu_array as xp
    set_config_env("EGPU_ARRAY_DEVICE", "bogus")
    with pytest.raises(ValueError, match="asarray \\(the default device, EGPU_ARRAY_DEVICE='bogus'\\)"):
        xp.asarray([1.0])


def test_cache_disabled(tmp_path):
    for action in ("info", "clear"):
        r = run_cli("cache", action, tmp_path=tmp_path, env_extra={"EGPU_ARRAY_CACHE_DIR": "off"})
        assert r.returncode == 0, r.stderr
        assert "disabled" in r.stdout


def test_cache_folder_that_is_a_file_fails(tmp_path):
    (tmp_path / "kernels").write_text("not a folder")
    for action in ("info", "clear"):
        r = run_cli("cache", action, tmp_path=tmp_path)
        assert r.returncode == 1
        assert "not a folder" in r.stderr
    assert (tmp_path / "kernels").read_text() == "not a folder"


def test_info_lists_usb_bridges_with_the_gpu_behind_them():
    from egpu_array._cli_info import usb_bridge_lines
    from egpu_array.backend.usb.emulator import EmulatedBridge
    lines = usb_bridge_lines(EmulatedBridge())     # the emulator plugs in as the pyusb backend
    assert lines[0] == "usb bridges (1):"
    assert "GPU 10de:" in lines[1] and "cannot compute yet" in lines[1]
    none = usb_bridge_lines()                      # this machine: no bridge attached
    assert len(none) == 1 and none[0].startswith("usb bridges:")


# --- bench and selftest ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    """The kernel cache of the test session (as a user's runs share theirs): the selftest compiles
    about 250 kernels, seconds each under load, once per cache rather than once per test."""
    from egpu_array._info import config
    folder = config().cache_dir
    return {"EGPU_ARRAY_CACHE_DIR": str(folder) if folder else str(tmp_path_factory.mktemp("kernels"))}


@pytest.mark.parametrize("cmd", ["bench", "selftest"])
def test_bench_and_selftest_help(tmp_path, cmd):
    r = run_cli(cmd, "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:") and "--device" in r.stdout
    assert cmd in run_cli("--help", tmp_path=tmp_path).stdout


@pytest.mark.parametrize("cmd", ["bench", "selftest", "demo"])
def test_unknown_device_lists_the_devices_present(tmp_path, cmd):
    for name, why in (("cuda:7", "cuda"), ("tpu", "unknown device 'tpu'")):
        r = run_cli(cmd, "--device", name, tmp_path=tmp_path)
        assert r.returncode == 2
        assert f"cannot use device {name}: " in r.stderr and why in r.stderr
        assert "devices present: cpu, sim" in r.stderr and "python -m egpu_array info" in r.stderr
        assert r.stdout == ""


def test_bench_quick_json(tmp_path, kernel_cache):
    r = run_cli("bench", "--quick", "--json", "--repeats", "1", tmp_path=tmp_path, env_extra=kernel_cache)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["device"] == "cpu" and result["size"] == 200_000 and result["failed"] == 0
    names = [w["name"] for w in result["workloads"]]
    for word in ("sin(e)", "sum", "axis 0", "sort", "matmul", "softmax"):
        assert any(word in n for n in names), (word, names)
    for w in result["workloads"]:
        assert w["ok"] is True, w
        assert w["ours_s"] > 0 and w["numpy_s"] > 0 and w["ratio"] == pytest.approx(w["numpy_s"] / w["ours_s"])
        assert w["bytes"] > 0 and w["GBps"] == pytest.approx(w["bytes"] / w["ours_s"] / 1e9)
    matmul = next(w for w in result["workloads"] if w["name"].startswith("matmul"))
    assert matmul["measure"] == "GFLOP/s" and matmul["flops"] > 0
    fused = next(w for w in result["workloads"] if "sin(e)" in w["name"])
    assert fused["launches"] == 1   # the whole chain is one kernel
    assert "bench [" in r.stderr     # the progress bar


def test_bench_table_on_sim(tmp_path, kernel_cache):
    r = run_cli("bench", "--quick", "--repeats", "1", "--device", "sim", "--only", "softmax", "axis",
                tmp_path=tmp_path, env_extra=kernel_cache)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "bench on device sim" in lines[0]
    header = next(line for line in lines if line.startswith("workload"))
    for col in ("check", "NumPy/ours", "kernels"):
        assert col in header
    rows = [line for line in lines if line.startswith(("softmax", "sum over", "max over"))]
    assert len(rows) == 3 and all(" ok " in row and "GB/s" in row for row in rows)
    assert "3/3 checks passed" in r.stdout


def test_bench_usage_errors(tmp_path):
    r = run_cli("bench", "--only", "nosuchworkload", tmp_path=tmp_path)
    assert r.returncode == 2 and "matches no workload" in r.stderr and "softmax" in r.stderr
    r = run_cli("bench", "--size", "0", tmp_path=tmp_path)
    assert r.returncode == 2


@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_selftest_passes_and_covers_the_namespace(tmp_path, kernel_cache, device):
    import egpu_array as xp
    r = run_cli("selftest", "--device", device, tmp_path=tmp_path, env_extra=kernel_cache, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"selftest on device {device}" in r.stdout
    checked = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("  ok  ")}
    functions = {n for n in xp.__all__ if callable(getattr(xp, n)) and not isinstance(getattr(xp, n), type)}
    for ext in ("linalg", "fft"):
        if hasattr(xp, ext):
            functions |= {f"{ext}.{n}" for n in getattr(xp, ext).__all__}
    assert functions - {"profiler"} <= checked
    assert "FAIL" not in r.stdout
    summary = next(line for line in r.stdout.splitlines() if line.startswith(f"selftest on {device}:"))
    assert " 0 failed" in summary


def _selftest_with(code: str, *args, tmp_path, env_extra):
    """Run the selftest in a process where ``code`` changed the namespace first."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    env.pop("EGPU_ARRAY_DEVICE", None)
    script = (f"import sys, egpu_array as xp\n{code}\nfrom egpu_array.__main__ import main\n"
              f"sys.exit(main(['selftest', *{list(args)!r}]))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


def test_selftest_fails_on_a_wrong_function(tmp_path, kernel_cache):
    r = _selftest_with("_sin = xp.sin\nxp.sin = lambda x: _sin(x) * 1.001", "--only", "sin", "cos",
                       tmp_path=tmp_path, env_extra=kernel_cache)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "  FAIL  sin: float32:" in r.stdout and "  ok    cos" in r.stdout
    assert "FAILED: sin" in r.stdout


def test_selftest_fails_on_a_result_left_on_another_device(tmp_path, kernel_cache):
    r = _selftest_with("import numpy as np\nxp.exp = lambda x: xp.asarray(np.exp(np.asarray(x)))",
                       "--only", "exp", "--device", "sim", tmp_path=tmp_path, env_extra=kernel_cache)
    assert r.returncode == 1
    assert "FAIL  exp" in r.stdout and "expected sim" in r.stdout


def test_selftest_reports_a_function_without_a_case(tmp_path, kernel_cache):
    r = _selftest_with("xp.brand_new = lambda x: x\nxp.__all__.append('brand_new')", "--failures-only",
                       "--only", "brand_new", "sin", tmp_path=tmp_path, env_extra=kernel_cache)
    assert r.returncode == 1
    assert "FAIL  brand_new: no selftest case" in r.stdout
    assert r.stdout.count("FAIL  ") == 1


def test_selftest_only_unknown_name_is_a_usage_error(tmp_path):
    r = run_cli("selftest", "--only", "no_such_function", tmp_path=tmp_path)
    assert r.returncode == 2 and "not a public name" in r.stderr
