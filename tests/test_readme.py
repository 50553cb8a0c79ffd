"""Every Python code block in README.md runs."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    exec(compile(code, str(README), "exec"), {})


def test_readme_has_the_two_setup_commands():
    text = README.read_text()
    assert "pip install -e . && python -m egpu_array demo" in text
    assert "pip install -e '.[test]' && pytest" in text
