"""The lazy graph, the scheduler and the kernel cache: fusion, reuse, the graph-size limit."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import egpu_array as xp
from egpu_array.kernels import cache as kcache


def _inputs(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(5)]


def _expr(a, b, c, d, e, ns):
    return a * b + c * d - ns.sin(e) * ns.exp(-a)


def test_fused_chain_is_one_kernel_and_matches_numpy():
    host = _inputs((1000,))
    arrs = [xp.asarray(h) for h in host]
    with xp.profile() as prof:
        out = _expr(*arrs, xp)
        assert prof.launches == 0  # lazy: nothing ran yet
        got = np.asarray(out)
    assert prof.launches == 1
    np.testing.assert_allclose(got, _expr(*host, np), rtol=2e-6, atol=2e-6)


def test_new_shape_and_strides_compile_nothing():
    arrs = [xp.asarray(h) for h in _inputs((333,))]
    np.asarray(_expr(*arrs, xp))
    host = _inputs((17, 40), seed=1)
    arrs = [xp.asarray(h) for h in host]
    with xp.profile() as prof:
        got = np.asarray(_expr(*arrs, xp))
    assert prof.compiles == 0 and prof.launches == 1
    np.testing.assert_allclose(got, _expr(*host, np), rtol=2e-6, atol=2e-6)


def test_transposed_chain_is_one_tiled_kernel_for_every_shape():
    """A fused chain over transposed views (and a C-contiguous input) is one launch of the tiled
    kernel; new shapes of the same structure compile nothing; a reduction of such a chain stays
    one reduction kernel."""
    host = [h.T for h in _inputs((90, 70))]
    arrs = [xp.asarray(h.T).mT for h in host[:4]] + [xp.asarray(np.ascontiguousarray(host[4]))]
    with xp.profile() as prof:
        got = np.asarray(_expr(*arrs, xp))
    assert prof.launches == 1
    np.testing.assert_allclose(got, _expr(*host, np), rtol=2e-6, atol=2e-6)
    host = [h.T for h in _inputs((130, 47), seed=1)]
    arrs = [xp.asarray(h.T).mT for h in host[:4]] + [xp.asarray(np.ascontiguousarray(host[4]))]
    with xp.profile() as prof:
        got = np.asarray(_expr(*arrs, xp))
    assert prof.compiles == 0 and prof.launches == 1
    np.testing.assert_allclose(got, _expr(*host, np), rtol=2e-6, atol=2e-6)
    with xp.profile() as prof:
        total = np.asarray(xp.sum(arrs[0] * 2.0 + arrs[1], axis=1))
    assert prof.launches == 1
    np.testing.assert_allclose(total, np.sum(host[0] * 2.0 + host[1], axis=1), rtol=1e-5, atol=1e-4)


def test_scalar_values_are_arguments_not_part_of_the_kernel():
    x = xp.asarray(np.arange(10, dtype=np.float64))
    np.asarray(x * 2.0 + 1.0)
    with xp.profile() as prof:
        got = np.asarray(x * 3.5 + -7.0)
    assert prof.compiles == 0
    np.testing.assert_array_equal(got, np.arange(10) * 3.5 - 7.0)


def test_warm_disk_cache_compiles_nothing_in_a_new_process(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, egpu_array as xp
        a, b, c, d, e = (xp.asarray(np.linspace(0, 1, 64, dtype=np.float32) + i) for i in range(5))
        with xp.profile() as p:
            np.asarray(a * b + c * d - xp.sin(e) * xp.exp(-a))
        print(p.compiles, p.cache_hits, p.launches)
    """)
    env = dict(os.environ, EGPU_ARRAY_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split()[0] != "0"      # the first process compiled
    compiles, hits, launches = map(int, second.stdout.split())
    assert compiles == 0 and hits >= 1 and launches == 1


def test_corrupt_cache_file_is_recompiled_not_trusted(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, egpu_array as xp
        x = xp.asarray(np.arange(8, dtype=np.float64))
        with xp.profile() as p:
            r = np.asarray(xp.cosh(x) * 3 - x)
        assert np.allclose(r, np.cosh(np.arange(8)) * 3 - np.arange(8)), r
        print(p.compiles)
    """)
    env = dict(os.environ, EGPU_ARRAY_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    files = list(tmp_path.glob("*.bin"))
    assert files
    for f in files:  # truncate one, flip bytes in the others
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2] if f == files[0] else data[:-8] + b"\x00" * 8)
    out = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True)
    assert int(out.stdout) >= 1


def test_cache_off_writes_nothing(tmp_path):
    script = "import numpy as np, egpu_array as xp; np.asarray(xp.asarray([1.0]) * 2)"
    env = dict(os.environ, EGPU_ARRAY_CACHE_DIR="off", HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path))
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    assert not any(tmp_path.rglob("*.bin"))


def test_graph_limit_bounds_long_loops_and_reuses_one_kernel():
    x = xp.asarray(np.ones(1000, dtype=np.float64))
    ref = np.ones(1000)
    with xp.profile() as prof:
        for _ in range(1000):
            x = x * 0.999 + 0.001
            ref = ref * 0.999 + 0.001
        got = np.asarray(x)
    assert x._node.op == "buffer"
    assert prof.compiles <= 3           # a full graph cut after a multiply or an add, and the rest
    assert prof.launches <= 1000 // 10  # many iterations per launch
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_large_arrays_split_across_threads_match_numpy():
    n = 3_000_001  # odd, larger than the threading threshold
    host = _inputs((n,), np.float64, seed=3)
    got = np.asarray(_expr(*[xp.asarray(h) for h in host], xp))
    np.testing.assert_allclose(got, _expr(*host, np), rtol=1e-13, atol=1e-13)


def test_pending_expression_reads_values_before_a_later_inplace_write():
    x = xp.asarray(np.arange(6, dtype=np.float64))
    y = x * 2          # pending, reads x's buffer
    x += 100           # writes x's buffer in place
    np.testing.assert_array_equal(np.asarray(y), np.arange(6) * 2)
    np.testing.assert_array_equal(np.asarray(x), np.arange(6) + 100)


def test_write_through_a_view_is_seen_by_other_views():
    x = xp.asarray(np.arange(10, dtype=np.int32))
    y = x[1:]
    x[:2] = 5
    y += 1
    ref = np.arange(10, dtype=np.int32)
    ry = ref[1:]
    ref[:2] = 5
    ry += 1
    np.testing.assert_array_equal(np.asarray(x), ref)
    np.testing.assert_array_equal(np.asarray(y), ry)


def test_overlapping_inplace_update_uses_a_temporary():
    x = xp.asarray(np.arange(10, dtype=np.int64))
    x[1:] = x[:-1]
    ref = np.arange(10)
    ref[1:] = ref[:-1].copy()
    np.testing.assert_array_equal(np.asarray(x), ref)


@pytest.mark.parametrize("stmt", ["x += x[:1]", "x[:2] *= x[:1]", "x[...] = x[:1] - 3", "x -= x[:, 1:2]",
                                  "x[1:] += x[1:2]"])
def test_inplace_update_reading_its_target_broadcast(stmt):
    """An in-place update whose value reads the target's own first row(s) broadcast: that row has
    the target's strides and offset but not its shape, so the later rows would read it already
    updated (``x += x[:1]`` added row 0 twice to rows 1 and 2)."""
    x, ref = xp.reshape(xp.arange(1.0, 13.0), (3, 4)), np.arange(1.0, 13.0).reshape(3, 4)
    exec(stmt, {}, {"x": x})
    exec(stmt, {}, {"x": ref})
    np.testing.assert_array_equal(np.asarray(x), ref)


def test_pool_reuses_freed_temporaries():
    a = xp.asarray(np.ones(1 << 16, dtype=np.float32))
    np.asarray(a + 1)
    with xp.profile() as prof:
        for _ in range(5):
            np.asarray(a + 1)
    assert prof.allocations == 0


def test_chrome_trace_is_written(tmp_path):
    import json
    a = xp.asarray(np.ones(10))
    with xp.profile() as prof:
        np.asarray(xp.exp(a) + 1)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert any(e.get("cat") == "compute" for e in events)
    assert "launches" in str(prof)


def test_memory_cache_is_per_device_and_spec():
    assert all(isinstance(k, tuple) and len(k) == 2 for k in kcache._memory)


def test_huge_trig_arguments_rerun_with_the_wide_reduction():
    h = np.array([0.5, 1e22, -3.0e9, 7.0, np.inf, np.nan, -0.0])
    x = xp.asarray(h)
    with xp.profile() as prof:
        got = np.asarray(xp.sin(x) + xp.cos(x) * xp.tan(x))
    assert prof.launches == 2 and any("wide reduction" in n for n in prof.notes)
    with np.errstate(invalid="ignore"):
        ref = np.sin(h) + np.cos(h) * np.tan(h)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-15)
    small = xp.asarray(np.linspace(-100, 100, 1001))
    with xp.profile() as prof:
        got = np.asarray(xp.sin(small))
    assert prof.launches == 1      # moderate arguments: the fast kernel only
    np.testing.assert_allclose(got, np.sin(np.linspace(-100, 100, 1001)), rtol=1e-14, atol=1e-15)
