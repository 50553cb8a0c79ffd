"""NVPTX code generation without a GPU: the PTX of the kernel specs the namespace produces
assembles with ``ptxas`` for sm_80 and sm_90 (and a third of the modules for sm_86 and sm_89).

A worker process (this file run as a script) runs a battery of namespace operations on the cpu
device, recording every KernelSpec requested through ``kernels.cache.get_program``; it then
generates NVPTX for each spec (in batches of several kernels per module, one module per arch) and
writes the PTX files and a manifest. Two workers run side by side (:data:`WORKERS`), each
generating every other module. Running it in a subprocess means an LLVM abort in the NVPTX
backend would fail this test instead of killing pytest. Specs the NVPTX path refuses (a
KernelCompileError) must match :data:`NOT_LOWERED` exactly: nothing is skipped silently.

Besides the battery, the worker records :func:`elementwise_grid` (every op of kernels.ops.OPS on
every dtype the namespace accepts, with arrays and Python scalars) and :func:`regressions` (forms
that failed on the first GPU run: pow of any base, %, //, a fused chain, every norm); their kernels
that the battery lacks are assembled for sm_80 only (the PTX that every GPU loads), to keep the time.
The first GPU run had found what the battery missed: it built pow only as ``pow(abs(x), x)``, whose
non-negative base lets O3 fold away the NaN tests that elsewhere become ``llvm.is.fpclass``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARCHS = (80, 86, 89, 90)
#: arch the PTX is generated for -> archs ptxas assembles it for. The cuda device loads sm_80 PTX
#: on every GPU of compute capability 8.0 and up, so this is the PTX that runs on all four.
GEN_ARCHS = {80: ARCHS}
BATCH = 16  # kernels per PTX module (ptxas costs ~50 ms per call and ~0.2-0.5 s per module)
GRID_BATCH = 40  # kernels per module of the op x dtype grid (assembled for sm_80 at -O0 only)
#: every module at -O0 for every arch (parses, checks and assembles every instruction for that arch
#: at a third of the time of -O3); a few modules also at -O3 for sm_80, as the driver's JIT does
PTXAS_OPT = {80: "-O0", 86: "-O0", 89: "-O0", 90: "-O0"}
O3_MODULES = 4
#: arch -> every how many modules ptxas assembles for it: all for sm_80 (the PTX the cuda device
#: loads) and sm_90 (the H100 the GPU runs use), a third for sm_86 and sm_89, whose ptxas has taken
#: every module sm_80's takes so far (7 s an arch for all of them on the CI machine)
ARCH_SHARE = {80: 1, 86: 3, 89: 3, 90: 1}

#: kinds every battery run must cover (the test fails if the battery stops producing one)
REQUIRED_KINDS = {"elementwise", "reduce", "sort", "search", "compact", "scatter", "copies", "gemm", "fft",
                  "ptx_gemm"}


def gpu_forms(spec) -> list:
    """Specs the cuda device runs instead of a recorded cpu spec: the tiled GEMM of a GemmSpec;
    for an unchunked row-order reduction (not a scan) the GPU walks of kernels.ptx_reduce that the
    cpu battery cannot produce: a block per output (walk "blocks"), the chunked block form, and
    chunks spread over neighbouring threads (walk "spread", chunked; not argmax/argmin); for a
    radix scatter the per-pass recount (``hist``) that GPU targets run where the host's scatter
    counts the next digit itself, and for the host's first count (``hist_low``) the GPU's
    (``hist_all``: _sorting._radix_rows)."""
    from dataclasses import replace

    from egpu_array.kernels.spec import REDUCE_OPS
    if spec.kind == "sort" and spec.phase in ("scatter", "hist_low"):
        return [replace(spec, phase="hist" if spec.phase == "scatter" else "hist_all")]
    if spec.kind == "reduce" and spec.order == "inner" and not spec.chunked and not REDUCE_OPS[spec.op]:
        forms = [replace(spec, walk="blocks", short=0)]
        if spec.op in ("argmax", "argmin"):
            return forms + [replace(spec, chunked=True, short=0)]
        return forms + [replace(spec, chunked=True, walk="spread", short=0)]
    if spec.kind != "gemm":
        return []
    from dataclasses import fields

    from egpu_array.kernels.ptx_gemm import PtxGemmSpec
    # the cuda device computes producers of the operands first (its tiled GEMM reads them from memory)
    return [PtxGemmSpec(**dict({f.name: getattr(spec, f.name) for f in fields(spec)}, a_prod=None, b_prod=None))]


def not_lowered(spec) -> str | None:
    """Why ``spec`` has no NVPTX lowering yet (None: it must compile and assemble).

    Nothing is refused now: complex transcendentals are emitted as IR (kernels/complex_math) instead
    of calls to C99 complex libm functions.
    """
    return None


NOT_LOWERED = not_lowered

#: unary functions that are one LLVM instruction or intrinsic: generated for float32 only
CHEAP_UNARY = {"abs", "ceil", "floor", "isfinite", "isinf", "isnan", "negative", "round", "sign",
               "signbit", "sqrt", "square", "trunc", "reciprocal"}


# ---------------------------------------------------------------------------------- the battery
def battery(xp, np):
    """Namespace operations on the cpu device covering every kernel kind."""
    rng = np.random.default_rng(0)
    real = ["float32", "float64"]
    ints = ["int8", "int64", "uint8", "uint32"]
    cplx = ["complex64", "complex128"]
    arrs = {}
    for dt in real + ints + cplx + ["bool"]:
        base = rng.standard_normal((6, 7)) * 5
        if dt == "bool":
            h = base > 0
        elif dt.startswith("complex"):
            h = (base + 1j * rng.standard_normal((6, 7))).astype(dt)
        else:
            h = base.astype(dt) if dt.startswith("float") else np.abs(base).astype(dt) + 1
        arrs[dt] = xp.asarray(h)
    out = []
    unary_f = ["abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh", "exp",
               "expm1", "floor", "isfinite", "isinf", "isnan", "log", "log1p", "log2", "log10",
               "negative", "round", "sign", "signbit", "sin", "sinh", "sqrt", "square", "tan", "tanh",
               "trunc", "reciprocal"]
    for k, dt in enumerate(real):
        x = arrs[dt]
        # every function on float32; on float64 every other math-library one (their f64 code
        # differs in constants more than in structure; the test time stays under a minute)
        math_f = [f for f in unary_f if f not in CHEAP_UNARY]
        out += [getattr(xp, f)(x) for f in (unary_f if k == 0 else math_f[1::2])]
        out += [xp.atan2(x, x + 1), xp.hypot(x, x), xp.pow(xp.abs(x), x), xp.logaddexp(x, x),
                xp.remainder(x, x + 3), xp.floor_divide(x, x + 3), xp.maximum(x, x * 2),
                xp.minimum(x, 1.5), xp.copysign(x, -x), xp.nextafter(x, x + 1), xp.clip(x, -1, 1),
                xp.where(x > 0, x, -x), xp.astype(x, xp.int32), xp.astype(x, xp.uint8), xp.astype(x, xp.bool),
                x * 2 + 1 < x, xp.sin(x) * xp.exp(-x) + x * x]
    for dt in ints:
        x = arrs[dt]
        out += [x + x, x - 1, x * x, x // (x - 2), x % 3, x & x, x | 5, x ^ x, ~x, x << 2, x >> 1,
                xp.abs(x), xp.sign(x), xp.maximum(x, x), x == x, xp.astype(x, xp.float64), x / x]
    for dt in cplx:
        x = arrs[dt]
        out += [x * x, x / (x + 1), xp.abs(x), xp.conj(x), xp.real(x), xp.imag(x), xp.sign(x),
                x == x, xp.exp(x), xp.sqrt(x), xp.sin(x), xp.log(x)]
    b = arrs["bool"]
    out += [xp.logical_and(b, b), xp.logical_or(b, ~b), xp.logical_xor(b, b), xp.logical_not(b)]
    # creation and copies
    out += [xp.arange(10), xp.linspace(0, 1, 7), xp.eye(4, 5, k=1), xp.tril(arrs["float32"]),
            xp.full((3, 2), 2.5), xp.ones((2, 3), dtype=xp.int8), xp.zeros_like(arrs["float64"])]
    out += [xp.concat([arrs["float32"], arrs["float64"]]), xp.stack([arrs["int64"], arrs["uint32"]]),
            xp.roll(arrs["float32"], 2, axis=1), xp.flip(arrs["int64"]), xp.tile(arrs["int8"], (2, 1)),
            xp.repeat(arrs["float32"], 2, axis=0), xp.permute_dims(arrs["float64"], (1, 0)) + 1]
    # reductions and scans
    for dt in real + ["int64", "uint8", "complex128"]:
        x = arrs[dt]
        out += [xp.sum(x), xp.sum(x, axis=0), xp.sum(x, axis=1), xp.prod(x, axis=1), xp.mean(x) if dt not in ints else xp.sum(x),
                xp.cumulative_sum(x, axis=1)]
        if not dt.startswith("complex"):
            out += [xp.max(x), xp.min(x, axis=0), xp.argmax(x), xp.argmin(x, axis=1),
                    xp.cumulative_prod(x, axis=0)]
    for dt in real:
        x = arrs[dt]
        out += [xp.std(x, axis=0), xp.var(x), xp.all(x > 0, axis=1), xp.any(x > 0), xp.count_nonzero(x),
                xp.diff(x, axis=1), xp.vecdot(x, x), xp.matmul(x, xp.matrix_transpose(x))]
        big = xp.asarray(rng.standard_normal(1 << 18).astype(dt))
        out += [xp.sum(big), xp.max(big * 2), xp.sum(xp.reshape(big, (4, -1)), axis=1)]
        col = xp.asarray(rng.standard_normal((512, 64)).astype(dt))
        out += [xp.sum(col, axis=0)]
    # sorting, searching, sets
    for dt in real + ["int64", "uint8", "bool"]:
        x = arrs[dt]
        out += [xp.sort(x, axis=1), xp.argsort(x, axis=0, descending=True), xp.sort(xp.reshape(x, (-1,)))]
        flat = xp.reshape(x, (-1,))
        out += [xp.isin(flat, flat[:5]), xp.nonzero(x)[0], xp.unique_values(flat), xp.unique_all(flat).counts]
        if dt != "bool":
            out.append(xp.searchsorted(xp.sort(flat), flat))
    bigsort = xp.asarray(rng.standard_normal(1 << 17).astype("float32"))
    out += [xp.sort(bigsort), xp.argsort(bigsort)]
    # indexing: gather, take, scatter
    x = arrs["float64"]
    idx = xp.asarray(np.array([0, 2, -1, 3]))
    out += [x[idx], xp.take(x, idx, axis=1), xp.take_along_axis(x, xp.argsort(x, axis=1), axis=1),
            x[x > 0], x[1:4, ::2] * 2]
    for dt in ("float32", "complex128"):
        y = xp.asarray(arrs[dt], copy=True)
        y[idx] = y[0]
        y[y == y] = xp.reshape(y, (-1,))
        out.append(y)
    for o in out:
        np.asarray(o)
    # linear algebra (run apart: an error here is reported without losing the specs above)
    errors = []
    try:
        a = xp.asarray(rng.standard_normal((64, 48)).astype("float32"))
        c = xp.asarray(rng.standard_normal((48, 32)).astype("float32"))
        for o in (a @ c, xp.tensordot(a, a, axes=([0], [0])), xp.linalg.vector_norm(a),
                  xp.linalg.matrix_norm(a), xp.maximum(a @ c + 1, 0), xp.tanh(a.mT @ a),
                  xp.maximum(xp.exp(a * 0.1) @ (c - 1) + 1, 0)):  # producers fused into the packing
            np.asarray(o)
    except Exception as e:  # reported by test_battery_ran_cleanly
        errors.append(f"linear algebra: {type(e).__name__}: {e}")
    try:  # fft (run apart, as above)
        z = xp.asarray((rng.standard_normal(60) + 1j * rng.standard_normal(60)).astype("complex64"))
        r = xp.asarray(rng.standard_normal((8, 30)))
        for o in (xp.fft.fft(z), xp.fft.ifft(z[:32]), xp.fft.rfft(r, axis=1), xp.fft.fftn(xp.astype(r, xp.complex128)),
                  xp.fft.irfft(xp.fft.rfft(r))):
            np.asarray(o)
    except Exception as e:
        errors.append(f"fft: {type(e).__name__}: {e}")
    return errors


def regressions(xp, np) -> None:
    """Forms the first GPU run refused (llvm.is.fpclass, made by O3 from pow's NaN tests, which
    pow(abs(x), x) of the battery folds away; vector.reduce.fadd in norms) or got wrong (frem): pow
    of any base and with Python scalars, % and //, the chain of tests/test_elementwise.py's
    test_fusion_of_a_chain_matches_numpy, every ord of tests/test_linalg.py's norms test."""
    rng = np.random.default_rng(2)
    out = []
    for dt in ("float32", "float64", "complex64", "complex128"):
        h = rng.standard_normal((3, 4)) * 3
        x = xp.asarray((h + 1j * h[::-1] if dt.startswith("complex") else h).astype(dt))
        out += [xp.pow(x, x), x ** 2.5, 2.0 ** x, x ** 2]
        if not dt.startswith("complex"):
            out += [x % 2.5, 1.5 // x, x // 0.7, xp.remainder(-x, x - 7)]
    for dt in ("int8", "int64", "uint8", "uint32"):
        x = xp.asarray((np.abs(rng.standard_normal((3, 4))) * 5).astype(dt))
        out += [xp.pow(x, x % 4), x ** 3]
    h = xp.asarray(np.linspace(-3, 3, 50))
    out.append(xp.sin(h) * 2 + xp.exp(-h) / (1 + h * h) - h // 0.7 + xp.where(h > 0, h, -h) ** 2)
    for o in out:
        np.asarray(o)
    for dt in ("float32", "float64"):
        t = xp.asarray(rng.standard_normal((2, 4, 5)).astype(dt))
        for ord in (2, 1, np.inf, -np.inf, 0, 3):
            np.asarray(xp.linalg.vector_norm(t, axis=-1, ord=ord))
        for ord in ("fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"):
            np.asarray(xp.linalg.matrix_norm(t, ord=ord))


DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
          "float64", "complex64", "complex128")
#: dtypes whose binary ops are also generated with a Python scalar operand (O3 folds constants);
#: float64/complex128 and integers differ from these in constants only (regressions() has their pow, %, //)
SCALAR_DTYPES = {"float32": 2.5, "complex64": 1.5 - 2j}


def elementwise_grid(xp, np) -> list:
    """Every op of kernels.ops.OPS on every dtype the namespace accepts for it (two distinct
    arrays for binary ops; a Python scalar on either side for :data:`SCALAR_DTYPES`); returns the
    (op, dtype) pairs run. Kernels are recorded by the caller."""
    from egpu_array.kernels.ops import OPS
    rng = np.random.default_rng(1)
    ran = []
    for dt in DTYPES:
        h = rng.standard_normal((2, 5)) * 3
        if dt.startswith("complex"):
            h = h + 1j * h[::-1]
        x, y = (xp.asarray(v > 0 if dt == "bool" else v.astype(dt)) for v in (h, h[:, ::-1] + 1))
        cond = xp.asarray(h > 0)
        for name, op in OPS.items():
            f = getattr(xp, name)
            args = {1: [(x,)], 2: [(x, y)], 3: [(cond, x, y)]}[op.arity]
            if op.arity == 2 and dt in SCALAR_DTYPES:
                args += [(x, SCALAR_DTYPES[dt]), (SCALAR_DTYPES[dt], y)]
            try:
                res = [f(*a) for a in args]
            except TypeError:  # the op does not take this dtype (the namespace's category check)
                continue
            for r in res:
                np.asarray(r)
            ran.append((name, dt))
    return ran


# ---------------------------------------------------------------------------------- worker
def _worker(outdir: Path, part: int = 0, parts: int = 1) -> None:
    """Record the battery's specs, generate NVPTX per arch in batches, write PTX + manifest.
    ``part`` of ``parts``: this worker generates every ``parts``-th batch from its ``part``-th
    (the fixture runs one worker per core; each records the same specs) and writes
    ``manifest.<part>.json``."""
    os.environ["EGPU_ARRAY_CACHE_DIR"] = "off"  # host kernels below are unoptimized: never cache them
    import llvmlite.binding as llvm
    import numpy as np

    import egpu_array as xp
    from egpu_array.kernels import cache, targets

    def quick_optimize(self, module):
        """Host kernels for the battery only need to run correctly on small data: skip O3."""
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        return mod
    targets.HostTarget.optimize = quick_optimize
    from egpu_array import _sorting
    _sorting.ROW_CHUNKS_MIN = _sorting.RADIX_MIN  # (the battery's rows take the chunked radix sort: the GPU's)
    from egpu_array.kernels.targets import NVPTXTarget

    t_start = time.perf_counter()
    specs, grid_specs = {}, {}
    cache.recorders.append(lambda dev, spec: specs.setdefault(spec, None))
    try:
        errors = battery(xp, np)
        cache.recorders[:] = [lambda dev, spec: grid_specs.setdefault(spec, None)]
        regressions(xp, np)
        ran = elementwise_grid(xp, np)
    finally:
        cache.recorders.clear()
    specs = list(specs)
    specs = list(dict.fromkeys(specs + [g for s in specs for g in gpu_forms(s)]))  # (forms may coincide)
    grid = [s for s in grid_specs if s not in set(specs)]  # assembled for sm_80 only (below)
    grid += [g for s in grid for g in gpu_forms(s) if g not in set(specs)]
    manifest = {"specs": [], "files": {}, "grid_files": [], "battery_errors": errors, "grid_ran": ran,
                "grid_pairs": sorted({(ins[0], ins[1]) for s in grid_specs for ins in getattr(s, "expr", ())
                                      if len(ins) > 2 and isinstance(ins[1], str)})}
    refused = {}
    t0 = time.perf_counter()
    everything = specs + grid
    for arch in GEN_ARCHS:
        target = NVPTXTarget(arch)
        files = _generate(target, everything, specs, outdir, f"sm{arch}", BATCH, refused, part, parts)
        for a in GEN_ARCHS[arch]:
            manifest["files"][str(a)] = files
    manifest["grid_files"] = _generate(NVPTXTarget(80), everything, grid, outdir, "grid", GRID_BATCH, refused,
                                       part, parts)
    specs = everything
    manifest["seconds"] = {"battery": t0 - t_start, "nvptx": time.perf_counter() - t0}
    from egpu_array.kernels.ptx_reduce import block_reducible
    manifest["block_reductions"] = sum(map(block_reducible, specs))
    from egpu_array.kernels.ptx_scan import block_scannable
    manifest["block_scans"] = sum(map(block_scannable, specs))
    manifest["block_argreductions"] = sum(block_reducible(s) and s.op in ("argmax", "argmin") for s in specs)
    from egpu_array.kernels.ptx_sort import block_sortable
    manifest["block_sort_phases"] = sorted({s.phase for s in specs if block_sortable(s)})
    for s in specs:
        manifest["specs"].append({"kind": s.kind, "name": s.name, "repr": repr(s),
                                  "refused": refused.get(s), "not_lowered": not_lowered(s)})
    (outdir / f"manifest.{part}.json").write_text(json.dumps(manifest, indent=1))


def _generate(target, everything, todo, outdir, prefix, batch, refused, part, parts) -> list:
    """PTX files of the specs ``todo`` (kernel ``k<i>``, i their index in ``everything``), ``batch``
    kernels a module, this worker's share (batch ``part``, ``part + parts``, ...); a module refused
    (KernelCompileError) is split to find the spec, which goes into ``refused``. Returns the file
    names."""
    from egpu_array.kernels import cache
    from egpu_array.kernels.ptx import KernelCompileError
    index = {s: i for i, s in enumerate(everything)}
    todo = [s for s in todo if s not in refused]
    batches = [todo[i:i + batch] for i in range(0, len(todo), batch)][part::parts]
    prefix = f"{prefix}_p{part}"
    files = []
    while batches:
        group = batches.pop(0)
        names = tuple(f"k{index[s]}" for s in group)
        module = target.new_module(f"{prefix}_{len(files)}")
        try:
            for s, n in zip(group, names):
                print(f"{prefix} {n} {s.kind} {s.name}", flush=True)
                gen = target.generators.get(s.kind) or cache.generator_for(s.kind)  # as get_program
                gen(s, module, n)
            ptx = target.compile(module, names)
        except KernelCompileError as e:
            if len(group) == 1:
                refused[group[0]] = str(e)
            else:
                batches[:0] = [[s] for s in group]  # find which one
            continue
        path = outdir / f"{prefix}_{len(files)}.ptx"
        path.write_bytes(ptx)
        files.append(path.name)
    return files


#: workers the fixture runs side by side (one per core of the CI machine: 61 -> 37 s there)
WORKERS = 2


@pytest.fixture(scope="module")
def battery_ptx(tmp_path_factory):
    """The PTX files and the merged manifest of :data:`WORKERS` workers (each records the same
    specs and generates its share of the modules)."""
    out = tmp_path_factory.mktemp("ptx")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    procs = [subprocess.Popen([sys.executable, __file__, str(out), str(k), str(WORKERS)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=root) for k in range(WORKERS)]
    for k, proc in enumerate(procs):
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, (f"NVPTX generation worker {k} failed (rc {proc.returncode}); last kernels:\n"
                                      + "\n".join(stdout.splitlines()[-5:]) + "\n" + stderr[-3000:])
    parts = [json.loads((out / f"manifest.{k}.json").read_text()) for k in range(WORKERS)]
    return out, _merged(parts)


def _merged(parts: list) -> dict:
    """One manifest of the workers' ones: the recorded specs must agree; files are concatenated,
    a spec counts as refused where the worker that generated it refused it."""
    manifest = parts[0]
    for other in parts[1:]:
        assert [s["repr"] for s in other["specs"]] == [s["repr"] for s in manifest["specs"]], \
            "the NVPTX workers recorded different specs"
        for arch, files in other["files"].items():
            manifest["files"][arch] = manifest["files"][arch] + files
        manifest["grid_files"] += other["grid_files"]
        for mine, theirs in zip(manifest["specs"], other["specs"]):
            mine["refused"] = mine["refused"] or theirs["refused"]
    return manifest


def test_battery_ran_cleanly(battery_ptx):
    _, manifest = battery_ptx
    assert not manifest["battery_errors"]


def test_battery_covers_every_kind(battery_ptx):
    _, manifest = battery_ptx
    kinds = {s["kind"] for s in manifest["specs"]}
    assert REQUIRED_KINDS <= kinds, f"battery lost kinds {REQUIRED_KINDS - kinds}"
    assert len(manifest["specs"]) > 100


def test_block_reductions_are_in_the_battery(battery_ptx):
    from egpu_array.kernels.ptx_reduce import block_reducible  # noqa: F401
    _, manifest = battery_ptx
    assert manifest["block_reductions"] >= 4


def test_block_scans_and_argreductions_are_in_the_battery(battery_ptx):
    """cumsum/cumprod as block scans (kernels.ptx_scan) and chunked argmax/argmin as block
    reductions (kernels.ptx_reduce) are generated and assembled with the rest."""
    _, manifest = battery_ptx
    assert manifest["block_scans"] >= 8 and manifest["block_argreductions"] >= 4
    assert manifest["block_sort_phases"] == ["hist", "hist_all", "prefix", "scatter", "scatter_first"]  # ptx_sort


def test_refused_specs_are_exactly_the_listed_ones(battery_ptx):
    """A spec is refused by the NVPTX path iff NOT_LOWERED names it; report the list."""
    _, manifest = battery_ptx
    wrong = [(s["name"], s["refused"], s["not_lowered"]) for s in manifest["specs"]
             if bool(s["refused"]) != bool(s["not_lowered"])]
    assert not wrong, f"refused vs NOT_LOWERED mismatch: {wrong}"
    listed = sorted({s["name"] for s in manifest["specs"] if s["not_lowered"]})
    print(f"\nnot yet lowered for NVPTX ({len(listed)}): {listed}")
    for s in manifest["specs"]:
        if s["refused"]:
            assert "cannot be compiled for NVPTX" in s["refused"]


@pytest.mark.parametrize("arch", ARCHS)
def test_ptx_assembles(battery_ptx, arch):
    """The generated modules (all of them, or every ARCH_SHARE[arch]-th) assemble with ptxas for the arch."""
    out, manifest = battery_ptx
    _assemble(out, manifest["files"][str(arch)][::ARCH_SHARE[arch]], arch, PTXAS_OPT[arch])


def test_grid_covers_every_elementwise_op_and_dtype(battery_ptx):
    """The grid ran every op of kernels.ops.OPS on every dtype the namespace accepts, and each pair
    is in a recorded kernel (ops on integers that compute in float64, as divide, appear as such;
    the logical ops take numeric operands by their truth, as bool)."""
    from egpu_array.kernels.ops import OPS
    _, manifest = battery_ptx
    ran = {tuple(p) for p in manifest["grid_ran"]}
    pairs = {tuple(p) for p in manifest["grid_pairs"]}
    assert {op for op, _ in ran} == set(OPS)
    assert len(ran) >= 300 and {dt for _, dt in ran} == set(DTYPES)
    missing = sorted((op, dt) for op, dt in ran if (op, dt) not in pairs and (op, "float64") not in pairs
                     and not (op.startswith("logical_") and (op, "bool") in pairs))
    assert not missing, missing
    assert manifest["grid_files"]


def test_grid_assembles(battery_ptx):
    """The kernels of the op x dtype grid and of :func:`regressions` (those the battery does not
    already have) assemble for sm_80 (the PTX every GPU loads; the battery covers the other archs)."""
    out, manifest = battery_ptx
    _assemble(out, manifest["grid_files"], 80, "-O0")


def test_ptx_assembles_optimized(battery_ptx):
    out, manifest = battery_ptx
    _assemble(out, manifest["files"]["80"][:O3_MODULES], 80, "-O3")


def _assemble(out, files, arch, opt):
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas not found on PATH (install the CUDA toolkit or nvidia-cuda-nvcc to run this)")
    assert files
    # two ptxas processes at a time (each ~50-100 ms per module)
    procs = []
    for name in files:
        procs.append((name, subprocess.Popen([ptxas, f"-arch=sm_{arch}", opt, str(out / name), "-o", os.devnull],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        if len(procs) >= 2:
            _check_ptxas(arch, *procs.pop(0))
    for p in procs:
        _check_ptxas(arch, *p)


def _check_ptxas(arch, name, proc):
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"ptxas sm_{arch} {name}: {err[-3000:]}"


# ---------------------------------------------------------------------------------- the checker
CHECK_SCRIPT = """
import sys
from llvmlite import ir
from egpu_array.kernels.irb import F32, F64, I64, intrinsic, extern
from egpu_array.kernels.ptx import KernelCompileError
from egpu_array.kernels.targets import NVPTXTarget

def kernel(call):
    t = NVPTXTarget(80)
    m = t.new_module("k_c")
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name="k_c")
    b = ir.IRBuilder(fn.append_basic_block("e"))
    p = b.bitcast(fn.args[0], F64.as_pointer())
    b.store(call(b, b.load(p)), p)
    b.ret_void()
    return t.compile(m)

cases = {
    "sin": lambda b, x: intrinsic(b, "llvm.sin", F64, x),
    "exp32": lambda b, x: b.fpext(intrinsic(b, "llvm.exp", F32, b.fptrunc(x, F32)), F64),
    "csin": lambda b, x: extern(b, "csin", F64, [F64], x),
    "sqrt": lambda b, x: intrinsic(b, "llvm.sqrt", F64, x),
    "hypot": lambda b, x: extern(b, "hypot", F64, [F64, F64], x, x),
}
for name, call in cases.items():
    try:
        ptx = kernel(call)
        print(name, "ok", len(ptx))
    except KernelCompileError as e:
        print(name, "refused", str(e).replace(chr(10), " "))
"""


def test_unselectable_calls_are_refused_before_llvm_sees_them():
    """llvm.sin / llvm.exp / libm calls raise KernelCompileError (LLVM's NVPTX backend would fail
    or abort on them); selectable ones compile. In a subprocess: an abort must not kill pytest."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run([sys.executable, "-c", CHECK_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    res = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert res["sin"].startswith("refused") and "llvm.sin.f64" in res["sin"]
    assert res["exp32"].startswith("refused") and "llvm.exp.f32" in res["exp32"]
    assert res["csin"].startswith("refused") and "csin" in res["csin"]
    assert res["sqrt"].startswith("ok") and res["hypot"].startswith("ok")  # hypot: kernels.math body


def test_llvm_itself_fails_on_what_the_checker_refuses():
    """Without the check, the NVPTX backend cannot select llvm.sin.f64 (the reason for the check)."""
    code = ("import llvmlite.binding as llvm\n"
            "from egpu_array.kernels.targets import NVPTXTarget\n"
            "t = NVPTXTarget(80)\n"
            "m = llvm.parse_assembly('target triple = \"nvptx64-nvidia-cuda\"\\n"
            "declare double @llvm.sin.f64(double)\\n"
            "define double @f(double %x) {\\n %r = call double @llvm.sin.f64(double %x)\\n ret double %r\\n}')\n"
            "print(len(t.tm.emit_assembly(m)))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "Cannot select" in r.stderr


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nextafter_fallback_matches_numpy(dtype):
    """The in-module nextafter that NVPTX kernels get, compiled for the host and compared bitwise."""
    import ctypes

    import llvmlite.binding as llvm
    import numpy as np
    from llvmlite import ir

    from egpu_array.kernels import ptx
    from egpu_array.kernels.targets import host_target
    t = host_target()
    ty = ir.FloatType() if dtype == "float32" else ir.DoubleType()
    m = t.new_module("fb")
    ir.Function(m, ir.FunctionType(ty, [ty, ty]), name="nextafterf" if dtype == "float32" else "nextafter")
    ptx.define_fallbacks(m)
    name = m.functions[0].name
    mod = llvm.parse_assembly(str(m).replace("define internal", "define"))
    tm = llvm.Target.from_triple(t.triple).create_target_machine(opt=1)  # the engine owns its tm
    eng = llvm.create_mcjit_compiler(mod, tm)
    eng.finalize_object()
    ct = ctypes.c_float if dtype == "float32" else ctypes.c_double
    f = ctypes.CFUNCTYPE(ct, ct, ct)(eng.get_function_address(name))
    fi = np.finfo(dtype)
    special = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, float(fi.smallest_subnormal),
               -float(fi.smallest_subnormal), float(fi.max), -float(fi.max), float(fi.tiny), 1.5]
    rng = np.random.default_rng(1)
    vals = np.array(special + list(rng.standard_normal(20) * 10.0 ** rng.integers(-30, 30, 20)), dtype=dtype)
    with np.errstate(all="ignore"):
        for a in vals:
            for c in vals[::3]:
                got = np.array(f(a, c), dtype=dtype)
                want = np.nextafter(a, c)
                assert got.tobytes() == want.tobytes() or (np.isnan(got) and np.isnan(want)), (a, c, got, want)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), *map(int, sys.argv[2:4]))
