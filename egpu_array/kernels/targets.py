"""Targets: where generated IR is compiled for (host CPU object code, NVPTX assembly).

A Target knows its triple and data layout, the ops it lowers natively, and how to turn an
``ir.Module`` into bytes its device can load. ``key`` identifies it in the kernel cache.
"""
from __future__ import annotations

import abc
import functools
import threading

import llvmlite
import llvmlite.binding as llvm
from llvmlite import ir

__all__ = ["Target", "HostTarget", "host_target", "init_llvm", "NVPTXTarget", "nvptx_target", "replace_frem"]

_init_lock = threading.Lock()


@functools.cache
def init_llvm() -> None:
    """Initialise LLVM's targets once (``llvm.initialize()`` is obsolete in llvmlite 0.50)."""
    with _init_lock:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()


class Target(abc.ABC):
    """Interface of a compilation target."""

    triple: str
    key: str

    def new_module(self, name: str) -> ir.Module:
        """An empty module for this target."""
        m = ir.Module(name=name)
        m.triple = self.triple
        return m

    @abc.abstractmethod
    def compile(self, module: ir.Module) -> bytes:
        """Verify, optimise and emit ``module``; returns what the device's ``load`` accepts."""


class HostTarget(Target):
    """The host CPU with its real features (AVX2/FMA where present); emits ELF object code."""

    def __init__(self):
        init_llvm()
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        target = llvm.Target.from_triple(self.triple)
        self.tm = target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                               codemodel="jitdefault")
        self.key = f"host:{self.triple}:{self.cpu}:{self.features}:llvmlite-{llvmlite.__version__}"
        self._lock = threading.Lock()

    def jit_engine(self) -> "llvm.ExecutionEngine":
        """An MCJIT engine (over an empty module) that links this target's object code, with a
        target machine of its own: an engine owns and frees its target machine, so engines that
        shared ``self.tm`` (the cpu and sim devices, the process-wide host target) freed it twice
        when a second one was garbage-collected (a segfault in the test suite)."""
        empty = llvm.parse_assembly("")
        empty.triple = self.triple
        tm = llvm.Target.from_triple(self.triple).create_target_machine(
            cpu=self.cpu, features=self.features, opt=3, codemodel="jitdefault")
        return llvm.create_mcjit_compiler(empty, tm)

    def optimize(self, module: ir.Module) -> "llvm.ModuleRef":
        """Parse, verify and run the O3 pipeline with loop and SLP vectorization."""
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(mod, pb)
        return mod

    def compile(self, module: ir.Module) -> bytes:
        with self._lock:
            return self.tm.emit_object(self.optimize(module))

    def assembly(self, module: ir.Module) -> str:
        """The optimised machine code as text (tests inspect it for vector instructions)."""
        with self._lock:
            return self.tm.emit_assembly(self.optimize(module))


@functools.cache
def host_target() -> HostTarget:
    """The process-wide host target."""
    return HostTarget()


