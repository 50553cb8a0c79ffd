"""SciPy with SCIPY_ARRAY_API=1 on egpu_array arrays: which functions accept them, and where they run.

Each function runs on the ``sim`` device (the emulated eGPU, so every copy over the link is
counted) and is checked against SciPy's NumPy run. ``WHERE`` records what SciPy does with our
arrays, and the test fails when that changes, so the documented table cannot drift:

- ``"device"``: SciPy's array-API path computes with our namespace; only 0-d values SciPy
  converts for its own control flow (a few bytes) cross the link;
- ``"host"``: SciPy converts the inputs to NumPy itself (``np.asarray``), computes there and, for
  most functions, converts the result back to our namespace: correct, but the data crosses the
  link twice (the profiler shows it).
"""
import os

import numpy as np
import pytest

import egpu_array as xp

scipy = pytest.importorskip("scipy")
assert os.environ.get("SCIPY_ARRAY_API") == "1"

import scipy.cluster.vq as vq  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.ndimage as ndi  # noqa: E402
import scipy.signal as sg  # noqa: E402
import scipy.special as sp  # noqa: E402
import scipy.stats as st  # noqa: E402

RNG = np.random.default_rng(0)
A = RNG.random((6, 5)) + 0.1
V = RNG.random(20) + 0.1

# name -> (function of an asarray-like converter, where it runs)
CASES = {
    "special.logsumexp": (lambda t: sp.logsumexp(t(A), axis=1), "device"),
    "special.softmax": (lambda t: sp.softmax(t(A), axis=1), "device"),
    "special.log_softmax": (lambda t: sp.log_softmax(t(A), axis=0), "device"),
    "special.xlogy": (lambda t: sp.xlogy(t(A), t(A)), "device"),
    "special.erf": (lambda t: sp.erf(t(A)), "host"),
    "special.gammaln": (lambda t: sp.gammaln(t(A)), "host"),
    "special.expit": (lambda t: sp.expit(t(A)), "host"),
    "special.ndtr": (lambda t: sp.ndtr(t(A)), "host"),
    "special.entr": (lambda t: sp.entr(t(A)), "host"),
    "stats.zscore": (lambda t: st.zscore(t(A)), "device"),
    "stats.skew": (lambda t: st.skew(t(V)), "device"),
    "stats.kurtosis": (lambda t: st.kurtosis(t(V)), "device"),
    "stats.moment": (lambda t: st.moment(t(V), order=3), "device"),
    "stats.gmean": (lambda t: st.gmean(t(V)), "device"),
    "stats.hmean": (lambda t: st.hmean(t(V)), "device"),
    "stats.pmean": (lambda t: st.pmean(t(V), 2.0), "device"),
    "stats.variation": (lambda t: st.variation(t(V)), "device"),
    "stats.sem": (lambda t: st.sem(t(V)), "device"),
    "stats.tmean": (lambda t: st.tmean(t(V)), "device"),
    "stats.tvar": (lambda t: st.tvar(t(V)), "device"),
    "stats.circmean": (lambda t: st.circmean(t(V)), "device"),
    "stats.iqr": (lambda t: st.iqr(t(V)), "device"),
    "stats.quantile": (lambda t: st.quantile(t(V), 0.3), "device"),
    "stats.describe(mean)": (lambda t: st.describe(t(V)).mean, "device"),
    "stats.ttest_1samp": (lambda t: st.ttest_1samp(t(V), 0.5).statistic, "device"),
    "stats.ttest_ind": (lambda t: st.ttest_ind(t(V), t(V) ** 2).statistic, "device"),
    "stats.pearsonr": (lambda t: st.pearsonr(t(V), t(V) ** 2).statistic, "device"),
    "stats.chisquare": (lambda t: st.chisquare(t(V)).statistic, "device"),
    "stats.bartlett": (lambda t: st.bartlett(t(V), t(V) ** 2).statistic, "device"),
    "stats.entropy": (lambda t: st.entropy(t(V)), "host"),
    "stats.rankdata": (lambda t: st.rankdata(t(V)), "device"),
    "cluster.vq.whiten": (lambda t: vq.whiten(t(A)), "device"),
    "cluster.vq.vq": (lambda t: vq.vq(t(A), t(A)[:2])[0], "host"),
    "integrate.trapezoid": (lambda t: si.trapezoid(t(V)), "device"),
    "integrate.cumulative_trapezoid": (lambda t: si.cumulative_trapezoid(t(V)), "device"),
    "signal.convolve": (lambda t: sg.convolve(t(V), t(V)[:5]), "host"),
    "signal.detrend": (lambda t: sg.detrend(t(V)), "host"),
    "ndimage.gaussian_filter": (lambda t: ndi.gaussian_filter(t(A), 1.0), "host"),
}

SCALAR_BYTES = 64   # 0-d values SciPy reads for its own control flow


@pytest.mark.parametrize("name", sorted(CASES))
def test_scipy_function_on_sim(name):
    f, where = CASES[name]
    ref = f(np.asarray)
    with xp.default_device("sim"):
        with xp.profile() as prof:
            got = f(xp.asarray)
    assert isinstance(got, xp.Array), type(got)
    assert got.device == "sim"
    np.testing.assert_allclose(np.asarray(got.to_device("cpu")), ref, rtol=1e-10, atol=1e-12)
    # copies the library made on its own (the count behind a boolean mask, repeat's counts: sizes
    # that depend on the data) each come with a profiler note from the function that made them
    internal = prof.internal_transfers
    for t in internal:
        assert any(t["internal"] in note for note in prof.notes), (t, prof.notes)
    moved_back = prof.bytes_from_device - sum(t["bytes"] for t in internal if t["direction"] == "from_device")
    observed = "device" if moved_back <= SCALAR_BYTES else "host"
    assert observed == where, f"{name}: SciPy now runs on the {observed} ({moved_back} bytes came back)"
