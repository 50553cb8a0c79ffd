"""Generated code: vector instructions of the host's width, and kernels reused across shapes."""
import os
import platform

import llvmlite.binding as llvm
import numpy as np
import pytest

import egpu_array as xp
from egpu_array.kernels.elementwise import generate_elementwise
from egpu_array.kernels.reduction import generate_reduction
from egpu_array.kernels.spec import ElementwiseSpec, ReduceSpec
from egpu_array.kernels.targets import host_target

X86 = platform.machine() in ("x86_64", "AMD64")


def _asm(spec, gen):
    t = host_target()
    m = t.new_module("t")
    gen(spec, m, "kern")
    return t.assembly(m)


def _vector_register():
    feats = llvm.get_host_cpu_features()
    if feats.get("avx512f"):
        return "zmm"
    if feats.get("avx2") or feats.get("avx"):
        return "ymm"
    return "xmm"


# a*b + c*d on float32, contiguous
FMA_CHAIN = (("in", 0), ("in", 1), ("multiply", "float32", 0, 1), ("in", 2), ("in", 3),
             ("multiply", "float32", 3, 4), ("add", "float32", 2, 5))


@pytest.mark.skipif(not X86, reason="inspects x86-64 assembly")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_elementwise_loop_is_vectorized(dtype):
    expr = tuple((ins[0], dtype) + ins[2:] if ins[0] != "in" else ins for ins in FMA_CHAIN)
    spec = ElementwiseSpec(expr, (dtype,) * 4, (), 0, dtype, 1, ("c",) * 5)
    asm = _asm(spec, generate_elementwise)
    reg = _vector_register()
    assert f"%{reg}" in asm, f"no {reg} vector registers in the generated code"
    suffix = "ps" if dtype == "float32" else "pd"
    assert any(f"v{op}{suffix}" in asm for op in ("mul", "add", "fmadd213", "fmadd231", "fmadd132"))


@pytest.mark.skipif(not X86, reason="inspects x86-64 assembly")
def test_sum_reduction_is_vectorized():
    spec = ReduceSpec("sum", (("in", 0),), ("float32",), (), 0, "float32", "float64", "float32",
                      1, 1, ("0", "c"), "", False)
    asm = _asm(spec, generate_reduction)
    assert f"%{_vector_register()}" in asm
    assert "vaddpd" in asm and "vcvtps2pd" in asm   # float32 accumulated in float64 vectors


def test_jit_engines_own_their_target_machines():
    """Every JIT engine gets a target machine of its own: an engine frees its target machine when
    disposed, and engines that shared the host target's (the cpu and sim devices) freed it twice
    when one was garbage-collected, a segfault seen once in the suite. Run in a subprocess, so a
    crash fails this test instead of ending pytest."""
    import subprocess
    import sys
    code = (
        "import gc, numpy as np, egpu_array as xp\n"
        "from egpu_array.backend.cpu import CPUDevice\n"
        "from egpu_array.kernels.targets import host_target\n"
        "for _ in range(3):\n"
        "    d = CPUDevice(num_threads=1)\n"
        "    d._engine.close()\n"
        "    del d\n"
        "    gc.collect()\n"
        "a, b = host_target().jit_engine(), host_target().jit_engine()\n"
        "a.close(); b.close()\n"
        "print(float(xp.sum(xp.asarray(np.arange(10.0)) * 2)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, EGPU_ARRAY_CACHE_DIR="off"))
    assert r.returncode == 0 and r.stdout.strip() == "90.0", (r.returncode, r.stderr[-2000:])


@pytest.mark.skipif(not X86, reason="inspects x86-64 assembly")
def test_sin_and_cos_of_one_input_stay_vectorized():
    """Two wide-reduction retry flags from one input (``sin(x) * cos(x)``) are carried as one:
    as two, the loop was left scalar (4.5x slower)."""
    expr = (("in", 0), ("sin", "float64", 0), ("cos", "float64", 0), ("multiply", "float64", 1, 2))
    spec = ElementwiseSpec(expr, ("float64",), (), 0, "float64", 1, ("c", "c"), fast_trig=True)
    asm = _asm(spec, generate_elementwise)
    reg = _vector_register()
    assert f"%{reg}" in asm and "vfmadd" in asm, "sin(x) * cos(x) was not vectorized"


def test_disk_cache_misses_instead_of_failing(tmp_path, monkeypatch, set_config_env):
    """Kernel files that are not what their name says are misses (a recompile), never errors or
    hangs: another kernel's file copied over (it was 'kernel not found in its compiled object'), a
    FIFO (the read blocked forever), and a failed write leaves no temporary file behind."""
    import egpu_array.kernels.cache as kc
    set_config_env("EGPU_ARRAY_CACHE_DIR", str(tmp_path))
    x = xp.asarray(np.arange(5.0))
    kc.clear_memory_cache()
    np.asarray(xp.sin(x) * 3.0), np.asarray(xp.cos(x) - 1.0)
    files = sorted(tmp_path.glob("*.bin"))
    assert len(files) >= 2
    files[0].write_bytes(files[1].read_bytes())
    files[1].unlink()
    os.mkfifo(files[1])
    kc.clear_memory_cache()
    np.testing.assert_allclose(np.asarray(xp.sin(x) * 3.0), np.sin(np.arange(5.0)) * 3.0)
    np.testing.assert_allclose(np.asarray(xp.cos(x) - 1.0), np.cos(np.arange(5.0)) - 1.0)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(kc.os, "replace", full_disk)
    kc._write_disk(tmp_path / ("0" * 64 + ".bin"), "key", b"payload")
    assert not list(tmp_path.glob(".tmp-*"))
