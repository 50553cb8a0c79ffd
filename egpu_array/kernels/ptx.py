"""NVPTX form of our kernels: ``.entry`` wrappers, the selectability check, libdevice.

The generators emit the per-range function ``void NAME(i64* args, i64 start, i64 end)`` as for the
host. For NVPTX, :func:`add_entries` adds the kernels the cuda device launches:

* ``NAME_grid(i64* args, i64 n, i64 per)``: a grid-stride loop over runs of ``per`` work items;
  thread ``t`` of the grid runs runs ``t, t + T, t + 2T, ...`` (``T`` = threads in the grid), run
  ``r`` as ``NAME(args, r * per, min((r + 1) * per, n))``, so neighbouring threads touch
  neighbouring elements (coalesced for ``per == 1``) and a run of ``per`` elements pays one index
  unravel (64-bit divisions) instead of one per element;
* ``NAME_fin_grid(i64* args)`` when the module has a finalize step ``NAME_fin(i64* args)`` (the
  second phase of a chunked reduction): one thread runs it.

The per-range functions become internal and always-inline, so LLVM folds them into the entries.

LLVM's NVPTX backend aborts the process (or fails with "Cannot select") on operations it cannot
lower, e.g. ``llvm.sin.f64`` or a libm call. :func:`check_selectable` rejects such modules with a
:class:`KernelCompileError` before code generation: every declared function must be an intrinsic
on the allow-list :data:`SELECTABLE` (or be defined by libdevice, see :func:`link_libdevice`).
"""
from __future__ import annotations

import functools
import glob
import os
import re

from llvmlite import ir

from .._errors import KernelCompileError, KernelLaunchError  # noqa: F401  (re-exported here)
from .irb import I1, I32, I64, const, intrinsic

__all__ = ["KernelCompileError", "add_entries", "check_selectable", "find_libdevice", "link_libdevice",
           "define_fallbacks", "FALLBACKS", "global_pointers",
           "SELECTABLE", "LIBDEVICE_NAMES", "arg_slots", "ENTRY_SUFFIX"]

ENTRY_SUFFIX = "_grid"




#: LLVM intrinsics (name without the type suffixes) that the NVPTX backend selects for the types we
#: use. Anything else, or any external function, is refused before code generation.
SELECTABLE = frozenset({
    "fabs", "sqrt", "fma", "fmuladd", "floor", "ceil", "trunc", "rint", "nearbyint", "roundeven",
    "copysign", "minnum", "maxnum", "minimum", "maximum", "fptosi.sat", "fptoui.sat",
    "smax", "smin", "umax", "umin", "abs", "ctpop", "ctlz", "cttz", "bswap", "fshl", "fshr",
    "sadd.with.overflow", "uadd.with.overflow", "ssub.with.overflow", "usub.with.overflow",
    "smul.with.overflow", "umul.with.overflow", "sadd.sat", "uadd.sat", "ssub.sat", "usub.sat",
    "memcpy", "memset", "memmove", "lifetime.start", "lifetime.end", "assume", "expect",
    "prefetch", "experimental.noalias.scope.decl",  # hints the NVPTX code generator drops
    "vector.reduce.add", "vector.reduce.and", "vector.reduce.or", "vector.reduce.xor",
    "vector.reduce.smax", "vector.reduce.smin", "vector.reduce.umax", "vector.reduce.umin",
    "is.fpclass",  # made by O3 from isnan/isinf patterns; NVPTX expands it to integer tests on the bits
    # made by the loop vectorizer in reductions; NVPTX expands them to scalar steps
    "vector.reduce.fadd", "vector.reduce.fmul", "vector.reduce.fmax", "vector.reduce.fmin",
    "vector.reduce.fmaximum", "vector.reduce.fminimum",
})

#: libm names our generators may call -> their libdevice equivalents (used when libdevice is found)
LIBDEVICE_NAMES = {name + suffix: f"__nv_{name}{suffix}"
                   for name in ("hypot", "exp", "log", "log2", "log10", "sin", "cos", "tan", "expm1",
                                "log1p", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                                "acosh", "atanh", "atan2", "pow", "cbrt", "fmod")
                   for suffix in ("", "f")}

_TYPE_SUFFIX = re.compile(r"(\.(p\d+|p\d+i\d+|i\d+|f\d+|v\d+[if]\d+|v\d+p\d+))+$")


def _intrinsic_base(name: str) -> str:
    """``llvm.fptosi.sat.i32.f64`` -> ``fptosi.sat``."""
    return _TYPE_SUFFIX.sub("", name[len("llvm."):])


