#!/usr/bin/env bash
# One pass of every check that needs an NVIDIA GPU, time-boxed, with logs under $OUT:
#   1. what the machine has (GPU, driver, Python packages) and a first kernel on cuda:0;
#   2. pytest -m cuda on tests/backend/test_cuda_device.py (without the namespace re-run);
#   3. the GPU benchmarks (python -m benchmarks gpu) against CuPy and PyTorch;
#   4. the namespace test files re-run with cuda:0 as the default device (stopped with SIGINT at
#      its time box, so pytest still prints its summary of failures).
#   5. (step conf, not in the default set) the array-api-tests conformance suite on cuda:0.
# Usage: OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh [step...]   (steps: info tests bench ns conf)
# Time boxes (seconds) come from T_TESTS, T_BENCH, T_NS, T_CONF; NS_WORKERS processes run steps 4 and 5
# where pytest-xdist is installed; NS_FILES replaces step 4's file list, BENCH_ONLY (a comma-separated
# subset of benchmarks/gpu.py's sections) step 3's.
set -u
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 EGPU_ARRAY_CACHE_DIR="${EGPU_ARRAY_CACHE_DIR:-/tmp/egpu-cache}"
STEPS="${*:-info tests bench ns}"
NS_FILES="${NS_FILES:-tests/test_elementwise.py tests/test_statistical.py tests/test_array.py tests/test_manipulation.py
 tests/test_indexing.py tests/test_searching.py tests/test_sorting.py tests/test_set.py tests/test_linalg.py
 tests/test_linalg_funcs.py tests/test_fusion.py tests/test_dtypes.py tests/test_compaction.py tests/test_radix_sort.py
 tests/test_reduction_kernels.py}"
# (tests/test_gemm.py and tests/test_fft.py count the launches of host-only kernels, GEMM producer
# packing and fft lanes, that the cuda device does not have: on cuda:0 those counts fail by design)

step() { echo; echo "=== $1 ($(date +%T))"; }

for s in $STEPS; do
  case "$s" in
  info)
    step info
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/info.log"
    "$PY" - <<'EOF' 2>&1 | tee -a "$OUT/info.log"
import sys, time, numpy, llvmlite
print("python", sys.version.split()[0], "numpy", numpy.__version__, "llvmlite", llvmlite.__version__)
t = time.perf_counter()
import egpu_array as xp
from egpu_array.backend import cuda
print("import", round(time.perf_counter() - t, 2), "s; cuda devices:", cuda.list_devices())
d = xp.asarray(0.0, device="cuda:0").device
print(d.info())
t = time.perf_counter()
a = xp.arange(10, dtype=xp.float32, device="cuda:0")
print("first kernel:", numpy.asarray(a * 2 + 1), round(time.perf_counter() - t, 3), "s")
EOF
    ;;
  tests)
    step "pytest -m cuda tests/backend/test_cuda_device.py (namespace re-run excluded)"
    timeout -s INT "${T_TESTS:-120}" "$PY" -m pytest -m cuda -p no:cacheprovider -rfE --tb=short -q \
      --durations=8 tests/backend/test_cuda_device.py -k "not namespace_suite" 2>&1 | tee "$OUT/tests.log" | tail -60
    ;;
  bench)
    step "python -m benchmarks gpu"
    timeout -s INT "${T_BENCH:-120}" "$PY" -m benchmarks gpu --repeats "${REPEATS:-10}" ${BENCH_ONLY:+--only "$BENCH_ONLY"} 2>&1 | tee "$OUT/bench.log" | grep -v "^row: " | tail -40
    ;;
  ns)
    step "namespace tests on cuda:0 (EGPU_ARRAY_DEVICE=cuda:0, hypothesis profile quick)"
    # shellcheck disable=SC2086
    # with pytest-xdist (where installed) the files run in NS_WORKERS processes, each with its own context
    XDIST=""
    "$PY" -c "import xdist" 2>/dev/null && XDIST="-n ${NS_WORKERS:-8}"
    EGPU_ARRAY_DEVICE=cuda:0 EGPU_HYPOTHESIS_PROFILE=quick timeout -s INT "${T_NS:-150}" \
      "$PY" -m pytest -p no:cacheprovider -rfE --tb=short -q --maxfail=${NS_MAXFAIL:-60} $XDIST $NS_FILES 2>&1 \
      | tee "$OUT/ns.log" | grep -v "^\.\+\s*\[" | tail -80
    ;;
  conf)
    # the array-api-tests conformance suite with cuda:0 as the default device, the settings of
    # ../shared/tools/conformance/run.sh (max-examples 20, derandomized, seeded) but in NS_WORKERS
    # processes; AAT_CHECKOUT: an unpacked suite (run.sh makes one), AAT_TOOLS: that tools folder
    step "array-api-tests on cuda:0 (suite at ${AAT_CHECKOUT:-unset})"
    XDIST=""
    "$PY" -c "import xdist" 2>/dev/null && XDIST="-n ${NS_WORKERS:-8}"
    mkdir -p "$OUT/conf"
    ( cd "$AAT_CHECKOUT" && EGPU_ARRAY_DEVICE=cuda:0 ARRAY_API_TESTS_MODULE=egpu_array ARRAY_API_TESTS_VERSION=2025.12 \
      PYTHONHASHSEED=0 HYPOTHESIS_STORAGE_DIRECTORY="$OUT/conf/.hypothesis" \
      PYTHONPATH="$AAT_TOOLS/pytest_plugins:${PYTHONPATH:-}" timeout -s INT "${T_CONF:-200}" \
      "$PY" -m pytest -q -rN -p no:cacheprovider -p no:randomly -p aat_determinism $XDIST \
        --max-examples=20 --derandomize --disable-deadline -o junit_family=xunit2 \
        --junitxml="$OUT/conf/junit.xml" array_api_tests/ ) > "$OUT/conf/pytest.log" 2>&1
    "$PY" "$AAT_TOOLS/summarize.py" --module "egpu_array on cuda:0" --outdir "$OUT/conf" \
      --junit "$OUT/conf/junit.xml" --log "$OUT/conf/pytest.log" --pytest-rc 0 \
      --settings "suite ${AAT_CHECKOUT##*/}, 2025.12, max-examples 20, $XDIST" 2>&1 | tail -3
    cat "$OUT/conf/summary.txt"; head -40 "$OUT/conf/failures.txt" 2>/dev/null
    ;;
  *) echo "gpu_check.sh: unknown step $s (info tests bench ns conf)" >&2; exit 2 ;;
  esac
done
