"""Threads with small stacks: native work moves to a thread with stack enough (egpu_array._native_stack).

Without it, a thread made after ``threading.stack_size(32768)`` died with SIGSEGV in LLVM's compiler
or in a kernel with a large frame (the column reductions' 64 KiB accumulator tile), and so did the
cpu device's workers when the first threaded launch came after such a setting. The crashing cases
run in a child process, so that a regression fails the test instead of killing the test run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from egpu_array import _native_stack as ns

pytestmark = pytest.mark.skipif(ns.stack_bytes() is None, reason="this platform does not report thread stack sizes")


def _in_thread(stack: int, fn):
    out = []
    old = threading.stack_size(stack)
    try:
        t = threading.Thread(target=lambda: out.append(fn()))
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    return out[0]


def test_stack_bytes_reads_the_calling_threads_stack():
    small = _in_thread(65536, ns.stack_bytes)
    assert 65536 <= small < ns.NEED
    assert _in_thread(65536, ns.deep_enough) is False
    assert _in_thread(4 << 20, ns.stack_bytes) >= 4 << 20
    assert _in_thread(4 << 20, ns.deep_enough) is True


def test_call_runs_on_a_deep_stack_and_hands_back_results_and_errors():
    def where():
        return ns.stack_bytes(), threading.current_thread().name

    size, name = _in_thread(65536, lambda: ns.call(where))
    assert size >= ns.THREAD_STACK and name == "egpu-deep-stack"
    size, name = _in_thread(4 << 20, lambda: ns.call(where))  # deep enough: stays on its thread
    assert name != "egpu-deep-stack"

    def fails():
        raise ValueError("from the helper")

    def caller():
        try:
            ns.call(fails)
        except ValueError as e:
            return str(e)
    assert _in_thread(65536, caller) == "from the helper"


_CHILD = """
import threading, numpy as np
threading.stack_size({main_setting})      # in force when the cpu device starts its workers
import egpu_array as xp
rng = np.random.default_rng(0)
a = rng.standard_normal((3000, 9000))    # a threaded launch; float64 columns: the 64 KiB tile
s = rng.standard_normal(2_000_000).astype(np.float32)
results = {{"main": float(xp.sum(xp.asarray(a)))}}  # the workers start under main_setting
def work():
    x = xp.asarray(a)
    results["sum0"] = np.asarray(xp.sum(x, axis=0))
    results["expr"] = np.asarray(xp.max(x * 2.0 - 1.0, axis=0))
    results["sort"] = np.asarray(xp.sort(xp.asarray(s)))
threading.stack_size({thread_stack})
t = threading.Thread(target=work); t.start(); t.join()
np.testing.assert_allclose(results["main"], a.sum(), rtol=1e-12)
np.testing.assert_allclose(results["sum0"], a.sum(axis=0), rtol=1e-12, atol=1e-9)
np.testing.assert_array_equal(results["expr"], (a * 2.0 - 1.0).max(axis=0))
np.testing.assert_array_equal(results["sort"], np.sort(s))
print("CHILD OK")
"""


@pytest.mark.parametrize("main_setting,thread_stack", [(0, 32768), (32768, 32768), (65536, 0)])
def test_small_stack_threads_compile_and_run_kernels(main_setting, thread_stack):
    env = dict(os.environ, EGPU_ARRAY_CACHE_DIR="off", EGPU_ARRAY_NUM_THREADS="2")  # fresh compiles
    code = textwrap.dedent(_CHILD.format(main_setting=main_setting, thread_stack=thread_stack))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "CHILD OK" in r.stdout, (r.returncode, r.stdout, r.stderr[-2000:])
