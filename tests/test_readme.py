"""Every ```python block of README.md runs, in order, so the README cannot drift from the code.

Each block runs in its own interpreter in one temporary folder (later blocks read the stores that
earlier ones wrote), with ``../shared/data/eeg`` pointing at the real recordings. A block that does
not import eegbench must not import it indirectly either: it is the proof that a store is readable
without eegbench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import real_data_dir

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_CHECK = """
import sys as _sys
assert not [m for m in _sys.modules if m == "eegbench" or m.startswith("eegbench.")], "this block imported eegbench"
"""


def python_blocks() -> list[str]:
    return _BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_the_sections_and_the_cpu_wheel_index():
    text = README.read_text(encoding="utf-8")
    assert "### Reading a store without eegbench" in text
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert len(python_blocks()) >= 5


def test_readme_python_blocks_run(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("xarray")
    data = real_data_dir()
    for i, block in enumerate(python_blocks()):
        code = block.replace("../shared/data/eeg", str(data))
        if not re.search(r"^\s*(import eegbench|from eegbench)", block, re.M):
            code += _CHECK
        script = tmp_path / f"readme_block_{i}.py"
        script.write_text(code, encoding="utf-8")
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"README python block {i} failed:\n{block}\n{proc.stderr[-3000:]}"
