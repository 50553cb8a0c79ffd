"""The command line, run as a user runs it: ``python -m egpu_array ...`` in a subprocess."""
from __future__ import annotations

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
