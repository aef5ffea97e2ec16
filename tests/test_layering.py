"""Honest layering (issue 10, item 5): an import of our own modules inside a function is there
for start-up speed only and says so, and `monitor --help` and `monitor diff A B` start without
the store, the registry client or the service."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from conftest import ROOT, UNKNOWN

NOT_YET: set[str] = set()  # modules still being taken apart (none)


def function_level_imports():
    """(file, line, statement, has a reason) for every import of ``monitor...`` below a module's top level."""
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        typing_only = {id(n) for b in tree.body if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.unparse(b.test)
                       for n in ast.walk(b)}
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or id(node) in top or id(node) in typing_only:
                continue
            if not (node.module or "").startswith("monitor"):
                continue
            said = "#" in " ".join(lines[node.lineno - 1 : node.end_lineno])
            above = node.lineno - 2
            while not said and above >= 0 and lines[above].strip().startswith(("from ", "import ", "#")):
                said = lines[above].strip().startswith("#")
                above -= 1
            yield str(path.relative_to(ROOT)), node.lineno, ast.unparse(node), said


def test_every_function_level_import_of_our_modules_says_why():
    unexplained = [f"{f}:{n}: {s}" for f, n, s, said in function_level_imports() if not said and f not in NOT_YET]
    assert unexplained == [], "give each a one-line reason (start-up speed), or import it at the top"


def test_the_library_imports_at_the_top_only_the_cli_defers_for_start_up():
    deferring = {f for f, *_ in function_level_imports()} - NOT_YET
    assert deferring <= {str(p.relative_to(ROOT)) for p in (ROOT / "monitor" / "cli").glob("*.py")} | {
        "monitor/sources/ctgov_source.py",  # httpx loads only when a registry is asked
        "monitor/checking.py",  # SQLAlchemy loads only when a version is written (`diff A B` needs none)
        "monitor/batch.py",  # the same: `diff A B` loads the file loader, which batches its writes
        "monitor/workers.py",  # a worker process loads the registry client only for pages
    }


def loaded_by(*argv: str) -> set[str]:
    """The modules a `monitor` command has loaded when it ends."""
    probe = (
        "import json, sys\nfrom monitor.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "sys.stdout.flush()\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(run.stderr.strip().splitlines()[-1]))


def test_monitor_help_loads_neither_the_store_nor_a_registry_client_nor_the_service():
    loaded = loaded_by("--help")
    assert not {"sqlalchemy", "httpx", "apprise", "apscheduler", "monitor.store", "monitor.pipeline"} & loaded


def test_monitor_diff_of_two_files_loads_neither_the_store_nor_a_registry_client():
    loaded = loaded_by("diff", str(UNKNOWN / "2026-02-02.json"), str(UNKNOWN / "2026-03-02.json"))
    assert "monitor.diff" in loaded, "the probe ran the comparison"
    assert not {"sqlalchemy", "httpx", "apprise", "apscheduler"} & loaded
