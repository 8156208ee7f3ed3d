"""The README's library example is real code: extract it and run it."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    head = README.read_text().split("\n## ")[0]
    assert "make train" in head and "make test" in head


def test_library_snippet_runs(capsys):
    text = README.read_text()
    section = text.split("## Use it as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_snippet"})
    out = capsys.readouterr().out
    weights = [float(x) for x in re.findall(r"[-+]?\d*\.\d+(?:e[-+]?\d+)?", out.split(":", 1)[1])]
    assert len(weights) == 2 and abs(sum(weights) - 1.0) < 1e-5
