"""Sphinx configuration of the egpu_array documentation (offline; ``-W`` turns warnings into errors).

Build: ``sphinx-build -W -b html docs docs/_build/html``; run every example in the pages:
``sphinx-build -W -b doctest docs docs/_build/doctest`` (tests/test_docs.py does both).

The API reference is generated from the namespace itself by the ``egpu-api`` directive below: one
``autofunction`` per public function of a module's ``__all__``, grouped by the module that defines
it, so a new function appears in the reference without editing a page.
"""
from __future__ import annotations

import importlib
import os
import re
import sys

from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList

sys.path.insert(0, os.path.abspath(".."))
os.environ.pop("EGPU_ARRAY_DEVICE", None)   # the examples run on the default device, cpu

import egpu_array  # noqa: E402

project = "egpu_array"
author = "the egpu_array developers"
copyright = "2026, the egpu_array developers"
release = version = egpu_array.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list = []
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
default_role = "code"
doctest_global_setup = """
import numpy as np
import egpu_array as xp
"""

#: module that defines a function -> the section of the API reference it appears in
SECTIONS = {
    "egpu_array._creation": "Creation functions",
    "egpu_array._elementwise": "Element-wise functions",
    "egpu_array._statistical": "Statistical functions",
    "egpu_array._searching": "Searching functions",
    "egpu_array._sorting": "Sorting functions",
    "egpu_array._set": "Set functions",
    "egpu_array._manipulation": "Manipulation functions",
    "egpu_array._copying": "Manipulation functions",
    "egpu_array._data_type": "Data type functions",
    "egpu_array._linalg_funcs": "Linear algebra functions",
    "egpu_array._gather": "Indexing functions",
    "egpu_array._info": "Devices, profiling and synchronization",
    "egpu_array._utility": "Devices, profiling and synchronization",
    "egpu_array.profiler": "Devices, profiling and synchronization",
}


def public_functions(module_name: str) -> list:
    """(name, defining module) of each public function of ``module_name``."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, type) and getattr(obj, "__module__", "").startswith("egpu_array"):
            out.append((name, obj.__module__))
    return out


class EgpuApi(Directive):
    """``.. egpu-api:: MODULE``: every public function of MODULE, by section (``:flat:``: no
    sections, for the extension namespaces)."""

    required_arguments = 1
    option_spec = {"flat": directives.flag}

    def run(self):
        module_name = self.arguments[0]
        try:
            functions = public_functions(module_name)
        except ImportError as exc:  # an extension that is not part of this build
            text = f"``{module_name}`` is not available in this build ({type(exc).__name__}: {exc})."
            self.state_machine.insert_input(StringList([text, ""], "egpu-api"), "egpu-api")
            return []
        groups: dict = {}
        for name, defined_in in functions:
            title = "" if "flat" in self.options else SECTIONS.get(defined_in, "Other functions")
            groups.setdefault(title, []).append(name)
        order = list(dict.fromkeys(SECTIONS.values())) + ["Other functions", ""]
        lines = []
        for title in sorted(groups, key=order.index):
            if title:
                lines += [title, "-" * len(title), ""]
            for name in sorted(groups[title]):
                lines += [f".. autofunction:: {module_name}.{name}", ""]
        source = self.state_machine.input_lines.source(self.lineno - self.state_machine.input_offset - 1)
        node_list = []
        self.state_machine.insert_input(StringList(lines, source), source)
        return node_list


_ABS = re.compile(r"\|([\w.]+)\|")


def plain_bars(app, what, name, obj, options, lines):
    """Docstrings write ``|x|`` for an absolute value; reST would read a substitution."""
    lines[:] = [_ABS.sub(r"\\|\1\\|", line) for line in lines]


def setup(app):
    app.add_directive("egpu-api", EgpuApi)
    app.connect("autodoc-process-docstring", plain_bars)
    return {"parallel_read_safe": True}
