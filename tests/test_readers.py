"""The pending readers of a buffer (lazy arrays that read it) around in-place writes: a write
computes them first, also when an earlier attempt failed half-way and when threads created them
at the same time."""
import sys
import threading

import numpy as np
import pytest

import egpu_array as xp


def test_readers_stay_pending_when_a_flush_fails():
    """A reader too large to compute (out of memory) fails the write's flush; the other readers
    stay readers, so the retried write computes them first (y read the written values)."""
    a = np.arange(4.0)
    x = xp.asarray(a)
    big = x[:, None] + xp.zeros((1, 2 ** 40))  # a pending reader of x that cannot be computed
    y = x * 2
    with pytest.raises(xp.DeviceOutOfMemoryError):
        x += 100
    del big
    x += 100
    np.testing.assert_array_equal(np.asarray(y), a * 2)
    np.testing.assert_array_equal(np.asarray(x), a + 100)


def test_readers_created_by_threads_at_once_are_all_kept():
    """Threads creating readers of one array at once (the reader list's clean-up raced with their
    appends and dropped some; a later write then changed them: 16 of 150 trials before). A race:
    a fixed number of trials with a tiny switch interval, so a regression shows most runs."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        stale = 0
        for _ in range(150):
            a = np.arange(4.0)
            x = xp.asarray(a)
            kept = [[] for _ in range(4)]

            def work(t):
                for i in range(200):
                    kept[t].append((x + (t * 1000 + i), a + (t * 1000 + i)))
                    if i % 3 == 0:
                        np.asarray(kept[t][-1][0])  # computed readers are cleaned up
            threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            x += 1e6
            stale += sum(not np.array_equal(np.asarray(r), q) for k in kept for r, q in k)
    finally:
        sys.setswitchinterval(interval)
    assert stale == 0


def test_reader_computed_by_a_write_in_another_thread_keeps_that_result():
    """A reader created while another thread writes its input in place: that thread's write
    computes it first (the values it was created with); a computation of its own that started
    earlier and ended later must not replace that result with values read after later writes
    (it did: readers read hundreds of writes late). A race: a bounded run with a tiny switch
    interval, so a regression shows in most runs."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    x, count, late = xp.zeros(64), [0], []
    try:
        def writer():
            for i in range(4000):
                x.__iadd__(1.0)
                count[0] = i + 1

        def reader():
            while count[0] < 4000:
                made = [(count[0], x + 0.0, count[0]) for _ in range(50)]
                for before, y, after in made:
                    v = np.asarray(y)
                    if not before <= v.min() <= v.max() <= after + 1:
                        late.append((before, after, v.min(), v.max()))
        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    assert late == []


def test_threads_computing_expressions_of_one_pending_product():
    """Two threads computing different expressions of one pending matmul at once: the GEMM's
    stand-in for the product is local to each lowering (it was published on the shared node, and
    the other thread launched a kernel reading address 0: a segfault). In a subprocess, so a
    crash fails this test instead of the run."""
    import subprocess
    import textwrap
    script = textwrap.dedent("""
        import sys, threading
        import numpy as np
        import egpu_array as xp
        sys.setswitchinterval(1e-6)
        rng = np.random.default_rng(0)
        a, b = xp.asarray(rng.standard_normal((64, 64))), xp.asarray(rng.standard_normal((64, 64)))
        ref = np.asarray(a) @ np.asarray(b)
        for _ in range(600):
            p = a @ b
            bar, out = threading.Barrier(2), [None, None]
            def work(i):
                bar.wait()
                out[i] = np.asarray(p + 1.0 if i == 0 else p * 2.0)
            threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            assert np.allclose(out[0], ref + 1) and np.allclose(out[1], ref * 2)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
