"""The memory accesses of our NVPTX kernels (no GPU or ptxas needed: the PTX text is read):
data through global-space loads and stores (not generic ones), the read-only argument slots of
elementwise kernels loaded once, outside the grid-stride loop."""
from __future__ import annotations

import re

import numpy as np
import pytest

import egpu_array as xp
from egpu_array.kernels import cache
from egpu_array.kernels.targets import NVPTXTarget


def _ptx_of(make) -> list:
    """PTX (text) of every kernel that ``make()`` launches on the cpu device, compiled for sm_80."""
    specs = {}
    cache.recorders.append(lambda dev, spec: specs.setdefault(spec, None))
    try:
        make()
    finally:
        cache.recorders.pop()
    target, out = NVPTXTarget(80), []
    for i, spec in enumerate(specs):
        m = target.new_module(f"k{i}")
        (target.generators.get(spec.kind) or cache.generator_for(spec.kind))(spec, m, f"k{i}")
        out.append(target.compile(m, (f"k{i}",)).decode())
    return out


def _data_accesses(ptx: str) -> list:
    return re.findall(r"^\s*(ld|st)(\.[a-z0-9]+)*\s", ptx, flags=re.M)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_elementwise_data_goes_through_global_space(dtype):
    a, b, c = (xp.asarray(np.arange(64, dtype=dtype), device="cpu") for _ in range(3))
    (ptx,) = _ptx_of(lambda: (a * b + c)._realize())
    lines = [ln.strip() for ln in ptx.splitlines() if re.match(r"\s*(ld|st)\.", ln)]
    generic = [ln for ln in lines if not re.match(r"(ld|st)\.(global|param|shared|local|const)", ln)]
    assert lines and not generic, generic
    # the argument slots: read-only (ld.global.nc, the noalias slots), all loaded before the first
    # data access (hoisted out of the loops: in the loop they would be reloaded for every run)
    param = re.search(r"ld\.param\.[bu]64\s+(%rd\d+), \[k0_grid_param_0\]", ptx).group(1)
    base = re.search(r"cvta\.to\.global\.u64\s+(%rd\d+), " + param + ";", ptx).group(1)
    slot_loads = [k for k, ln in enumerate(lines) if re.search(r"\[" + base + r"[\]+]", ln)]
    data = [k for k, ln in enumerate(lines) if k not in slot_loads and not ln.startswith("ld.param")]
    assert slot_loads and all(lines[k].startswith("ld.global.nc.") for k in slot_loads)
    assert max(slot_loads) < min(data)


def test_block_reduction_reads_global_space():
    x = xp.asarray(np.ones(1 << 18, dtype=np.float32), device="cpu")
    from dataclasses import replace
    specs = {}
    cache.recorders.append(lambda dev, spec: specs.setdefault(spec, None))
    try:
        xp.sum(x)._realize()
    finally:
        cache.recorders.pop()
    (spec,) = specs
    target = NVPTXTarget(80)
    m = target.new_module("k")
    target.generators["reduce"](replace(spec, chunked=True), m, "k")
    ptx = target.compile(m, ("k",)).decode()
    assert re.search(r"ld\.global(\.nc)?\.(b|f)32", ptx)
    assert not re.search(r"^\s*ld\.(b|f|u|s)(32|64)\s", ptx, flags=re.M)  # no generic loads