def check_selectable(modref, what: str) -> None:
    """Raise KernelCompileError when ``modref`` (a parsed module) calls something NVPTX cannot lower.

    ``what`` names the kernel in the message.
    """
    bad = []
    for fn in modref.functions:
        if not fn.is_declaration:
            continue
        name = fn.name
        if name.startswith("llvm.nvvm."):
            continue
        if name.startswith("llvm.") and _intrinsic_base(name) in SELECTABLE:
            continue
        bad.append(name)
    if bad:
        raise KernelCompileError(
            f"{what}: cannot be compiled for NVPTX: it calls {', '.join(sorted(bad))}, which the NVPTX "
            "code generator cannot lower (no libdevice equivalent linked); use the cpu device for it")


def arg_slots(module: ir.Module) -> tuple:
    """(slots, writes): how many int64 argument slots the module's functions touch (one past the
    highest constant index into their ``i64* args``; None if some index is not constant), and
    whether any function stores into the slots (then the launcher copies them back)."""
    top, writes, dynamic = 0, False, False
    for fn in module.functions:
        if fn.is_declaration or not fn.args or fn.args[0].type != I64.as_pointer():
            continue
        base = fn.args[0]
        derived = {id(base)}
        for block in fn.blocks:
            for ins in block.instructions:
                ops = getattr(ins, "operands", ())
                if isinstance(ins, ir.GEPInstr) and id(ins.pointer) in derived:
                    idx = ins.indices[0]
                    if isinstance(idx, ir.Constant):
                        top = max(top, int(idx.constant) + 1)
                    else:
                        dynamic = True
                    derived.add(id(ins))
                elif isinstance(ins, ir.CastInstr) and ins.opname == "bitcast" and ops and id(ops[0]) in derived:
                    derived.add(id(ins))
                elif isinstance(ins, ir.StoreInstr) and id(ops[1]) in derived:
                    writes = True
    return (None if dynamic else top), writes


def _sreg(b: ir.IRBuilder, name: str) -> ir.Value:
    """A PTX special register (``tid.x``, ``ntid.x``, ``ctaid.x``, ``nctaid.x``) as i64."""
    fname = f"llvm.nvvm.read.ptx.sreg.{name}"
    fn = b.module.globals.get(fname)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(I32, []), name=fname)
    return b.zext(b.call(fn, []), I64)


def _mark_kernel(module: ir.Module, fn: ir.Function) -> None:
    module.add_named_metadata("nvvm.annotations", [fn, "kernel", const(I32, 1)])


def _internal(fn: ir.Function) -> None:
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")


def add_entries(module: ir.Module, fname: str, sreg=None) -> list:
    """Add the ``.entry`` kernels of the per-range function ``fname`` (and of ``fname_fin`` when
    present) to ``module``; returns their names. ``sreg(builder, name) -> i64`` reads a special
    register (default: the NVVM intrinsics; tests pass an emulation to run the entries on the host)."""
    _sreg_ = sreg or _sreg
    names = [fname + ENTRY_SUFFIX]
    if not isinstance(module.globals.get(names[0]), ir.Function):  # else the generator wrote it
        _add_grid_entry(module, fname, _sreg_)
    fin = module.globals.get(fname + "_fin")
    if isinstance(fin, ir.Function) and not fin.is_declaration:
        _internal(fin)
        fentry = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]),
                             name=fin.name + ENTRY_SUFFIX)
        b = ir.IRBuilder(fentry.append_basic_block("entry"))
        is_first = b.icmp_unsigned("==", b.add(_sreg_(b, "ctaid.x"), _sreg_(b, "tid.x")), const(I64, 0))
        with b.if_then(is_first):
            b.call(fin, [fentry.args[0]])
        b.ret_void()
        _mark_kernel(module, fentry)
        names.append(fentry.name)
    return names


def global_pointers(module: ir.Module) -> int:
    """Make every data pointer of the module a global-memory pointer: each ``inttoptr`` to a
    generic pointer becomes ``inttoptr`` to ``addrspace(1)`` and an ``addrspacecast`` back, so LLVM
    infers the address space and emits ``ld.global``/``st.global`` (``ld.global.nc`` for read-only
    data) instead of generic accesses. Our kernels only ever turn device allocations (cuMemAlloc,
    DLPack imports, mapped host memory: all global addresses) into pointers; shared memory is
    addressed through its own addrspace(3) globals. Returns how many were rewritten."""
    done = 0
    for fn in module.functions:
        for block in fn.blocks:
            for ins in list(block.instructions):
                if not (isinstance(ins, ir.CastInstr) and ins.opname == "inttoptr"
                        and isinstance(ins.type, ir.PointerType) and ins.type.addrspace == 0):
                    continue
                glob = ir.CastInstr(block, "inttoptr", ins.operands[0], ins.type.pointee.as_pointer(1))
                block.instructions.insert(block.instructions.index(ins), glob)
                # the instruction itself becomes the cast (its users keep referring to it)
                ins.opname, ins.operands = "addrspacecast", [glob]
                ins._clear_string_cache()
                done += 1
    return done


