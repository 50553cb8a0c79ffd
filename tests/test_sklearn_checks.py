"""scikit-learn's own array-API checks, run on egpu_array.

scikit-learn ships the checks it runs against array-api-strict, PyTorch and CuPy:
``check_array_api_input`` for every estimator whose tags declare array-API support, and the metric
checkers of ``sklearn/metrics/tests/test_common.py`` for every metric it lists. Here they run with
``array_namespace="egpu_array"`` on the cpu device, and a representative part on ``sim`` (the
emulated eGPU, through ``egpu_array.default_device``). On sim each check also asserts that the
library moved nothing over the link on its own except what it says it must (host LAPACK steps and
data-dependent sizes, each with a profiler note).

Skipped with the reason where scikit-learn is not installed (the ``test`` extra installs it).
"""
import os
import warnings

import pytest

import egpu_array as xp

sklearn = pytest.importorskip("sklearn")
assert os.environ.get("SCIPY_ARRAY_API") == "1", "tests/conftest.py sets SCIPY_ARRAY_API=1 before scipy loads"

from sklearn.utils import all_estimators  # noqa: E402
from sklearn.utils.estimator_checks import check_array_api_input  # noqa: E402

try:
    from sklearn.metrics.tests import test_common as _metric_tests
except ImportError:  # a scikit-learn installed without its tests
    _metric_tests = None


def _array_api_estimators() -> dict:
    """name -> estimator for every estimator whose tags declare array-API support."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            try:
                est = cls()
                if est.__sklearn_tags__().array_api_support:
                    out[name] = est
            except Exception:  # noqa: BLE001 - estimators that need arguments don't declare support
                continue
    return out


ESTIMATORS = _array_api_estimators()
# check_array_api_input fits with (X, y); LabelEncoder takes y alone (covered by tests/test_sklearn.py)
ESTIMATORS.pop("LabelEncoder", None)
# PCA's check data (make_classification) is rank deficient, so the trailing components and the
# log-likelihood are not determined by the data: scikit-learn itself checks PCA without values
NO_VALUES = {"PCA"}
SIM_ESTIMATORS = ("StandardScaler", "MinMaxScaler", "PCA", "Ridge", "GaussianNB", "Normalizer",
                  "PolynomialFeatures", "LinearDiscriminantAnalysis")


def test_the_declared_list_is_what_we_expect():
    """A new scikit-learn that declares more estimators makes this list grow, not shrink."""
    assert {"PCA", "Ridge", "RidgeCV", "LogisticRegression", "GaussianNB", "StandardScaler",
            "MinMaxScaler", "LinearDiscriminantAnalysis", "Nystroem"} <= set(ESTIMATORS)


def _check_estimator(name, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_array_api_input(name, ESTIMATORS[name], "egpu_array", None, dtype,
                              check_values=name not in NO_VALUES)


def _assert_no_unexplained_transfers(prof):
    internal = prof.internal_transfers
    if internal:  # each must come with the note that says why
        assert prof.notes, internal
    for t in internal:
        assert t["internal"].startswith(("linalg", "nonzero", "unique", "__getitem__", "__setitem__",
                                         "repeat", "full")), t


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_cpu(name, dtype):
    _check_estimator(name, dtype)


@pytest.mark.parametrize("name", SIM_ESTIMATORS)
def test_estimator_sim(name):
    with xp.default_device("sim"), xp.profile() as prof:
        _check_estimator(name, "float64")
    assert prof.bytes_to_device > 0          # the arrays really lived on sim
    _assert_no_unexplained_transfers(prof)


def _metric_cases():
    if _metric_tests is None:
        return []
    cases = []
    for metric, checker in _metric_tests.yield_metric_checker_combinations():
        name = getattr(metric, "__name__", None) or f"{metric.func.__name__}{sorted(metric.keywords.items())}"
        cases.append(pytest.param(metric, checker, id=f"{name}-{checker.__name__.replace('check_array_api_', '')}"))
    return cases


# Cython kernels that need writable NumPy buffers: with dispatch off, scikit-learn hands them
# np.asarray(x), a read-only view of the cpu device's memory (writes would bypass the lazy graph)
READONLY_CYTHON = {"additive_chi2_kernel", "chi2_kernel"}


@pytest.mark.skipif(_metric_tests is None, reason="scikit-learn was installed without its tests")
@pytest.mark.parametrize("metric,checker", _metric_cases())
def test_metric(metric, checker):
    name = getattr(metric, "__name__", "")
    if name in READONLY_CYTHON:
        with pytest.raises(ValueError, match="read-only"):
            checker(metric, "egpu_array", None, "float64")
        return
    checker(metric, "egpu_array", None, "float64")  # (float32 compiles the same kernels again)
