"""Targets: where generated IR is compiled for (host CPU object code; NVPTX later).

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

__all__ = ["Target", "HostTarget", "host_target", "init_llvm"]

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
