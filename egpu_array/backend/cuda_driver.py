"""A small ctypes binding of exactly the CUDA driver API calls the cuda device uses.

Why ctypes and not NVIDIA's ``cuda-bindings``: we call about thirty driver functions with plain
integer/pointer arguments; a ctypes layer needs no extra package, no CUDA toolkit and no match
between a wheel's CUDA major version and the installed driver (the ``_v2`` entry points used here
exist in every driver since CUDA 4), and it loads ``libcuda`` only when a cuda device is first
asked for, so ``import egpu_array`` stays fast and clean on machines without NVIDIA hardware.

``driver()`` returns the process-wide :class:`Driver` (``cuInit`` done) or raises
:class:`~egpu_array.DeviceError` saying why there is none; :func:`device_count` returns 0 instead.
Every failing call raises the egpu_array exception of its ``CUresult`` (:func:`error_for`):
out of memory is :class:`~egpu_array.DeviceOutOfMemoryError` (also a MemoryError), PTX the driver
rejects is :class:`~egpu_array.kernels.ptx.KernelCompileError` with the JIT log, faults inside a
kernel are :class:`~egpu_array.KernelLaunchError`, a lost device :class:`~egpu_array.DeviceLostError`.
``EGPU_ARRAY_LIBCUDA`` names the library to load instead of the system's ``libcuda``.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading

from .._errors import DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelLaunchError

__all__ = ["Driver", "driver", "device_count", "error_for", "ERRORS", "STICKY", "CU", "ATTRIBUTES", "reset_for_tests"]

#: CUresult -> (name, egpu_array exception class); codes not listed raise DeviceError
ERRORS = {
    1: ("CUDA_ERROR_INVALID_VALUE", DeviceError),
    2: ("CUDA_ERROR_OUT_OF_MEMORY", DeviceOutOfMemoryError),
    3: ("CUDA_ERROR_NOT_INITIALIZED", DeviceError),
    4: ("CUDA_ERROR_DEINITIALIZED", DeviceLostError),
    34: ("CUDA_ERROR_STUB_LIBRARY", DeviceError),
    46: ("CUDA_ERROR_DEVICES_UNAVAILABLE", DeviceError),
    100: ("CUDA_ERROR_NO_DEVICE", DeviceError),
    101: ("CUDA_ERROR_INVALID_DEVICE", DeviceError),
    200: ("CUDA_ERROR_INVALID_IMAGE", "compile"),
    201: ("CUDA_ERROR_INVALID_CONTEXT", DeviceError),
    209: ("CUDA_ERROR_NO_BINARY_FOR_GPU", "compile"),
    218: ("CUDA_ERROR_INVALID_PTX", "compile"),
    222: ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "compile"),
    400: ("CUDA_ERROR_INVALID_HANDLE", DeviceError),
    500: ("CUDA_ERROR_NOT_FOUND", "compile"),
    600: ("CUDA_ERROR_NOT_READY", DeviceError),
    700: ("CUDA_ERROR_ILLEGAL_ADDRESS", KernelLaunchError),
    701: ("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", KernelLaunchError),
    702: ("CUDA_ERROR_LAUNCH_TIMEOUT", KernelLaunchError),
    714: ("CUDA_ERROR_HARDWARE_STACK_ERROR", KernelLaunchError),
    715: ("CUDA_ERROR_ILLEGAL_INSTRUCTION", KernelLaunchError),
    716: ("CUDA_ERROR_MISALIGNED_ADDRESS", KernelLaunchError),
    719: ("CUDA_ERROR_LAUNCH_FAILED", KernelLaunchError),
    802: ("CUDA_ERROR_SYSTEM_NOT_READY", DeviceError),
    803: ("CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", DeviceError),
    999: ("CUDA_ERROR_UNKNOWN", DeviceLostError),
}

#: codes after which the context is unusable: the process must reopen the device
STICKY = frozenset({700, 714, 715, 716, 719})

#: constants of cuda.h
CU = {"CU_MEMHOSTALLOC_PORTABLE": 1, "CU_STREAM_NON_BLOCKING": 1, "CU_EVENT_DEFAULT": 0,
      "CU_EVENT_DISABLE_TIMING": 2, "CU_JIT_INFO_LOG_BUFFER": 3, "CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES": 4,
      "CU_JIT_ERROR_LOG_BUFFER": 5, "CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES": 6}

#: CUdevice_attribute values read by the cuda device
ATTRIBUTES = {"max_threads_per_block": 1, "max_grid_dim_x": 5, "warp_size": 10,
              "multiprocessor_count": 16, "integrated": 18, "pci_bus_id": 33,
              "async_engine_count": 40, "unified_addressing": 41, "pci_device_id": 34,
              "compute_capability_major": 75, "compute_capability_minor": 76}

_p, _u, _i, _sz = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_size_t
_ptr = ctypes.POINTER
#: name -> argument types of every driver function we call (all return CUresult, an int)
_SIGNATURES = {
    "cuInit": [_u],
    "cuDriverGetVersion": [_ptr(_i)],
    "cuGetErrorName": [_i, _ptr(ctypes.c_char_p)],
    "cuGetErrorString": [_i, _ptr(ctypes.c_char_p)],
    "cuDeviceGetCount": [_ptr(_i)],
    "cuDeviceGet": [_ptr(_i), _i],
    "cuDeviceGetName": [ctypes.c_char_p, _i, _i],
    "cuDeviceGetAttribute": [_ptr(_i), _i, _i],
    "cuDeviceTotalMem_v2": [_ptr(_sz), _i],
    "cuDevicePrimaryCtxRetain": [_ptr(_p), _i],
    "cuDevicePrimaryCtxRelease_v2": [_i],
    "cuCtxSetCurrent": [_p],
    "cuCtxSynchronize": [],
    "cuMemGetInfo_v2": [_ptr(_sz), _ptr(_sz)],
    "cuModuleLoadDataEx": [_ptr(_p), _p, _u, _ptr(_i), _ptr(_p)],
    "cuModuleGetFunction": [_ptr(_p), _p, ctypes.c_char_p],
    "cuModuleUnload": [_p],
    "cuLaunchKernel": [_p, _u, _u, _u, _u, _u, _u, _u, _p, _ptr(_p), _ptr(_p)],
    "cuMemAlloc_v2": [_ptr(ctypes.c_uint64), _sz],
    "cuMemFree_v2": [ctypes.c_uint64],
    "cuMemHostAlloc": [_ptr(_p), _sz, _u],
    "cuMemFreeHost": [_p],
    "cuMemcpyHtoDAsync_v2": [ctypes.c_uint64, _p, _sz, _p],
    "cuMemcpyDtoHAsync_v2": [_p, ctypes.c_uint64, _sz, _p],
    "cuMemcpyDtoDAsync_v2": [ctypes.c_uint64, ctypes.c_uint64, _sz, _p],
    "cuMemsetD8Async": [ctypes.c_uint64, ctypes.c_ubyte, _sz, _p],
    "cuStreamCreate": [_ptr(_p), _u],
    "cuStreamDestroy_v2": [_p],
    "cuStreamSynchronize": [_p],
    "cuStreamWaitEvent": [_p, _p, _u],
    "cuEventCreate": [_ptr(_p), _u],
    "cuEventDestroy_v2": [_p],
    "cuEventRecord": [_p, _p],
    "cuEventSynchronize": [_p],
    "cuEventQuery": [_p],
    "cuEventElapsedTime": [_ptr(ctypes.c_float), _p, _p],
}


def error_for(code: int, what: str, names=None, log: str = "") -> DeviceError:
    """The exception for a failed driver call: ``what`` (the call and its subject) failed with
    ``code``; ``names`` is ``(name, description)`` from the driver when it can tell."""
    name, cls = ERRORS.get(code, (f"CUresult {code}", DeviceError))
    if cls == "compile":
        from ..kernels.ptx import KernelCompileError
        cls = KernelCompileError
    if names is not None:
        name = f"{names[0]} ({names[1]})"
    msg = f"cuda: {what} failed: {name}"
    if code in STICKY:
        msg += "; the CUDA context is unusable now: restart the process to use this GPU again"
    if log:
        msg += f"\n{log}"
    return cls(msg)


class Driver:
    """The loaded ``libcuda`` with ``cuInit`` done; ``call(name, *args)`` checks the result."""

    def __init__(self, path: str | None = None):
        self.path = path or _default_library()
        try:
            self.lib = ctypes.CDLL(self.path)
        except OSError as e:
            raise DeviceError(f"cuda: cannot load the CUDA driver library {self.path!r}: {e}") from None
        self._fns = {}
        self._raw = {}
        self.call("cuInit", 0, what="cuInit (driver initialisation)")
        v = ctypes.c_int()
        self.call("cuDriverGetVersion", ctypes.byref(v))
        self.version = v.value  # e.g. 12040 for CUDA 12.4

    def fn(self, name: str):
        """The ctypes function ``name`` with its signature (looked up once)."""
        f = self._fns.get(name)
        if f is None:
            try:
                f = getattr(self.lib, name)
            except AttributeError:
                raise DeviceError(f"cuda: the driver library {self.path!r} has no {name}: "
                                  "the driver is too old") from None
            f.argtypes = _SIGNATURES[name]
            f.restype = ctypes.c_int
            self._fns[name] = f
        return f

    def raw(self, name: str):
        """The ctypes function ``name`` without argument types (it returns the CUresult, an int),
        for the per-launch calls: about half the cost of :meth:`fn`'s converted call, but every
        argument must already be a ctypes object of the parameter's C type (``c_void_p``,
        ``c_uint64``, ``c_size_t``, an array passed by address) or an int below 2**31 for an
        ``int`` / ``unsigned`` parameter: a bare Python int is passed as a C int. The caller checks
        the result."""
        f = self._raw.get(name)
        if f is None:
            self.fn(name)  # (the library has it: else the DeviceError saying the driver is too old)
            f = self.lib[name]  # a function object of its own: fn(name)'s keeps its argtypes
            f.restype = ctypes.c_int
            self._raw[name] = f
        return f

    def call(self, name: str, *args, what: str | None = None, log: str = "") -> None:
        """Call driver function ``name``; raise the mapped exception if it fails."""
        code = self.fn(name)(*args)
        if code:
            raise error_for(code, what or name, self.describe(code), log)

    def describe(self, code: int):
        """``(name, description)`` of a CUresult from the driver, or None."""
        s1, s2 = ctypes.c_char_p(), ctypes.c_char_p()
        try:
            if self.fn("cuGetErrorName")(code, ctypes.byref(s1)) or \
                    self.fn("cuGetErrorString")(code, ctypes.byref(s2)):
                return None
        except DeviceError:
            return None
        if not s1.value:
            return None
        return s1.value.decode(errors="replace"), (s2.value or b"").decode(errors="replace")

    # -- small typed helpers -------------------------------------------------------------------
    def device_count(self) -> int:
        n = ctypes.c_int()
        self.call("cuDeviceGetCount", ctypes.byref(n))
        return n.value

    def device(self, index: int) -> int:
        d = ctypes.c_int()
        self.call("cuDeviceGet", ctypes.byref(d), index, what=f"cuDeviceGet({index})")
        return d.value

    def device_name(self, dev: int) -> str:
        buf = ctypes.create_string_buffer(256)
        self.call("cuDeviceGetName", buf, 256, dev)
        return buf.value.decode(errors="replace")

    def attribute(self, name: str, dev: int) -> int:
        v = ctypes.c_int()
        self.call("cuDeviceGetAttribute", ctypes.byref(v), ATTRIBUTES[name], dev, what=f"attribute {name}")
        return v.value

    def total_mem(self, dev: int) -> int:
        v = ctypes.c_size_t()
        self.call("cuDeviceTotalMem_v2", ctypes.byref(v), dev)
        return v.value

    def mem_info(self) -> tuple:
        """(free, total) bytes of the current context's device."""
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return free.value, total.value

    def out_ptr(self, name: str, *args, what: str | None = None) -> int:
        """Call ``name(&handle, *args)`` and return the handle (a pointer-sized int)."""
        h = ctypes.c_void_p()
        self.call(name, ctypes.byref(h), *args, what=what)
        return h.value or 0

    def mem_alloc(self, nbytes: int) -> int:
        p = ctypes.c_uint64()
        self.call("cuMemAlloc_v2", ctypes.byref(p), nbytes, what=f"cuMemAlloc of {nbytes} bytes")
        return p.value

    def load_module(self, image: bytes, what: str) -> int:
        """``cuModuleLoadDataEx`` of a PTX or cubin image; the JIT error log goes into the error."""
        size = 1 << 14
        err = ctypes.create_string_buffer(size)
        info = ctypes.create_string_buffer(size)
        opts = (ctypes.c_int * 4)(CU["CU_JIT_ERROR_LOG_BUFFER"], CU["CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES"],
                                  CU["CU_JIT_INFO_LOG_BUFFER"], CU["CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES"])
        vals = (ctypes.c_void_p * 4)(ctypes.cast(err, ctypes.c_void_p), size,
                                     ctypes.cast(info, ctypes.c_void_p), size)
        data = ctypes.create_string_buffer(image if image.endswith(b"\0") else image + b"\0")
        mod = ctypes.c_void_p()
        code = self.fn("cuModuleLoadDataEx")(ctypes.byref(mod), data, 4, opts, vals)
        if code:
            log = err.value.decode(errors="replace").strip()
            raise error_for(code, f"loading {what} (cuModuleLoadDataEx)", self.describe(code),
                            f"JIT log:\n{log}" if log else "")
        return mod.value


def _default_library() -> str:
    env = os.environ.get("EGPU_ARRAY_LIBCUDA")
    if env:
        return env
    if sys.platform == "win32":
        return "nvcuda.dll"
    return "libcuda.so.1"


_driver: Driver | None = None
_driver_error: DeviceError | None = None
_lock = threading.Lock()


def driver() -> Driver:
    """The process-wide Driver; raises DeviceError (the same one every time) when there is none."""
    global _driver, _driver_error
    if _driver is not None:
        return _driver
    with _lock:
        if _driver is None and _driver_error is None:
            try:
                _driver = Driver()
            except DeviceError as e:
                _driver_error = e
        if _driver is None:
            raise DeviceError(str(_driver_error))
        return _driver


def device_count() -> int:
    """How many CUDA devices the driver sees; 0 without a driver, a GPU, or a working cuInit."""
    try:
        return driver().device_count()
    except DeviceError:
        return 0


def reset_for_tests() -> None:
    """Forget the loaded driver (or the reason there is none); tests use this."""
    global _driver, _driver_error
    with _lock:
        _driver, _driver_error = None, None
