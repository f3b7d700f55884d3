"""In CI, a skipped test is a failure unless the allow-list names it with a reason.

A skip hides whatever the test would have caught, so when the `CI` environment variable is set
(to anything but "", "0" or "false") every skipped test must be listed in `tests/allowed_skips.txt`:
one entry a line, `<node id or fnmatch pattern> | <reason>`, `#` starts a comment. An entry
without a reason is itself an error. At the end of the session the skips not on the list are
printed by node id and reason, and the exit status becomes 1 (tests failed).

Outside CI skips are reported as usual (a developer checkout may lack `../shared`).
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

ALLOW_LIST = Path(__file__).resolve().parents[1] / "allowed_skips.txt"


def ci_enabled(environ=os.environ) -> bool:
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def load_allow_list(path: Path = ALLOW_LIST) -> list[tuple[str, str]]:
    """(pattern, reason) per entry; raises ValueError naming the file and line of a bad entry."""
    entries: list[tuple[str, str]] = []
    if not path.is_file():
        return entries
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not pattern or not reason:
            raise ValueError(f"{path}:{number}: expected '<test node id> | <reason>', got {raw!r}")
        entries.append((pattern, reason))
    return entries


def unexpected_skips(skipped: list[tuple[str, str]], allowed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (node id, skip reason) pairs no allow-list pattern matches."""
    return [(node, why) for node, why in skipped if not any(fnmatch.fnmatchcase(node, pat) for pat, _ in allowed)]


class SkipGuard:
    def __init__(self, allowed: list[tuple[str, str]]):
        self.allowed = allowed
        self.skipped: list[tuple[str, str]] = []
        self.unexpected: list[tuple[str, str]] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            longrepr = report.longrepr
            why = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
            self.skipped.append((report.nodeid, why))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.unexpected = unexpected_skips(self.skipped, self.allowed)
        if self.unexpected and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.unexpected:
            terminalreporter.section("skips not allowed in CI", sep="=", red=True, bold=True)
            for node, why in self.unexpected:
                terminalreporter.line(f"{node}: {why}")
            terminalreporter.line(f"CI is set: list a skip in {ALLOW_LIST.name} with its reason, or fix the test.")


def pytest_configure(config: pytest.Config) -> None:
    if ci_enabled():
        config.pluginmanager.register(SkipGuard(load_allow_list()), "personabot-skip-guard")
