"""The documentation tells the truth: every command is documented and every
README example runs."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest

from monitor.cli import cli, main

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_test_one():
    first_blocks = fenced("sh")[:2]
    run_job, run_tests = (block.strip() for block in first_blocks)
    assert README.index(first_blocks[0]) < README.index("## ")
    assert run_job.endswith("monitor run --once")
    assert "pytest" in run_tests
    assert run_tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_and_is_in_the_readme(name, capsys):
    command = cli.commands[name]
    assert command.help and len(command.help.strip()) > 20
    assert f"monitor {name}" in README
    assert main([name, "--help"]) == 0
    assert "Usage: monitor" in capsys.readouterr().out


def test_every_readme_example_runs(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    shutil.copytree(ROOT / "tests" / "fixtures", tmp_path / "tests" / "fixtures")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_DB", str(tmp_path / "readme.db"))
    commands = [line[2:] for block in fenced("console") for line in block.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 6
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "monitor"
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: {err}"
        assert out.strip(), command
    for block in fenced("python"):
        exec(compile(block, "README.md", "exec"), {})
    assert "Overall status NOT_YET_RECRUITING -> UNKNOWN" in capsys.readouterr().out


def test_every_category_is_documented():
    from monitor.model import Category

    for category in Category:
        assert f"| `{category.value}` |" in README


def test_the_readme_configuration_examples_are_valid(tmp_path, monkeypatch):
    from monitor.config import load_settings

    monkeypatch.setenv("SLACK_TOKENS", "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    monkeypatch.setenv("SMTP_PASSWORD", "secret")
    monkeypatch.setenv(
        "TEAMS_WORKFLOW", "prod-12.westus.logic.azure.com/abcd1234ef567890/SiGnAtUrE-ToKeN_1234567890abc"
    )
    blocks = fenced("yaml")
    full = next(b for b in blocks if b.startswith("database:"))
    routes = next(b for b in blocks if b.startswith("notifications:"))
    path = tmp_path / "full.yaml"
    path.write_text(full)
    assert [g.name for g in load_settings(str(path)).watches] == ["seeds", "lupus-car-nk"]
    path.write_text("watches:\n  - name: lupus-car-nk\n    trials: [NCT06518668]\n" + routes)
    names = [r.name for r in load_settings(str(path)).notifications.routes]
    assert names == ["study-team-slack", "me-daily", "ops-teams", "new-trials-hook", "our-pipeline"]


def test_the_architecture_table_names_every_module_and_package():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture") : readme.index("## Development")]
    named = set(re.findall(r"`([a-z_]+)/?`", section))
    package = ROOT / "monitor"
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    folders = {p.name for p in package.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert modules - named == set(), "modules missing from the README's architecture table"
    assert folders - named == set(), "packages missing from the README's architecture table"
