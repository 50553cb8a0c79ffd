"""The radix sort path (rows of >= RADIX_MIN elements) against NumPy's stable sort: skipped digit
passes (constant bytes), several rows, descending order, NaN/-0.0/inf, every real dtype."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array import profiler
from egpu_array._sorting import RADIX_MIN
from egpu_array.kernels.sort_radix import radix_passes

N = RADIX_MIN + 4099  # an odd length: the last chunk is short


@pytest.fixture(autouse=True)
def _chunked_from_radix_min(monkeypatch):
    """Single rows from RADIX_MIN on take the radix sort of a row's chunks here (by default,
    shorter than ROW_CHUNKS_MIN, they take the ``rows`` kernel: tests/test_sorting.py)."""
    from egpu_array import _sorting
    monkeypatch.setattr(_sorting, "ROW_CHUNKS_MIN", RADIX_MIN)


def _check(h, axis=-1, descending=False):
    x = xp.asarray(h)
    ref_idx = _desc_argsort(h, axis) if descending else np.argsort(h, axis=axis, kind="stable")
    got_idx = np.asarray(xp.argsort(x, axis=axis, descending=descending))
    np.testing.assert_array_equal(got_idx, ref_idx)
    got = np.asarray(xp.sort(x, axis=axis, descending=descending))
    np.testing.assert_array_equal(got, np.take_along_axis(h, ref_idx, axis=axis))


def _desc_argsort(h, axis):
    """Stable descending order (NaNs first, equal elements in their original order)."""
    h = np.moveaxis(h, axis, -1)
    out = np.empty(h.shape, dtype=np.int64)
    for idx in np.ndindex(h.shape[:-1]):
        row = h[idx]
        keys = [(0 if (row.dtype.kind == "f" and np.isnan(v)) else 1,
                 -v if not (row.dtype.kind == "f" and np.isnan(v)) else 0, i) for i, v in enumerate(row.tolist())]
        out[idx] = [k[2] for k in sorted(keys)]
    return np.moveaxis(out, -1, axis)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.sampled_from(["int8", "uint8", "int16", "int32", "uint32", "int64", "uint64", "float32", "float64"]),
       st.sampled_from([3, 300, 70_000, None]), st.integers(0, 2**32 - 1))
def test_radix_rows_match_numpy(dtype, spread, seed):
    """Small spreads make most digit passes constant (skipped); None uses the full range."""
    rng = np.random.default_rng(seed)
    if dtype.startswith("float"):
        h = rng.standard_normal(N).astype(dtype) * (spread or 1e6)
    else:
        info = np.iinfo(dtype)
        hi = info.max if spread is None else min(info.max, spread)
        lo = info.min if spread is None else max(info.min, -spread)
        h = rng.integers(lo, hi, N, endpoint=True, dtype=dtype)
    _check(h)


def test_radix_special_values_and_descending():
    rng = np.random.default_rng(1)
    h = rng.choice(np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1.5, -1.5, 2.0]), N)
    for dtype in ("float32", "float64"):
        hv = h.astype(dtype)
        x = xp.asarray(hv)
        np.testing.assert_array_equal(np.asarray(xp.argsort(x)), np.argsort(hv, kind="stable"))
        got = np.asarray(xp.sort(x))
        np.testing.assert_array_equal(got, np.sort(hv))   # NaNs last; -0.0 and 0.0 keep their order
    hi = rng.integers(-5, 5, N).astype(np.int32)
    _check(hi, descending=True)


def test_all_equal_row_keeps_positions():
    """Every digit pass is constant: nothing moves, argsort is the identity."""
    h = np.full(N, 7.25, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(xp.argsort(xp.asarray(h))), np.arange(N))
    np.testing.assert_array_equal(np.asarray(xp.sort(xp.asarray(h))), h)


def test_several_rows_and_axis0():
    rng = np.random.default_rng(2)
    h = rng.integers(0, 1000, (3, N)).astype(np.int64)
    _check(h, axis=1)
    _check(np.ascontiguousarray(h.T), axis=0)


def test_constant_passes_are_skipped():
    h = np.random.default_rng(3).integers(0, 200, N).astype(np.int64)   # 7 of 8 bytes constant
    with profiler.profile() as prof:
        x = xp.asarray(h)
        got = np.asarray(xp.sort(x))
    np.testing.assert_array_equal(got, np.sort(h))
    if x.device.host_memory:
        assert prof.launches <= 6   # copy, counts, one prefix + scatter (+ the asarray copy)
    else:  # the digit counts stay on the device (_sorting._radix_rows): every pass runs
        passes = radix_passes(x.dtype)   # hist_all; per pass prefix + scatter (which counts the next digit)
        assert prof.launches == 1 + 2 * passes


@pytest.mark.parametrize("threads", [3, 5])
def test_scatter_counts_the_next_pass_across_chunks(threads):
    """Several chunks: each scatter counts the next pass's digit by the chunk each value lands in
    (no recount kernel); odd chunk counts put the chunk ends inside digits' runs, skipped passes
    make the next digit one that is not the following byte, and a chunk that lands in one
    digit's run whole (the all-equal high bytes of small values) crosses several chunk ends."""
    from egpu_array.backend.cpu import CPUDevice
    dev = CPUDevice(num_threads=threads)
    rng = np.random.default_rng(6)
    rows = [rng.integers(-2**40, 2**40, (2, 3 * N + 7)),                       # the top bytes constant
            (rng.integers(0, 50, (2, 3 * N + 7)) << 16) + rng.integers(0, 7, (2, 3 * N + 7)),  # bytes 1, 3+ skip
            rng.integers(-3000, 3000, (2, 3 * N + 7)) << 8,                    # byte 0 skips: counted by hist
            rng.integers(0, 1 << 14, (1, 3 * N + 7)).astype(float) * 2.0 ** -20,  # float32: the low bytes skip
            rng.standard_normal((1, 3 * N + 7))]
    for h in rows:
        for dtype in (["float32", "float64"] if h.dtype.kind == "f" else ["int64", "int32"]):
            hd = h.astype(dtype)
            x = xp.asarray(hd, device=dev)
            with profiler.profile() as prof:
                idx = np.asarray(xp.argsort(x, axis=-1))
            np.testing.assert_array_equal(idx, np.argsort(hd, axis=-1, kind="stable"))
            np.testing.assert_array_equal(np.asarray(xp.sort(x, axis=-1)), np.sort(hd, axis=-1))
            # per row: the lowest digit's counts (and, where that digit is skipped, the first run
            # digit's), then a prefix and a scatter per pass run (positive floats: the keys' order
            # is the bits'); one row is first probed for few distinct values (_set)
            keys = hd.view(f"u{hd.itemsize}")
            keys = keys ^ np.array(1 << (8 * hd.itemsize - 1), keys.dtype) if hd.dtype.kind == "i" else keys
            digits = [(keys >> (8 * p)) & 255 for p in range(hd.itemsize)]
            run = [p for p, d in enumerate(digits) if not (d == d[:, :1]).all()]
            if hd.dtype.kind == "i" or (hd >= 0).all():
                probe = len(hd) == 1
                assert prof.launches == probe + len(hd) * (1 + (run[0] != 0) + 2 * len(run)), "a recount kernel ran"


