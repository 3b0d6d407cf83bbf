"""Package comments say why, not what was measured where: no commit hashes, dated logs, session talk or lab machines.

Measured figures themselves cannot be told from legitimate constants by pattern, so this checks
only what marks a comment as a lab note: a commit named in it, a date, the people or sessions
that measured, and the machines they measured on. The figures belong in BENCHMARKS.md, which a
comment may name with a short section reference.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

import streamseg

PACKAGE = Path(streamseg.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))

# Where comments and docstrings are both checked.
LAB_NOTES = {
    "a commit hash": re.compile(r"@ ?[0-9a-f]{7,40}\b|\bcommit [0-9a-f]{7,40}\b"),
    "a date": re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b"),
    "session talk": re.compile(r"\b(this|earlier|previous|second|third|last) sessions?\b|\bwe (measured|found|saw|tried)\b", re.I),
}
# Comments only: a docstring may show a CPU's or GPU's name as an example of what a function returns.
MACHINES = re.compile(r"\b(EPYC|Xeon|Zen ?\d|H100|H200|A100|\d+-?vCPUs?)\b")


def comments_and_docstrings(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, is_comment) for every comment and docstring of a module."""
    source = path.read_text(encoding="utf-8")
    found = [
        (token.start[0], token.string, True)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                found.append((node.body[0].lineno, docstring, False))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_comments_hold_no_lab_notes(path: Path) -> None:
    problems = []
    for line, text, is_comment in comments_and_docstrings(path):
        for what, pattern in LAB_NOTES.items():
            if match := pattern.search(text):
                problems.append(f"line {line}: {what}: {match.group(0)!r}")
        if is_comment and (match := MACHINES.search(text)):
            problems.append(f"line {line}: a machine: {match.group(0)!r}")
    assert not problems, "\n".join(problems)
