"""The cpu device's work queue (backend.cpu_pool over kernels.workqueue): every work item of a
launch runs exactly once whatever the grain, with workers spinning or asleep, with launches from
several Python threads at once; the device's threaded launches match NumPy."""
from __future__ import annotations

import ctypes
import os
import threading
import time

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

import egpu_array as xp
from egpu_array.backend.cpu import CPUDevice
from egpu_array.backend.cpu_pool import WorkQueue
from egpu_array.kernels import workqueue as wq
from egpu_array.kernels.irb import I64, const, extern, for_range, kernel_entry
from egpu_array.kernels.targets import host_target


@pytest.fixture(scope="module")
def tally():
    """A kernel ``counts[i] += 1`` (atomic) for its items, ``counts`` in argument slot 0; the
    engine that holds it."""
    target = host_target()
    module = target.new_module("tally")
    fn, b, slot, start, stop = kernel_entry(module, "tally")
    counts = b.inttoptr(slot(0), I64.as_pointer())
    with for_range(b, start, stop) as i:
        b.atomic_rmw("add", b.gep(counts, [i]), const(I64, 1), "monotonic")
    b.ret_void()
    engine = target.jit_engine()
    engine.add_object_file(llvm.ObjectFileRef.from_data(target.compile(module)))
    engine.finalize_object()
    return engine, engine.get_function_address("tally")


@pytest.fixture(scope="module")
def who():
    """A kernel writing ``pthread_self()`` to ``out[i]`` for its items (``out`` in slot 0) after
    ~``slot 1`` atomic loads of busy work per item; the engine and its address."""
    target = host_target()
    module = target.new_module("who")
    fn, b, slot, start, stop = kernel_entry(module, "who")
    out = b.inttoptr(slot(0), I64.as_pointer())
    spins = slot(1)
    with for_range(b, start, stop) as i:
        with for_range(b, const(I64, 0), spins, "s"):
            b.load_atomic(b.gep(out, [i]), "monotonic", 8)
        b.store(extern(b, "pthread_self", I64, []), b.gep(out, [i]))
    b.ret_void()
    engine = target.jit_engine()
    engine.add_object_file(llvm.ObjectFileRef.from_data(target.compile(module)))
    engine.finalize_object()
    return engine, engine.get_function_address("who")


def test_workers_take_chunks(who):
    """Launches of ~10-50 ms of work posted while the worker spins: it takes chunks of them (of
    one at least in 10 tries: on this shared VM a vCPU can be descheduled for a whole launch)."""
    queue = WorkQueue(host_target(), 1, 1.0)
    ids = []
    try:
        for _ in range(10):
            deadline = time.monotonic() + 5
            while queue.state[wq.State.SLEEPING] and time.monotonic() < deadline:
                time.sleep(0.001)  # (the thread clears its flag when it spins)
            out = np.zeros(400, dtype=np.int64)
            args = (ctypes.c_int64 * 2)(out.ctypes.data, 50_000)
            assert queue.run(who[1], ctypes.addressof(args), out.size, 4)
            assert (out != 0).all()
            ids.append(len(set(out.tolist())))
            if ids[-1] == 2:
                break
    finally:
        queue.close()
    assert ids[-1] == 2, f"the worker ran no chunk in {len(ids)} launches"


def _run(queue, addr, n, grain):
    counts = np.zeros(max(n, 1), dtype=np.int64)
    args = (ctypes.c_int64 * 1)(counts.ctypes.data)
    assert queue.run(addr, ctypes.addressof(args), n, grain)
    return counts[:n]


@pytest.mark.parametrize("workers", [1, 3])
def test_every_item_runs_once(tally, workers):
    queue = WorkQueue(host_target(), workers, 0.005)
    try:
        for n, grain in [(1, 1), (7, 1), (1000, 1), (1000, 3), (1000, 64), (1000, 999), (1000, 5000),
                         (100_003, 17), (100_003, 4096)]:
            counts = _run(queue, tally[1], n, grain)
            assert (counts == 1).all(), (n, grain, np.flatnonzero(counts != 1)[:10])
        assert _run(queue, tally[1], 0, 1).size == 0
    finally:
        queue.close()
    assert not any(t.is_alive() for t in queue._threads)


