"""The CI skip guard: unlisted skips fail a CI run; listed ones (with a reason) pass; bad entries are named."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.support.skip_guard import ci_enabled, load_allow_list, unexpected_skips


def test_allow_list_entries_need_a_reason(tmp_path):
    good = tmp_path / "ok.txt"
    good.write_text("# comment\n\ntests/x.py::test_a | needs a GPU  # trailing comment\ntests/y.py::* | whole file\n")
    assert load_allow_list(good) == [("tests/x.py::test_a", "needs a GPU"), ("tests/y.py::*", "whole file")]
    bad = tmp_path / "bad.txt"
    bad.write_text("tests/x.py::test_a | reason\ntests/x.py::test_b\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected"):
        load_allow_list(bad)


def test_only_unlisted_skips_are_unexpected():
    skipped = [("tests/x.py::test_a", "no gpu"), ("tests/y.py::test_b[1]", "flaky"), ("tests/z.py::test_c", "why not")]
    allowed = [("tests/x.py::test_a", "reason"), ("tests/y.py::*", "reason")]
    assert unexpected_skips(skipped, allowed) == [("tests/z.py::test_c", "why not")]


@pytest.mark.parametrize("value,expected", [("", False), ("0", False), ("false", False), ("true", True), ("1", True)])
def test_ci_flag(value, expected):
    assert ci_enabled({"CI": value}) is expected


def _run_suite(tmp_path, ci: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent("""
        import pytest

        def test_passes():
            assert True

        def test_skips():
            pytest.skip("hidden failure")
    """))
    env = dict(os.environ, CI=ci, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.skip_guard", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_a_ci_run_and_is_named(tmp_path):
    run = _run_suite(tmp_path, "true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "skips not allowed in CI" in run.stdout and "test_skips" in run.stdout and "hidden failure" in run.stdout


def test_a_skip_outside_ci_is_only_reported(tmp_path):
    run = _run_suite(tmp_path, "")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
