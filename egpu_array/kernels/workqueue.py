"""The cpu device's work queue: native functions that share one launch's work items among threads.

A launch posts ``(kernel, args, n, grain)`` in a block of int64 words (``State``); every thread,
the caller included, then claims chunks of ``grain`` items with a compare-and-swap on one counter
and runs the kernel on them, so a thread that starts late (a sleeping worker takes ~0.1 ms to
wake) or runs slower just takes fewer chunks. The counter holds the launch's sequence number in
its top bits (``SEQ_SHIFT``), and a new launch first moves it to a value with nothing to claim:
a thread can only claim items of the launch whose fields it read.
The caller waits (spinning: the last chunks take microseconds) until the threads have reported
every item done. Workers spin on the counter for a while after their last chunk (``wq_spin``'s
limit, a count of pause steps), then say they sleep and go back to Python to wait for an event.

The kernels keep their ABI (``void k(i64* args, i64 start, i64 stop)``); a chunk is one call, so a
kernel whose items are independent of how ``[0, n)`` is cut (all of ours) runs unchanged.
"""
from __future__ import annotations

from llvmlite import ir

from .irb import I1, I32, I64, const, for_range, range_loop

__all__ = ["State", "generate", "SEQ_SHIFT", "MAX_ITEMS", "FUNCTIONS"]

#: the counter's low SEQ_SHIFT bits are the next unclaimed item, the high bits the launch's number
SEQ_SHIFT = 40
#: launches of at least this many items run on the calling thread alone (the counter's item bits
#: must not overflow into the sequence number when a claim adds its grain past ``n``)
MAX_ITEMS = 1 << (SEQ_SHIFT - 1)


class State:
    """Word offsets in the shared int64 block (each group on a cache line of its own)."""
    COUNTER, FN, ARGS, N, GRAIN = 0, 1, 2, 3, 4
    DONE = 8           # items finished (the caller waits for it to reach N)
    STOP = 16          # nonzero: workers leave their spin loop for good
    SLEEPING = 24      # SLEEPING + w: worker w has left its spin loop (and waits for its event)
    WORDS = 32         # (room for 8 workers' flags; more share the line, which costs only speed)

    @staticmethod
    def words(workers: int) -> int:
        """Size of the block for ``workers`` worker threads."""
        return max(State.WORDS, State.SLEEPING + workers)


#: the exported functions, with their ctypes signatures as (restype, argtypes) of int64/void*
FUNCTIONS = {
    "wq_post": ("i64", ("ptr", "i64", "i64", "i64", "i64", "i64")),  # state, fn, args, n, grain, workers
    "wq_work": (None, ("ptr",)),                                       # state
    "wq_spin": (None, ("ptr", "i64", "i64")),                          # state, worker, limit
    "wq_pause": (None, ("ptr", "i64")),                                # state, steps (calibration)
}

_KERNEL = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64])


def _word(b: ir.IRBuilder, state, k) -> ir.Value:
    return b.gep(state, [k if isinstance(k, ir.Value) else const(I64, k)])


def _load(b: ir.IRBuilder, state, k, order: str = "monotonic") -> ir.Value:
    return b.load_atomic(_word(b, state, k), order, 8)


def _store(b: ir.IRBuilder, state, k, value, order: str = "monotonic") -> None:
    b.store_atomic(value, _word(b, state, k), order, 8)


def _pause(b: ir.IRBuilder, triple: str) -> None:
    """One spin-wait hint: x86 ``pause``, AArch64 ``isb`` (what Rust's spin_loop uses)."""
    if triple.startswith(("x86_64", "i686", "i386")):
        fn = b.module.declare_intrinsic("llvm.x86.sse2.pause", (), ir.FunctionType(ir.VoidType(), []))
        b.call(fn, [])
    elif triple.startswith(("aarch64", "arm64")):
        fn = b.module.declare_intrinsic("llvm.aarch64.isb", (), ir.FunctionType(ir.VoidType(), [I32]))
        b.call(fn, [const(I32, 15)])


def _claim(module: ir.Module) -> ir.Function:
    """``i1 wq_claim(state)``: claim one chunk of the posted launch and run it; 0 when no items
    are left to claim (1 after running a chunk or losing a race for one)."""
    fn = ir.Function(module, ir.FunctionType(I1, [I64.as_pointer()]), name="wq_claim")
    fn.linkage = "internal"
    state, = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    run, empty, lost = (fn.append_basic_block(s) for s in ("run", "empty", "lost"))
    c = _load(b, state, State.COUNTER, "acquire")
    nxt = b.and_(c, const(I64, (1 << SEQ_SHIFT) - 1))
    n = _load(b, state, State.N)
    grain = _load(b, state, State.GRAIN)
    kernel = _load(b, state, State.FN)
    args = _load(b, state, State.ARGS)
    b.fence("acquire")
    b.cbranch(b.icmp_unsigned("<", nxt, n), run, empty)
    b.position_at_end(run)
    # the fields were read after the counter: if the counter still holds ``c`` they are this launch's
    won = b.extract_value(b.cmpxchg(_word(b, state, State.COUNTER), c, b.add(c, grain), "acq_rel", "acquire"), 1)
    go = fn.append_basic_block("go")
    b.cbranch(won, go, lost)
    b.position_at_end(go)
    end = b.select(b.icmp_unsigned("<", b.add(nxt, grain), n), b.add(nxt, grain), n)
    b.call(b.inttoptr(kernel, _KERNEL.as_pointer()), [b.inttoptr(args, I64.as_pointer()), nxt, end])
    b.atomic_rmw("add", _word(b, state, State.DONE), b.sub(end, nxt), "release")
    b.branch(lost)
    b.position_at_end(lost)
    b.ret(const(I1, 1))
    b.position_at_end(empty)
    b.ret(const(I1, 0))
    return fn


