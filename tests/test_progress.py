"""Feedback on long work: a progress bar on a terminal only, a one-line summary at the end."""

from __future__ import annotations

import io

from monitor.cli.app import ProgressBar

from conftest import OPENING, UNKNOWN


def test_load_off_a_terminal_prints_the_results_and_one_summary_line_and_nothing_else(monitor):
    run = monitor("load", OPENING, UNKNOWN)
    assert run.code == 0 and run.err == ""
    assert run.out.splitlines()[-1] == "4 records: 2 new, 2 changed"


def test_the_progress_bar_draws_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    with ProgressBar("loading") as bar:
        bar("records", 3)
    assert bar.bar is None, "no bar when stderr is not a terminal"
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    with ProgressBar("loading") as bar:
        bar("records", 3)
        assert bar.bar is not None and bar.bar.tasks[0].completed == 3