@pytest.mark.parametrize("dtype", ["bool", "int8"])
def test_one_byte_keys(dtype):
    h = (np.random.default_rng(4).integers(0, 3, N) - (dtype == "int8")).astype(dtype)
    _check(h)


def test_input_is_read_in_place_and_left_intact(monkeypatch):
    """The radix sort of a row's chunks reads a contiguous input directly (no copy); the input
    never changes. (Rows enough to keep every thread busy are sorted a row per work item on host
    targets, in a copy.)"""
    from egpu_array import _sorting
    copies = []
    real_copy = _sorting.contiguous_copy
    monkeypatch.setattr(_sorting, "contiguous_copy", lambda *a, **k: copies.append(1) or real_copy(*a, **k))
    rng = np.random.default_rng(5)
    for h in (rng.standard_normal(N).astype(np.float32), np.full(N, 3, dtype=np.int16),
              rng.integers(0, 9, (2, N)).astype(np.int64)):
        x = xp.asarray(h)
        if not _sorting.radix_applies(x.dtype, h.size // N, N, x.device):
            continue
        before = h.copy()
        got = np.asarray(xp.sort(x, axis=-1))
        np.testing.assert_array_equal(got, np.sort(before, axis=-1))
        np.testing.assert_array_equal(np.asarray(x), before)
        np.testing.assert_array_equal(np.asarray(xp.argsort(x)), np.argsort(before, kind="stable"))
        np.testing.assert_array_equal(np.asarray(x), before)
    assert not copies
    np.testing.assert_array_equal(np.asarray(xp.sort(xp.asarray(h)[:, ::-1])), np.sort(h[:, ::-1]))
    assert copies   # a reversed view is copied first


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.sampled_from(["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                        "float64"]),
       st.sampled_from([63, 64, 65, 300, 4099, 17001]), st.integers(1, 40), st.sampled_from([2, 300, None]),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_row_per_work_item_radix(dtype, row_len, n_rows, spread, descending, seed):
    """Many rows of at least ROW_RADIX_MIN values: a row per work item (kernels.sort_radix ``rows``;
    from WIDE_DIGITS_MIN on ``rows11``), each row skipping its own constant digits (small spreads;
    a constant row; rows where an odd number of passes runs copy back), against NumPy's stable
    order (descending: stable, NaNs first)."""
    from egpu_array._sorting import ROW_RADIX_MIN
    rng = np.random.default_rng(seed)
    shape = (n_rows, max(row_len, ROW_RADIX_MIN))
    if dtype == "bool":
        h = rng.integers(0, 2, shape).astype(bool)
    elif dtype.startswith("float"):
        h = (rng.standard_normal(shape) * (spread or 1e6)).astype(dtype)
        h.flat[rng.integers(0, h.size, 9)] = [np.nan, -0.0, 0.0, np.inf, -np.inf, np.nan, -0.0, 0.0, 1.0]
        if spread == 2:
            h = np.round(h)
    else:
        info = np.iinfo(dtype)
        hi = info.max if spread is None else min(info.max, spread)
        lo = info.min if spread is None else max(info.min, -spread)
        h = rng.integers(lo, hi, shape, endpoint=True, dtype=dtype)
    h[0] = h[0, 0]  # a constant row: every pass skipped
    _check(h, descending=descending)


def test_row_radix_is_the_path_for_many_rows():
    """On host targets, rows enough to fill the threads, too long for a network
    (kernels.sort_network), take the ``rows`` phase (one launch); complex rows merge-sort."""
    from egpu_array._sorting import row_radix_applies
    from egpu_array.kernels import cache
    x = xp.asarray(np.random.default_rng(2).standard_normal((50, 2000)))
    if not row_radix_applies(x.dtype, 2000, x.device):
        pytest.skip("the default device's target has no row-per-work-item radix sort")
    for h, phases in ((x, {"rows"}), (xp.astype(x, xp.float32), {"rows"}),  # (2000: past every network)
                      (xp.astype(x, xp.complex64), {"local"})):
        seen = []
        cache.recorders.append(lambda dev, spec: seen.append(getattr(spec, "phase", None)))
        try:
            with profiler.profile() as prof:
                got = np.asarray(xp.sort(h, axis=-1))
        finally:
            cache.recorders.pop()
        np.testing.assert_array_equal(got, np.sort(np.asarray(h), axis=-1))
        assert phases <= set(seen) and ("rows" in seen) == ("rows" in phases)
        if phases == {"rows"}:
            assert prof.launches <= 2   # (the copy, the sort)
