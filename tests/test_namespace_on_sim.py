"""The namespace test suite on the ``sim`` device (issue 8: "the namespace test suite passing on
sim in CI").

CI runs ``pytest`` once; the namespace tests create arrays on the default device, which they take
from EGPU_ARRAY_DEVICE. This test runs those modules again in two subprocesses side by side (one per
core) with EGPU_ARRAY_DEVICE=sim, so every array lives in emulated VRAM, every kernel goes through the
emulated GPU's compute queue and every byte through the emulated USB link. Hypothesis runs a
smaller profile there (``sim-ci``: 3 derandomized examples, no shrinking) to keep the run short.
The subprocess shares the kernel cache (EGPU_ARRAY_CACHE_DIR as set): sim runs host-target
kernels, the same the main run compiled for cpu, so it compiles little.

Left out, with the reason:

* tests/test_array.py: test_attributes, test_len_iter_repr, test_to_device_and_unknown_devices
  assert that the default device is ``cpu``; test_asarray_dtypes_and_copy asserts that
  ``asarray(numpy_array, copy=False)`` shares host memory and test_from_dlpack_shares_memory_on_cpu
  that DLPack shares it: cpu-only by design (sim memory is not host memory, such a call must copy
  or refuse). The rest of test_array.py runs.
* Modules that choose their devices themselves (test_fft, test_gemm, test_scatter, the interop
  and CLI tests, tests/backend) already run their sim cases in the main run.

Marked ``slow``: deselect with ``-m "not slow"``; it runs by default.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["test_elementwise.py", "test_statistical.py", "test_manipulation.py",
           "test_indexing.py", "test_searching.py", "test_sorting.py", "test_set.py",
           "test_linalg_funcs.py", "test_linalg.py", "test_array.py"]
CPU_ONLY = ["test_array.py::test_attributes", "test_array.py::test_len_iter_repr",
            "test_array.py::test_to_device_and_unknown_devices",
            "test_array.py::test_asarray_dtypes_and_copy",
            "test_array.py::test_from_dlpack_shares_memory_on_cpu"]
#: registers the sim-ci hypothesis profile, then runs pytest (tests/conftest.py loads the profile
#: named by EGPU_HYPOTHESIS_PROFILE)
RUNNER = """
import sys
from hypothesis import HealthCheck, Phase, settings
settings.register_profile(
    "sim-ci", max_examples=3, derandomize=True, deadline=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


#: modules per subprocess: two run side by side (one per core of the CI machine), about equal in time
GROUPS = [["test_elementwise.py", "test_statistical.py", "test_array.py", "test_linalg.py"],
          ["test_manipulation.py", "test_indexing.py", "test_searching.py", "test_sorting.py", "test_set.py",
           "test_linalg_funcs.py"]]


@pytest.mark.slow
def test_namespace_suite_passes_on_sim():
    assert sorted(m for g in GROUPS for m in g) == sorted(MODULES)
    files = [str(ROOT / "tests" / m) for m in MODULES if (ROOT / "tests" / m).exists()]
    assert len(files) == len(MODULES), "a namespace test module is missing"
    args = ["-q", "-p", "no:cacheprovider", "-m", "not cuda and not usb_hw"]
    args += [f"--deselect=tests/{t}" for t in CPU_ONLY]
    env = dict(os.environ, EGPU_ARRAY_DEVICE="sim", EGPU_HYPOTHESIS_PROFILE="sim-ci",
               EGPU_ARRAY_SIM_VRAM_MB="256")
    procs = [subprocess.Popen([sys.executable, "-c", RUNNER, *args, *(str(ROOT / "tests" / m) for m in group)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for group in GROUPS]
    for group, proc in zip(GROUPS, procs):
        out, _ = proc.communicate(timeout=1800)
        tail = out[-6000:]
        assert proc.returncode == 0, tail
        assert " passed" in out and " failed" not in out, tail
