"""The documentation builds offline without warnings, every example in it runs, and its API
reference covers the namespace (docs/; Sphinx, run in subprocesses as CI would)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Both builds, run at the same time: builder -> (exit status, output, output folder)."""
    out = tmp_path_factory.mktemp("docs")
    env = dict(os.environ)
    env.pop("EGPU_ARRAY_DEVICE", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    procs = {b: subprocess.Popen([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", b,
                                  "-d", str(out / f"doctrees-{b}"), str(DOCS), str(out / b)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for b in ("html", "doctest")}
    results = {}
    for b, p in procs.items():
        text, _ = p.communicate(timeout=600)
        results[b] = (p.returncode, text, out / b)
    return results


@pytest.fixture(scope="module")
def html(builds):
    rc, text, folder = builds["html"]
    assert rc == 0, f"sphinx html build failed (warnings are errors):\n{text}"
    return folder


def test_html_builds_without_warnings(html):
    assert (html / "index.html").exists()
    for page in ("getting-started", "user-guide", "devices", "command-line", "api", "architecture",
                 "accuracy"):
        assert (html / f"{page}.html").exists(), page


def test_every_example_runs(builds):
    rc, text, folder = builds["doctest"]
    report = (folder / "output.txt").read_text() if (folder / "output.txt").exists() else ""
    assert rc == 0, f"doctest build failed:\n{text}\n{report}"
    assert "0 failures in tests" in report and "0 failures in setup code" in report
    ran = int(re.findall(r"^\s*(\d+) tests$", report, re.M)[-1])   # the summary at the end
    assert ran >= 60, f"only {ran} examples ran:\n{report}"
    for page in ("getting-started", "user-guide", "devices", "command-line", "api"):
        assert f"Document: {page}" in report, page


def test_api_reference_lists_every_public_function(html):
    import egpu_array as xp
    text = (html / "api.html").read_text()
    missing = []
    for ns, prefix in [(xp, "egpu_array")] + [(getattr(xp, ext), f"egpu_array.{ext}")
                                              for ext in ("linalg", "fft") if hasattr(xp, ext)]:
        for name in ns.__all__:
            obj = getattr(ns, name)
            if callable(obj) and not isinstance(obj, type) and getattr(obj, "__module__", "").startswith("egpu_array"):
                if f'id="{prefix}.{name}"' not in text:
                    missing.append(f"{prefix}.{name}")
    assert not missing, f"not in the API reference: {missing}"
    for cls in ("Array", "Device", "DeviceError", "TransferError"):
        assert f'id="egpu_array.{cls}"' in text


def _shell_commands():
    """(page, command) of every line of the bash/console code blocks of the pages."""
    for page in sorted(DOCS.glob("*.rst")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"\.\. code-block:: (bash|console)", line)
            if not m:
                continue
            for body in lines[i + 1:]:
                if body and not body.startswith(" "):
                    break
                cmd = body.strip()
                if m.group(1) == "console":
                    if not cmd.startswith("$ "):
                        continue   # output shown after a command
                    cmd = cmd[2:]
                if cmd:
                    yield page.name, cmd.split("  #")[0].strip()


def test_shell_commands_are_real():
    """The set-up commands are the README's (which CI runs); every ``python -m egpu_array`` line
    parses with the real command line; scripts named exist."""
    from egpu_array.__main__ import build_parser
    readme = (ROOT / "README.md").read_text()
    parser, _ = build_parser()
    seen = 0
    for page, cmd in _shell_commands():
        seen += 1
        if cmd.startswith("pip install"):
            assert cmd in readme, (page, cmd)
        elif cmd.startswith("python -m egpu_array"):
            argv = shlex.split(cmd)[3:]
            try:
                parser.parse_args(argv)
            except SystemExit as exc:
                assert exc.code == 0, (page, cmd)
        elif cmd.startswith(("python ", "pytest", "sphinx-build", "echo $?")):
            script = next((w for w in shlex.split(cmd) if w.endswith(".py")), None)
            assert script is None or (ROOT / script).exists(), (page, cmd)
        else:
            pytest.fail(f"{page}: a shell command this test does not know how to check: {cmd}")
    assert seen >= 10
