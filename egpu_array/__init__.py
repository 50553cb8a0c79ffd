"""egpu_array: an Array API (2025.12) namespace whose arrays live on an external GPU.

Arrays stay resident on their device; operations build a lazy graph that is fused into kernels
generated with llvmlite when a result is needed. See README.md and docs/.
"""
__version__ = "0.1.0"
__array_api_version__ = "2025.12"

from ._errors import (DeviceError, DeviceLostError, DeviceOutOfMemoryError,  # noqa: E402
                      KernelCompileError, KernelLaunchError, LinkError, LinkStallError,
                      LinkTimeoutError, TransferError)
from .backend import cpu as _cpu_backend  # noqa: E402,F401  (registers the cpu device)
from .backend.usb import sim as _sim_backend  # noqa: E402,F401
from .backend import cuda as _cuda_backend  # noqa: E402,F401  (lists no devices without a driver)
from .backend.device import Device  # noqa: E402
from ._dtypes import (bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,  # noqa: E402
                      float32, float64, complex64, complex128)
from ._array import Array, _install_operators  # noqa: E402
from .profiler import profile  # noqa: E402
from ._info import __array_namespace_info__, default_device  # noqa: E402
from ._utility import synchronize  # noqa: E402

# constants
import math as _math  # noqa: E402
e = _math.e
pi = _math.pi
inf = _math.inf
nan = _math.nan
newaxis = None

# creation functions
from ._creation import (arange, asarray, empty, empty_like, eye, from_dlpack, full,  # noqa: E402
                        full_like, linspace, meshgrid, ones, ones_like, tril, triu, zeros, zeros_like)
# data type functions
from ._data_type import astype, can_cast, finfo, iinfo, isdtype, result_type  # noqa: E402
# element-wise functions
from ._elementwise import (abs, acos, acosh, add, asin, asinh, atan, atan2, atanh,  # noqa: E402
                           bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_or,
                           bitwise_right_shift, bitwise_xor, ceil, clip, conj, copysign, cos, cosh,
                           divide, equal, exp, expm1, floor, floor_divide, greater, greater_equal,
                           hypot, imag, isfinite, isinf, isnan, less, less_equal, log, log1p, log2,
                           log10, logaddexp, logical_and, logical_not, logical_or, logical_xor,
                           maximum, minimum, multiply, negative, nextafter, not_equal, positive, pow,
                           real, reciprocal, remainder, round, sign, signbit, sin, sinh, sqrt, square,
                           subtract, tan, tanh, trunc)
# searching functions
from ._searching import where  # noqa: E402
from ._manipulation import (broadcast_arrays, broadcast_shapes, broadcast_to, concat,  # noqa: E402
                            expand_dims, flip, moveaxis, permute_dims, repeat, reshape, roll,
                            squeeze, stack, tile, unstack)
# statistical functions
from ._statistical import (all, any, cumulative_prod, cumulative_sum, diff, max, mean, min,  # noqa: E402
                           prod, std, sum, var)
# searching, sorting and set functions
from ._searching import argmax, argmin, count_nonzero, isin, nonzero, searchsorted  # noqa: E402
from ._sorting import argsort, sort  # noqa: E402
from ._set import unique_all, unique_counts, unique_inverse, unique_values  # noqa: E402
# linear algebra functions
from ._linalg_funcs import matmul, matrix_transpose, tensordot, vecdot  # noqa: E402
# indexing functions
from ._gather import take, take_along_axis  # noqa: E402

from . import linalg  # noqa: E402  (the linalg extension)
from . import fft  # noqa: E402  (the fft extension)

_install_operators()

# the public names: functions, constants, dtypes, classes and the two extensions; not the
# implementation packages (backend, kernels) or the profiler module (``profile`` is its entry)
__all__ = sorted(name for name, obj in list(globals().items())
                 if not name.startswith("_")
                 and (not isinstance(obj, type(_math)) or name in ("linalg", "fft"))) + ["__array_namespace_info__"]