def test_sleeping_workers_wake(tally):
    """Workers that spin for ~10 us go to sleep between launches; a launch wakes them (each
    clears the event the launch set for it) and still runs every item once."""
    queue = WorkQueue(host_target(), 2, spin_seconds=1e-5)
    flags = slice(wq.State.SLEEPING, wq.State.SLEEPING + 2)

    def until(cond):
        deadline = time.monotonic() + 5
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.0005)
        return cond()

    try:
        for _ in range(5):
            assert until(lambda: queue.state[flags].all())  # asleep after their short spin
            assert (_run(queue, tally[1], 50_000, 1000) == 1).all()
            assert until(lambda: not any(e.is_set() for e in queue._events))  # woken: events cleared
    finally:
        queue.close()


def test_launches_from_several_threads(tally):
    """Launches racing for one queue: one holds it, the others run alone; none is lost."""
    queue = WorkQueue(host_target(), 1, 0.005)
    results, busy = [], []

    def go():
        for _ in range(30):
            counts = np.zeros(20_000, dtype=np.int64)
            args = (ctypes.c_int64 * 1)(counts.ctypes.data)
            if not queue.run(tally[1], ctypes.addressof(args), counts.size, 100):
                busy.append(1)
                ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(tally[1])(
                    ctypes.addressof(args), 0, counts.size)
            results.append(bool((counts == 1).all()))

    try:
        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        queue.close()
    assert len(results) == 120 and all(results)


def test_too_many_items_are_refused(tally):
    queue = WorkQueue(host_target(), 1, 0.005)
    try:
        assert not queue.run(tally[1], 0, wq.MAX_ITEMS, 1)  # (never posted: args 0 is not read)
    finally:
        queue.close()


def test_threaded_launches_match_numpy():
    """A 4-thread device (on 2 cores: chunks interleave) repeating an in-place update, a fused
    expression and reductions: an item run twice or skipped would show."""
    dev = CPUDevice(num_threads=4)
    h = np.random.default_rng(1).random(1 << 20)
    x = xp.asarray(h, device=dev)
    for _ in range(20):
        x += 1.0
        h += 1.0
    np.testing.assert_array_equal(np.asarray(x), h)
    np.testing.assert_allclose(np.asarray(xp.sin(x) * 2 - x), np.sin(h) * 2 - h, rtol=1e-15)
    m = xp.reshape(x, (1024, 1024))
    np.testing.assert_allclose(np.asarray(xp.sum(m, axis=0)), h.reshape(1024, 1024).sum(0), rtol=1e-12)
    np.testing.assert_allclose(float(xp.sum(x)), h.sum(), rtol=1e-12)
    assert dev._queue is not None and dev._queue.workers == 3


@pytest.mark.parametrize("triple", ["aarch64-apple-darwin", "aarch64-unknown-linux-gnu"])
def test_work_queue_compiles_for_aarch64(triple):
    """The queue's functions verify and compile for Apple silicon / Arm Linux hosts (spin hint
    ``isb``; the atomics lowered to AArch64 atomics), as they must where a Mac drives an eGPU."""
    from egpu_array.kernels.targets import init_llvm
    init_llvm()
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    try:
        target = llvm.Target.from_triple(triple)
    except RuntimeError as e:
        pytest.skip(f"this llvmlite has no AArch64 backend: {e}")
    module = ir.Module("wq")
    module.triple = triple
    mod = llvm.parse_assembly(str(wq.generate(module)))
    mod.verify()
    asm = target.create_target_machine(opt=2).emit_assembly(mod)
    assert "isb" in asm
    assert all(f"{name}:" in asm or f"_{name}:" in asm for name in wq.FUNCTIONS)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_workers_of_its_own():
    """After a fork (multiprocessing's default on Linux) the child restarts the queue's workers
    and its threaded launches are right; the exit code says so."""
    dev = CPUDevice(num_threads=2)
    h = np.random.default_rng(2).random(1 << 20)
    x = xp.asarray(h, device=dev)
    assert float(xp.sum(x)) == pytest.approx(float(h.sum()), rel=1e-12)
    pid = os.fork()
    if pid == 0:  # the child: no pytest reporting here, only the exit code
        ok = False
        try:
            ok = abs(float(xp.sum(x * 2.0)) - 2 * float(h.sum())) < 1e-6 * h.size \
                and all(t.is_alive() for t in dev._queue._threads)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