class NVPTXTarget(Target):
    """NVIDIA GPUs: ``nvptx64-nvidia-cuda`` for ``sm_<arch>``; emits PTX text (``bytes``).

    ``compile`` adds the ``.entry`` wrappers of :mod:`.ptx` (grid-stride loop, finalize step),
    links libdevice when a libm call needs it and one is found, optimises at O3, refuses modules
    NVPTX cannot lower (:class:`.ptx.KernelCompileError` instead of an LLVM abort) and prints the
    PTX. The PTX starts with a comment ``// egpu_array args=<slots> writes=<0|1> mode=<grid|block>``
    that the cuda device reads: how many int64 argument slots the kernel touches, whether it writes
    them, and whether its entry wants one thread per work item (grid) or one block (block).
    """

    #: ops the kernels lower natively on this target (the rest through kernels.math expansions)
    native_ops = frozenset({"sqrt", "fabs", "fma", "floor", "ceil", "trunc", "rint", "copysign",
                            "minnum", "maxnum"})

    @property
    def generators(self) -> dict:
        """kind -> generator used instead of the host one: a GPU form of that kind, which may define
        its own ``NAME_grid`` entry (then no grid-stride wrapper is added). ``reduce``: block
        reductions for chunked specs (:mod:`.ptx_reduce`, argmax/argmin included) and block scans
        (:mod:`.ptx_scan`); ``sort``: block forms of the radix sort's count and scatter phases
        (:mod:`.ptx_sort`)."""
        from . import ptx_reduce, ptx_sort
        return {"reduce": ptx_reduce.generate, "sort": ptx_sort.generate}

    def __init__(self, arch: int = 80, ptx_version: int = 78):
        init_llvm()
        self.arch = int(arch)
        self.ptx_version = int(ptx_version)
        self.triple = "nvptx64-nvidia-cuda"
        target = llvm.Target.from_triple(self.triple)
        self.tm = target.create_target_machine(cpu=f"sm_{self.arch}", features=f"+ptx{self.ptx_version}",
                                               opt=3)
        self.data_layout = str(self.tm.target_data)
        self.key = f"nvptx:sm_{self.arch}:ptx{self.ptx_version}:llvmlite-{llvmlite.__version__}"
        self._lock = threading.Lock()

    def new_module(self, name: str) -> ir.Module:
        m = super().new_module(name)
        m.data_layout = self.data_layout
        return m

    def optimize(self, module: ir.Module, fnames: tuple = ()) -> "llvm.ModuleRef":
        """Wrap the entries of the kernels ``fnames`` (default: the one named like the module),
        link libdevice if needed, verify, O3, check selectability."""
        from . import ptx
        fname = module.name
        for f in fnames or (fname,):
            ptx.add_entries(module, f)
        replace_frem(module)
        libdevice = ptx.find_libdevice()
        ptx.define_fallbacks(module, libdevice is not None)
        ptx.global_pointers(module)
        mod = llvm.parse_assembly(str(module))
        ptx.link_libdevice(mod, libdevice)
        for g in mod.global_variables:  # module-local: several kernels' PTX may be assembled together
            if not g.is_declaration:
                g.linkage = "internal"
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(mod, pb)
        ptx.check_selectable(mod, fname)
        return mod

    def compile(self, module: ir.Module, fnames: tuple = ()) -> bytes:
        """PTX of ``module``; ``fnames`` lists its kernels when there are several (tests batch them)."""
        from . import ptx
        slots, writes = ptx.arg_slots(module)
        with self._lock:
            text = self.tm.emit_assembly(self.optimize(module, fnames))
        mode = getattr(module, "egpu_launch", "grid")  # "block": one thread block per work item
        head = f"// egpu_array args={slots if slots is not None else -1} writes={int(writes)} mode={mode}\n"
        return (head + text).encode()


def replace_frem(module: ir.Module) -> int:
    """Replace every ``frem`` of ``module`` by a call of C's ``fmod``/``fmodf`` (same operands);
    returns how many. NVPTX expands ``frem`` as ``x - trunc(x / y) * y``, wrong for large quotients
    and special values; fmod is exact (libdevice's ``__nv_fmod[f]``, else :data:`.ptx.FALLBACKS`)."""
    count = 0
    for fn in list(module.functions):
        for block in fn.blocks:
            for ins in list(block.instructions):
                if getattr(ins, "opname", None) != "frem" or ins.type not in (ir.FloatType(), ir.DoubleType()):
                    continue
                x, y = ins.operands
                name = "fmodf" if x.type == ir.FloatType() else "fmod"
                callee = module.globals.get(name)
                if callee is None:
                    callee = ir.Function(module, ir.FunctionType(x.type, [x.type, x.type]), name=name)
                call = ir.CallInstr(block, callee, [x, y])
                block.replace(ins, call)
                count += 1
    return count


@functools.cache
def nvptx_target(arch: int = 80) -> NVPTXTarget:
    """The NVPTX target for compute capability ``arch`` (80 = sm_80), one per process."""
    return NVPTXTarget(arch)
