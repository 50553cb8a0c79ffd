"""The example scripts in examples/, run as a user runs them: ``python examples/NAME.py ...``.

Each example computes on egpu_array and on NumPy (through array-api-compat) and exits 0 only when
the two agree; here they run with small sizes so the whole file takes well under a minute.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytest.importorskip("array_api_compat")

#: example -> small arguments
SMALL = {
    "heat2d": ["--size", "24", "--steps", "40"],
    "kmeans": ["--size", "400", "--steps", "4"],
    "montecarlo": ["--size", "20000"],
    "nbody": ["--size", "24", "--steps", "5"],
    "linreg": ["--size", "300", "--steps", "20"],
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One kernel cache for the module: later examples reuse the kernels earlier ones compiled."""
    return tmp_path_factory.mktemp("kernels")


def run_example(name, *args, cache_dir, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["EGPU_ARRAY_CACHE_DIR"] = str(cache_dir)
    env.pop("EGPU_ARRAY_DEVICE", None)
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def check_passed(r, name):
    out = r.stdout
    assert r.returncode == 0, f"{name} failed (exit {r.returncode}):\n{out}\n{r.stderr}"
    assert f"{name}: matches NumPy" in out, out
    assert "FAIL" not in out and "MISMATCH" not in out, out


def test_every_example_is_listed():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_example_on_cpu(name, cache_dir):
    r = run_example(name, "--device", "cpu", *SMALL[name], cache_dir=cache_dir)
    check_passed(r, name)
    assert "device: egpu_array cpu" in r.stdout


@pytest.mark.parametrize("name", ["heat2d", "montecarlo"])
def test_example_on_sim(name, cache_dir):
    r = run_example(name, "--device", "sim", *SMALL[name], cache_dir=cache_dir)
    check_passed(r, name)
    assert "device: egpu_array sim" in r.stdout


def test_example_help(cache_dir):
    r = run_example("kmeans", "--help", cache_dir=cache_dir)
    assert r.returncode == 0 and "--device" in r.stdout and "--size" in r.stdout


def test_unknown_device_fails(cache_dir):
    r = run_example("heat2d", "--device", "nosuchdevice", "--size", "8", cache_dir=cache_dir)
    assert r.returncode != 0
    assert "nosuchdevice" in r.stderr


def test_mismatch_exits_non_zero(capsys):
    """The verdict: one failed check makes the example exit 1 and say MISMATCH."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import _common
    finally:
        sys.path.remove(str(EXAMPLES))
    assert _common.report("demo", {"x": 1}, [("a", True, ""), ("b", False, "off by 1")], {"ours": 0.0}) == 1
    out = capsys.readouterr().out
    assert "[FAIL] b: off by 1" in out and "demo: MISMATCH with NumPy" in out
    assert _common.report("demo", {}, [("a", True, "")], {}) == 0
    assert "demo: matches NumPy" in capsys.readouterr().out