def _add_grid_entry(module: ir.Module, fname: str, _sreg_) -> None:
    """The grid-stride ``NAME_grid`` entry over runs of work items of the per-range function."""
    body = module.get_global(fname)
    _internal(body)
    entry = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]),
                        name=fname + ENTRY_SUFFIX)
    args, n, per = entry.args  # per: work items per call (a short run shares one index unravel)
    if not arg_slots(module)[1]:  # the slots are only read: loads of them may leave the loop
        args.add_attribute("noalias")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    first = b.add(b.mul(_sreg_(b, "ctaid.x"), _sreg_(b, "ntid.x")), _sreg_(b, "tid.x"))
    step = b.mul(_sreg_(b, "nctaid.x"), _sreg_(b, "ntid.x"))
    calls = b.sdiv(b.add(n, b.sub(per, const(I64, 1))), per)
    pre = b.block
    head, loop, done = (b.append_basic_block(s) for s in ("head", "loop", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name="i")
    i.add_incoming(first, pre)
    b.cbranch(b.icmp_signed("<", i, calls), loop, done)
    b.position_at_end(loop)
    lo = b.mul(i, per)
    hi = b.add(lo, per)
    b.call(body, [args, lo, b.select(b.icmp_signed("<", hi, n), hi, n)])
    i.add_incoming(b.add(i, step), b.block)
    b.branch(head)
    b.position_at_end(done)
    b.ret_void()
    _mark_kernel(module, entry)


def _nextafter_body(b: ir.IRBuilder, x, y):
    """C99 nextafter on the bits: NaN if either is NaN, y if x == y, the smallest subnormal
    towards y from zero, else x's bit pattern moved one step towards y."""
    ity = ir.IntType(32 if x.type == ir.FloatType() else 64)
    one, zero = const(ity, 1), ir.Constant(x.type, 0.0)
    bits = b.bitcast(x, ity)
    up = b.icmp_signed("==", b.fcmp_ordered("<", x, y), b.fcmp_ordered(">", x, zero))
    moved = b.bitcast(b.select(up, b.add(bits, one), b.sub(bits, one)), x.type)
    tiny = intrinsic(b, "llvm.copysign", x.type, b.bitcast(one, x.type), y)
    r = b.select(b.fcmp_ordered("==", x, zero), tiny, moved)
    r = b.select(b.fcmp_ordered("==", x, y), y, r)
    nan = b.fadd(x, y)
    return b.select(b.fcmp_unordered("uno", x, y), nan, r)


def _hypot_body(b: ir.IRBuilder, x, y):
    from .math import emit_math
    return emit_math(b, "hypot", [x, y])


def _fmod_body(b: ir.IRBuilder, x, y):
    """C99 fmod, exact: long division of the mantissas (normalised, subnormals included) over the
    exponent difference, one quotient bit per step; the result has x's sign (-0.0 kept).
    fmod(x, 0), fmod(+-inf, y) and a NaN operand give NaN; fmod(x, +-inf) = x for finite x."""
    ity = ir.IntType(32 if x.type == ir.FloatType() else 64)
    mbits = 23 if ity.width == 32 else 52
    c = functools.partial(const, ity)
    sign_mask, implicit = c(1 << (ity.width - 1)), c(1 << mbits)
    mant_mask, inf_bits = c((1 << mbits) - 1), c(((1 << (ity.width - 1 - mbits)) - 1) << mbits)
    xb, yb = b.bitcast(x, ity), b.bitcast(y, ity)
    sign = b.and_(xb, sign_mask)
    ax, ay = b.and_(xb, b.not_(sign_mask)), b.and_(yb, b.not_(sign_mask))
    nan = b.or_(b.or_(b.icmp_unsigned("==", ay, c(0)), b.icmp_unsigned(">=", ax, inf_bits)),
                b.icmp_unsigned(">", ay, inf_bits))
    small = b.icmp_unsigned("<", ax, ay)  # |x| < |y| (also fmod(x, inf)): x itself

    def unpack(a):
        """(mantissa with its leading 1 at bit mbits, exponent field, as if normal)."""
        e = b.lshr(a, c(mbits))
        shift = b.sub(b.ctlz(a, ir.Constant(I1, 0)), c(ity.width - 1 - mbits))  # subnormals only
        sub = b.icmp_unsigned("==", e, c(0))
        m = b.select(sub, b.shl(a, shift), b.or_(b.and_(a, mant_mask), implicit))
        return m, b.select(sub, b.sub(c(1), shift), e)

    mx, ex = unpack(ax)
    my, ey = unpack(ay)
    n = b.select(b.or_(nan, small), c(0), b.sub(ex, ey))  # steps; >= 0 when |x| >= |y|
    pre = b.block
    head, body, done = (b.append_basic_block(s) for s in ("fmod.head", "fmod.body", "fmod.done"))
    b.branch(head)
    b.position_at_end(head)
    r, k = b.phi(ity, name="fmod.r"), b.phi(ity, name="fmod.k")
    r.add_incoming(mx, pre)
    k.add_incoming(n, pre)
    b.cbranch(b.icmp_signed(">", k, c(0)), body, done)
    b.position_at_end(body)
    reduced = b.select(b.icmp_unsigned(">=", r, my), b.sub(r, my), r)  # r < 2*my throughout
    r.add_incoming(b.shl(reduced, c(1)), body)
    k.add_incoming(b.sub(k, c(1)), body)
    b.branch(head)
    b.position_at_end(done)
    rem = b.select(b.icmp_unsigned(">=", r, my), b.sub(r, my), r)  # (mx * 2**n) mod my
    # renormalise: leading bit to position mbits, exponent ey - shift; below 1 a subnormal
    # (the shift right then drops only zero bits: the remainder is a multiple of y's and x's ulp)
    shift = b.sub(b.ctlz(rem, ir.Constant(I1, 0)), c(ity.width - 1 - mbits))
    e = b.sub(ey, shift)
    norm = b.shl(rem, shift)
    normal = b.or_(b.shl(e, c(mbits)), b.and_(norm, mant_mask))
    sub_shift = b.sub(c(1), e)
    subnormal = b.lshr(norm, b.select(b.icmp_signed(">", sub_shift, c(ity.width - 1)), c(ity.width - 1), sub_shift))
    mag = b.select(b.icmp_signed(">=", e, c(1)), normal, subnormal)
    mag = b.select(b.icmp_unsigned("==", rem, c(0)), c(0), mag)
    out = b.bitcast(b.or_(mag, sign), x.type)
    out = b.select(small, x, out)
    return b.select(nan, ir.Constant(x.type, float("nan")), out)


#: libm functions our generators call that we define in the module for NVPTX (no libdevice needed)
FALLBACKS = {"hypot": _hypot_body, "hypotf": _hypot_body,
             "nextafter": _nextafter_body, "nextafterf": _nextafter_body,
             "fmod": _fmod_body, "fmodf": _fmod_body}


#: fallbacks used only when no libdevice is found (libdevice's own function is preferred)
LIBDEVICE_FIRST = frozenset({"fmod", "fmodf"})


def define_fallbacks(module: ir.Module, libdevice: bool = False) -> list:
    """Give the module's declared libm functions of :data:`FALLBACKS` an internal body (emitted
    IR: kernels.math for hypot, bit steps for nextafter, long division for fmod); with
    ``libdevice`` (one is found) those of :data:`LIBDEVICE_FIRST` are left to it. Returns the names."""
    done = []
    for fn in list(module.functions):
        body = FALLBACKS.get(fn.name)
        if body is None or not fn.is_declaration or (libdevice and fn.name in LIBDEVICE_FIRST):
            continue
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(body(b, *fn.args))
        _internal(fn)
        done.append(fn.name)
    return done


@functools.cache
def find_libdevice() -> str | None:
    """The path of ``libdevice.10.bc``: ``EGPU_ARRAY_LIBDEVICE``, ``CUDA_HOME``/``CUDA_PATH``, the
    usual toolkit folders, or the ``nvidia-cuda-nvcc`` wheel; None when there is none."""
    env = os.environ.get("EGPU_ARRAY_LIBDEVICE")
    if env:
        return env if os.path.isfile(env) else None
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
             *sorted(glob.glob("/usr/local/cuda-*"), reverse=True), "/usr/lib/cuda", "/opt/cuda"]
    try:
        import nvidia.cuda_nvcc as wheel  # the nvidia-cuda-nvcc wheel
        roots += list(getattr(wheel, "__path__", []))
    except ImportError:
        pass
    for root in roots:
        if root:
            for path in glob.glob(os.path.join(root, "nvvm", "libdevice", "libdevice*.bc")):
                return path
    return None


def link_libdevice(modref, path: str | None) -> bool:
    """Point the module's libm calls of :data:`LIBDEVICE_NAMES` at libdevice and link it in
    (every libdevice function internal, so unused ones are dropped). False when nothing to do."""
    import llvmlite.binding as llvm
    wanted = [f for f in modref.functions if f.is_declaration and f.name in LIBDEVICE_NAMES]
    if not wanted or path is None:
        return False
    for f in wanted:
        f.name = LIBDEVICE_NAMES[f.name]
    with open(path, "rb") as fh:
        lib = llvm.parse_bitcode(fh.read())
    lib.triple = modref.triple
    lib.data_layout = modref.data_layout
    modref.link_in(lib)
    for f in modref.functions:
        if f.name.startswith("__nv_") and not f.is_declaration:
            f.linkage = "internal"
    return True
