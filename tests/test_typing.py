"""mypy resolves the package's imports across modules, so a type error between two modules fails
`make lint` (issue 22: with folders mapped to `feedback_nlp.<folder>`, every `from feedback_nlp.*`
import was `Any`, and a file assigning a `TextRecord` to an `int` passed).

How: mypy (its API, in this process) checks a small file that imports a record type from the
package, once with a deliberate error and once without, under the package's own mypy config
(pyproject.toml). `follow_imports=silent` analyses the imported modules for their types without
re-reporting the whole package; the cache lives in a temporary folder shared by the two runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

REPO = Path(__file__).resolve().parent.parent

BAD = """\
from feedback_nlp.core.records import TextRecord

record = TextRecord(id="r1", text="the zip broke on day one")
count: int = record
"""

GOOD = """\
from feedback_nlp.core.records import TextRecord

record = TextRecord(id="r1", text="the zip broke on day one")
text: str = record.text
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy_cache")


def check(source: str, folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """(mypy's report, exit status) for `source` written as a module in `folder`."""
    path = folder / "snippet.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.setenv("MYPYPATH", str(REPO))  # the source tree, wherever the tests run from
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--follow-imports",
            "silent",
            "--cache-dir",
            str(cache),
            "--no-error-summary",
            "--show-error-codes",
            str(path),
        ]
    )
    return stdout + stderr, status


def test_a_cross_module_type_error_fails(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report, status = check(BAD, tmp_path, cache_dir, monkeypatch)
    assert status == 1, report
    # the error names the line of the bad assignment and both types (the import was resolved)
    assert 'snippet.py:4: error: Incompatible types in assignment (expression has type "TextRecord", ' in report
    assert 'variable has type "int")  [assignment]' in report
    assert report.count(": error:") == 1, report


def test_the_same_code_without_the_error_passes(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, status = check(GOOD, tmp_path, cache_dir, monkeypatch)
    assert status == 0, report
    assert report.strip() == "", report
