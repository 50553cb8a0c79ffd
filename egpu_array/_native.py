"""Small native helpers for the host process, built with llvmlite once per process.

:func:`capsule_destructor` returns the address of a ``PyCapsule`` destructor for DLPack capsules.
It must be native code: CPython may destroy a capsule while an exception is set (a consumer that
refuses the capsule, e.g. ``numpy.from_dlpack`` on a kDLCUDA tensor, drops it while raising
``BufferError``), and a ctypes callback refuses to run Python code then (``SystemError``, an
"Exception ignored on calling ctypes callback function", and the tensor's deleter never runs). The
native destructor does what DLPack producers written in C do::

    PyErr_Fetch(&type, &value, &traceback);       /* set aside the pending exception */
    for each (name, offset) in the table:         /* "dltensor", "dltensor_versioned" */
        if (PyCapsule_IsValid(cap, name)) {       /* still so named: nobody consumed it */
            managed = PyCapsule_GetPointer(cap, name);
            deleter = *(void (**)(void *))((char *)managed + offset);
            if (deleter) deleter(managed);        /* no exception pending now */
            break;
        }
    PyErr_Restore(type, value, traceback);        /* the consumer's exception, unchanged */

A capsule a consumer renamed (``used_dltensor...``) is left alone: its consumer calls the deleter.
CPython calls capsule destructors with the GIL held; the deleter may be a ctypes callback (it takes
the GIL again, which is re-entrant, and runs with no exception pending). The C-API functions are
called through their addresses in this process (from ``ctypes.pythonapi``), so the code is built
for this process only and never cached on disk. The JIT engine holding it is kept for the life of
the process (a capsule may outlive any Python object, up to interpreter shutdown).
"""
from __future__ import annotations

import ctypes
import functools
import threading

import llvmlite.binding as llvm
from llvmlite import ir

from .kernels.targets import init_llvm

__all__ = ["capsule_destructor"]

_I8, _I32, _I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
_PTR = _I8.as_pointer()
_VOID = ir.VoidType()

#: the CPython C-API functions the destructor calls: name -> (return type, argument types)
_CAPI = {
    "PyErr_Fetch": (_VOID, [_PTR.as_pointer()] * 3),
    "PyErr_Restore": (_VOID, [_PTR] * 3),
    "PyCapsule_IsValid": (_I32, [_PTR, _PTR]),
    "PyCapsule_GetPointer": (_PTR, [_PTR, _PTR]),
}

_lock = threading.Lock()
#: JIT engines holding built code; never released (capsules may be destroyed at shutdown)
_engines: list = []


def _capi(b: ir.IRBuilder, name: str, *args) -> ir.Value:
    """Call the C-API function ``name`` at its address in this process."""
    ret, argtys = _CAPI[name]
    addr = ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value
    fn = b.inttoptr(ir.Constant(_I64, addr), ir.FunctionType(ret, argtys).as_pointer(), name=name)
    return b.call(fn, list(args))


def _cstring(module: ir.Module, text: bytes, label: str) -> ir.GlobalVariable:
    """A private NUL-terminated constant string in ``module``."""
    data = bytearray(text + b"\0")
    g = ir.GlobalVariable(module, ir.ArrayType(_I8, len(data)), name=label)
    g.global_constant = True
    g.linkage = "private"
    g.initializer = ir.Constant(g.value_type, data)
    return g


def _build_destructor(module: ir.Module, fname: str, table: tuple) -> None:
    """Define ``void fname(PyObject *capsule)`` (see the module docstring) in ``module``."""
    fn = ir.Function(module, ir.FunctionType(_VOID, [_PTR]), name=fname)
    cap = fn.args[0]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    saved = [b.alloca(_PTR, name=n) for n in ("type", "value", "traceback")]
    _capi(b, "PyErr_Fetch", *saved)
    done = fn.append_basic_block("restore")
    for i, (name, offset) in enumerate(table):
        cname = b.bitcast(_cstring(module, name, f"name{i}"), _PTR)
        hit, miss = fn.append_basic_block(f"hit{i}"), fn.append_basic_block(f"miss{i}")
        valid = _capi(b, "PyCapsule_IsValid", cap, cname)
        b.cbranch(b.icmp_signed("!=", valid, ir.Constant(_I32, 0)), hit, miss)
        b.position_at_end(hit)
        managed = _capi(b, "PyCapsule_GetPointer", cap, cname)
        deleter_ty = ir.FunctionType(_VOID, [_PTR]).as_pointer()
        slot = b.bitcast(b.gep(managed, [ir.Constant(_I64, offset)]), deleter_ty.as_pointer())
        deleter = b.load(slot)
        with b.if_then(b.icmp_unsigned("!=", deleter, ir.Constant(deleter_ty, None))):
            b.call(deleter, [managed])
        b.branch(done)
        b.position_at_end(miss)
    b.branch(done)
    b.position_at_end(done)
    _capi(b, "PyErr_Restore", *[b.load(p) for p in saved])
    b.ret_void()


@functools.cache
def capsule_destructor(table: tuple) -> int:
    """Address of a native ``PyCapsule`` destructor: for the first ``(name, offset)`` of ``table``
    (``name`` bytes, ``offset`` of the deleter in the struct the capsule points to) whose name the
    capsule still has, it calls that deleter on the struct; the pending exception, if any, is set
    aside meanwhile and restored. Built once per process and table."""
    table = tuple((bytes(n), int(o)) for n, o in table)
    with _lock:
        init_llvm()
        triple = llvm.get_process_triple()
        module = ir.Module(name="egpu_native")
        module.triple = triple
        _build_destructor(module, "egpu_capsule_destructor", table)
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        tm = llvm.Target.from_triple(triple).create_target_machine(codemodel="jitdefault")
        engine = llvm.create_mcjit_compiler(mod, tm)  # the engine owns the module and tm
        engine.finalize_object()
        addr = engine.get_function_address("egpu_capsule_destructor")
        if not addr:
            raise RuntimeError("egpu_array._native: the capsule destructor was not found in its compiled code")
        _engines.append(engine)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))  # never disposed, even at shutdown
    return addr