def _post(module: ir.Module) -> None:
    """``i64 wq_post(state, fn, args, n, grain, workers)``: publish a launch; returns how many
    workers had said they sleep (the caller wakes them)."""
    fn = ir.Function(module, ir.FunctionType(I64, [I64.as_pointer()] + [I64] * 5), name="wq_post")
    state, kernel, args, n, grain, workers = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    c = _load(b, state, State.COUNTER)
    seq = b.shl(b.add(b.lshr(c, const(I64, SEQ_SHIFT)), const(I64, 1)), const(I64, SEQ_SHIFT))
    # first a counter with nothing to claim under the new number: a thread that read the old
    # counter and then the new fields fails its compare-and-swap instead of claiming new items
    _store(b, state, State.COUNTER, b.or_(seq, const(I64, (1 << SEQ_SHIFT) - 1)), "seq_cst")
    b.fence("release")  # (pairs with wq_claim's acquire fence: the invalidation is seen first)
    for k, v in ((State.FN, kernel), (State.ARGS, args), (State.N, n), (State.GRAIN, grain),
                 (State.DONE, const(I64, 0))):
        _store(b, state, k, v)
    _store(b, state, State.COUNTER, seq, "seq_cst")
    # (seq_cst on both sides: a worker that sets its flag and then finds no work is seen here)
    (asleep,) = range_loop(b, const(I64, 0), workers, [const(I64, 0)],
                           lambda w, t: [b.add(t[0], _load(b, state, b.add(w, const(I64, State.SLEEPING)), "seq_cst"))],
                           "w")
    b.ret(asleep)


def _work(module: ir.Module, claim: ir.Function, triple: str) -> None:
    """``void wq_work(state)``: the caller's part: claim chunks until none are left, then wait
    until every item is done."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name="wq_work")
    state, = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    take, wait, spin, out = (fn.append_basic_block(s) for s in ("take", "wait", "spin", "out"))
    b.branch(take)
    b.position_at_end(take)
    b.cbranch(b.call(claim, [state]), take, wait)
    b.position_at_end(wait)
    finished = b.icmp_unsigned(">=", _load(b, state, State.DONE, "acquire"), _load(b, state, State.N))
    b.cbranch(finished, out, spin)
    b.position_at_end(spin)
    _pause(b, triple)
    b.branch(wait)
    b.position_at_end(out)
    b.ret_void()


def _spin(module: ir.Module, claim: ir.Function, triple: str) -> None:
    """``void wq_spin(state, worker, limit)``: a worker's loop: run chunks as launches come; after
    ``limit`` pause steps without work (or on STOP) set the worker's SLEEPING flag and, if a last
    look finds nothing to claim, return."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name="wq_spin")
    state, worker, limit = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    flag = b.add(worker, const(I64, State.SLEEPING))
    _store(b, state, flag, const(I64, 0), "seq_cst")
    entry = b.block
    head, check, idle, tired, again, out = (fn.append_basic_block(s) for s in
                                            ("head", "check", "idle", "tired", "again", "out"))
    b.branch(head)
    b.position_at_end(head)
    steps = b.phi(I64)
    steps.add_incoming(const(I64, 0), entry)
    stop = b.icmp_unsigned("!=", _load(b, state, State.STOP), const(I64, 0))
    b.cbranch(stop, out, check)
    b.position_at_end(check)
    worked = b.call(claim, [state])
    b.cbranch(worked, again, idle)  # (again: steps restart at 0)
    b.position_at_end(idle)
    _pause(b, triple)
    more = b.add(steps, const(I64, 1))
    steps.add_incoming(more, idle)
    b.cbranch(b.icmp_signed("<", more, limit), head, tired)
    b.position_at_end(tired)
    _store(b, state, flag, const(I64, 1), "seq_cst")
    b.cbranch(b.call(claim, [state]), again, out)  # a launch posted before the flag was seen
    b.position_at_end(again)
    _store(b, state, flag, const(I64, 0), "seq_cst")
    steps.add_incoming(const(I64, 0), again)
    b.branch(head)
    b.position_at_end(out)
    _store(b, state, flag, const(I64, 1), "seq_cst")
    b.ret_void()


def _pause_loop(module: ir.Module, triple: str) -> None:
    """``void wq_pause(state, steps)``: ``steps`` spin steps without the claim (a pause and a
    look at STOP each, as in ``wq_spin``; timed once to size the spin limit)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64]), name="wq_pause")
    state, steps = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with for_range(b, const(I64, 0), steps):
        _load(b, state, State.STOP)
        _pause(b, triple)
    b.ret_void()


def generate(module: ir.Module) -> ir.Module:
    """Add the work-queue functions (``FUNCTIONS``) to ``module`` (a host target's module)."""
    triple = module.triple or ""
    claim = _claim(module)
    _post(module)
    _work(module, claim, triple)
    _spin(module, claim, triple)
    _pause_loop(module, triple)
    return module
