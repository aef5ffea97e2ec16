"""Hostile files through `load`, `diff FILE`, `diff A B` and `show FILE`.

Every case is refused with exit 2, one `error:` line on stderr, and the database file
byte-identical afterwards: nothing wrong-typed is ever stored, nothing crashes (exit 3).
The table is built here from one real API v2 study; the wrong-type cases are one per field the
normalizer reads, taken from the declared schema so that a field added there is attacked here.
"""

from __future__ import annotations

import copy
import gc
import gzip
import json
import os
import sqlite3
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor import limits
from monitor.normalize import schema
from monitor.normalize.violations import model_in

from conftest import OPENING, ROOT, study

BASE = study(OPENING / "2026-02-10.json")  # stored before each case; the cases are later versions of it
GOOD = OPENING / "2026-03-10.json"


@dataclass
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the hostile input under the folder given, returns its path
    says: str = ""  # a fragment the error line must hold
    says_on: tuple = ("load", "diff FILE", "diff A B", "show FILE")  # the commands that must say it
    limits: dict = field(default_factory=dict)  # lowered limits for this case


def json_file(payload, name="trial.json", text: str | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_text(text if text is not None else json.dumps(payload), encoding="utf-8")
        return path

    return make


def raw_file(data: bytes, name="trial.json") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def edited(path: str, value) -> dict:
    """BASE with the value at a dotted path (``protocolSection.designModule.phases``) replaced;
    ``[]`` in the path enters (or makes) the first item of a list."""
    payload = copy.deepcopy(BASE)
    here = payload
    parts = path.split(".")
    for part in parts[:-1]:
        if part.endswith("[]"):
            items = here.setdefault(part[:-2], [{}])
            if not items:
                items.append({})
            here = items[0]
        else:
            here = here.setdefault(part, {})
    here[parts[-1]] = value
    return payload


def with_text(path: str, literal: str) -> str:
    """BASE as JSON text with a placeholder string at ``path`` replaced by a raw JSON literal."""
    return json.dumps(edited(path, "@@HOSTILE@@")).replace('"@@HOSTILE@@"', literal)


# --- wrong types, one per field the normalizer reads (from the declared schema) ---------------


def _kind(annotation) -> str:
    """What a schema annotation declares: model, list, str, int, bool, date or other."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        if any(getattr(m, "func", None) is schema.registry_date for m in meta):
            return "date"
        return _kind(base)
    if isinstance(annotation, type) and issubclass(annotation, schema.Shape):
        return "model"
    if typing.get_origin(annotation) is list:
        return "list"
    return {str: "str", int: "int", bool: "bool", dict: "object"}.get(typing.get_origin(annotation) or annotation, "other")


WRONG = {"str": {"text": "as an object"}, "list": "PHASE2", "int": "forty", "bool": "yes", "model": [],
         "date": "2025-13-45", "object": ["not", "an", "object"]}


def field_paths(model=schema.Study, prefix="") -> list[tuple[str, str]]:
    """(dotted path, kind) of every declared field, list items entered with ``[]``."""
    found = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        kind = _kind(info.annotation)
        path = f"{prefix}{key}"
        found.append((path, kind))
        inner = model_in(info.annotation)
        if inner is not None and inner is not schema.Shape:
            listed = kind == "list"
            found += field_paths(inner, f"{path}{'[]' if listed else ''}.")
    return found


WRONG_TYPES = [
    Case(f"{path}={kind}", json_file(edited(path, WRONG[kind])), path.replace("[]", "[0]"))
    for path, kind in field_paths()
    if kind in WRONG and path != "protocolSection"
]

# --- everything else a file can get wrong -------------------------------------------------------

TEXT = json.dumps(BASE)
TITLE = "protocolSection.identificationModule.briefTitle"


def fifo(folder: Path) -> Path:
    path = folder / "trial.json"
    os.mkfifo(path)
    return path


def symlink_loop(folder: Path) -> Path:
    (folder / "a.json").symlink_to(folder / "b.json")
    (folder / "b.json").symlink_to(folder / "a.json")
    return folder / "a.json"


def broken_link(folder: Path) -> Path:
    (folder / "gone.json").symlink_to(folder / "never-was.json")
    return folder / "gone.json"


def copies(*statuses: str, name="page.json", wrap=lambda items: {"studies": items}) -> Callable[[Path], Path]:
    items = [edited("protocolSection.statusModule.overallStatus", status) for status in statuses]
    return json_file(wrap(items), name)


HOSTILE = [
    Case("phases as a string", json_file(edited("protocolSection.designModule.phases", "PHASE2")),
         'protocolSection.designModule.phases: expected a list of phase names, got the string "PHASE2"'),
    Case("an unknown phase", json_file(edited("protocolSection.designModule.phases", ["PHASE9"])),
         "designModule.phases[0]: expected one of 'NA', 'EARLY_PHASE1'"),
    Case("conditions as a string", json_file(edited("protocolSection.conditionsModule.conditions", "lupus")),
         "conditionsModule.conditions: expected a list of condition names"),
    Case("a title as an object", json_file(edited(TITLE, {"en": "x"})), f"{TITLE}: expected a string, got an object"),
    Case("start date 2025-13-45",
         json_file(edited("protocolSection.statusModule.startDateStruct.date", "2025-13-45")),
         "startDateStruct.date: expected a real calendar date"),
    Case("a date that is not a date",
         json_file(edited("protocolSection.statusModule.startDateStruct.date", "soon")), "expected a date"),
    Case("enrollment forty", json_file(edited("protocolSection.designModule.enrollmentInfo.count", "forty")),
         "enrollmentInfo.count: expected a whole number of participants"),
    Case("enrollment true", json_file(edited("protocolSection.designModule.enrollmentInfo.count", True))),
    Case("enrollment 4.5", json_file(edited("protocolSection.designModule.enrollmentInfo.count", 4.5))),
    Case("enrollment negative", json_file(edited("protocolSection.designModule.enrollmentInfo.count", -3))),
    Case("statusModule as a list", json_file(edited("protocolSection.statusModule", [])),
         "protocolSection.statusModule: expected an object, got an empty list"),
    Case("a null inside a list", json_file(edited("protocolSection.conditionsModule.conditions", ["SLE", None])),
         "conditions[1]: expected a string, got null"),
    Case("a null location", json_file(edited("protocolSection.contactsLocationsModule.locations", [None]))),
    Case("no NCT id", json_file(edited("protocolSection.identificationModule.nctId", None)), "nctId"),
    Case("a full-width NCT id", json_file(edited("protocolSection.identificationModule.nctId", "NCT０６８２１５０３")),
         "an NCT id"),
    Case("no protocolSection", json_file({"derivedSection": {}}), "not a ClinicalTrials.gov study"),
    Case("a JSON string", json_file("just text")),
    Case("a JSON number", json_file(None, text="42")),
    Case("an empty list", json_file([]), "holds no study"),
    Case("an empty /studies page", json_file({"studies": []}), "holds no study"),
    Case("a /studies page with a bad study",
         json_file({"studies": [BASE, edited("protocolSection.designModule.phases", "PHASE2")]}),
         "studies[1].protocolSection.designModule.phases"),
    Case("an export with a non-study", json_file([BASE, {"hello": 1}]), "[1]: not a ClinicalTrials.gov study"),
    Case("truncated JSON", json_file(None, text=TEXT[: len(TEXT) // 2]), "broken JSON"),
    Case("garbled JSON", json_file(None, text=TEXT.replace(":", ";", 3)), "broken JSON"),
    Case("trailing garbage", json_file(None, text=TEXT + "}"), "broken JSON"),
    Case("nesting 100,000 deep", json_file(None, text="[" * 100_000 + "]" * 100_000), "nested"),
    Case("deep nesting in an unread field",
         json_file(None, text=with_text("extra", "[" * 5000 + "]" * 5000)), "nested"),
    Case("a 41-digit integer",
         json_file(None, text=with_text("protocolSection.designModule.enrollmentInfo.count", "9" * 41)),
         "enrollmentInfo.count: a number of 41 digits (at most 40)"),
    Case("a 5,001-digit integer",
         json_file(None, text=with_text("protocolSection.designModule.enrollmentInfo.count", "9" * 5001)), "number"),
    Case("a huge float", json_file(None, text=with_text("protocolSection.designModule.enrollmentInfo.count", "1e999")),
         "not a finite number"),
    Case("NaN", json_file(None, text=with_text("protocolSection.designModule.enrollmentInfo.count", "NaN")), "NaN"),
    Case("Infinity", json_file(None, text=with_text("extra", "Infinity")), "Infinity"),
    Case("-Infinity", json_file(None, text=with_text("extra", "-Infinity")), "Infinity"),
    Case("a lone surrogate", json_file(None, text=with_text(TITLE, '"Lupus \\ud800 study"')), "lone surrogate"),
    Case("a lone surrogate in a key", json_file(None, text=TEXT.replace('"hasResults"', '"has\\udc00Results"')),
         "lone surrogate"),
    Case("a NUL in the title", json_file(None, text=with_text(TITLE, '"Lupus\\u0000study"')), f"{TITLE}: a text with a NUL"),
    Case("a NUL in an unread field", json_file(None, text=with_text("extra.note", '"a\\u0000b"')), "extra.note"),
    Case("not UTF-8", raw_file(TEXT.encode()[:500] + b"\xfc" + TEXT.encode()[500:]), "not UTF-8"),
    Case("UTF-16", raw_file(TEXT.encode("utf-16")), "not UTF-8"),
    Case("an empty file", raw_file(b""), "empty"),
    Case("only whitespace", raw_file(b" \n\t\n"), "empty"),
    Case("binary junk", raw_file(bytes(range(256)) * 4), "not UTF-8"),
    Case("a damaged gzip", raw_file(gzip.compress(TEXT.encode())[:200], "trial.json.gz"), "damaged gzip"),
    Case("a gzip bomb", raw_file(gzip.compress(b" " * 3_000_000), "trial.json.gz"), "decompresses to more than",
         limits={"max_decompressed_bytes": 1_000_000}),
    Case("an oversize file", raw_file(TEXT.encode() + b" " * 200_000), "larger than",
         limits={"max_file_bytes": 100_000}),
    Case("an oversize text", json_file(edited("protocolSection.descriptionModule.briefSummary", "x" * 50_000)),
         "descriptionModule.briefSummary: a text of 50,000 characters", limits={"max_text_chars": 40_000}),
    Case("a FIFO", fifo, "a FIFO (named pipe)"),
    Case("a symlink loop", symlink_loop, "symbolic link loop"),
    Case("a broken symlink", broken_link, "broken symbolic link"),
    Case("the same trial three times, one date, three statuses", copies("RECRUITING", "COMPLETED", "WITHDRAWN"),
         "NCT06821503: two different copies with the same registry date (2025-02-17) twice in", ("load",)),
    Case("two copies in an export", copies("RECRUITING", "COMPLETED", wrap=list), "same registry date", ("load",)),
    Case("the project README", raw_file((ROOT / "README.md").read_bytes(), "README.md"), "not a trial page"),
    Case("a text file", raw_file(b"Dear team,\nthe lupus trial is recruiting again.\n", "note.txt"), "not a trial page"),
    Case("a page with a date 2025-13-45",
         raw_file((ROOT / "seeds" / "000_89b1b94dc6394612.txt").read_bytes().replace(b"2024-07-01", b"2025-13-45"),
                  "page.txt"), "not a real calendar date"),
    Case("a page with a full-width NCT id",
         raw_file((ROOT / "seeds" / "000_89b1b94dc6394612.txt").read_text().replace(
             "NCT ID: NCT06518668", "NCT ID: NCT０６５１８６６８").encode(), "page.txt"), "not an NCT id"),
    Case("a page with a NUL", raw_file((ROOT / "seeds" / "000_89b1b94dc6394612.txt").read_bytes() + b"\x00", "p.txt"),
         "NUL"),
]

CASES = HOSTILE + WRONG_TYPES

COMMANDS = {
    "load": lambda bad: ["load", bad],
    "diff FILE": lambda bad: ["diff", bad],
    "diff A B": lambda bad: ["diff", GOOD, bad],
    "show FILE": lambda bad: ["show", bad],
}


def database_bytes(db_path: Path) -> bytes:
    """The database file's bytes (and its WAL's); the CLI closes its connections when a command ends."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture(scope="module")
def settled(tmp_path_factory) -> bytes:
    """A database holding BASE, settled: every connection closed and the WAL checkpointed, so that
    its bytes change only if a command writes."""
    from monitor.cli import main

    path = tmp_path_factory.mktemp("settled") / "monitor.db"
    assert main(["--db", str(path), "load", str(OPENING / "2026-02-10.json")]) == 0
    gc.collect()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


@pytest.fixture
def stored(settled, db_path, capsys):
    db_path.write_bytes(settled)
    capsys.readouterr()
    return db_path


def test_the_table_has_a_wrong_type_for_every_field_the_normalizer_reads():
    assert len(WRONG_TYPES) >= 100
    for needed in ("designModule.phases=list", "enrollmentInfo.count=int", "identificationModule.briefTitle=str",
                   "startDateStruct.date=date", "contactsLocationsModule.locations=list", "statusModule=model"):
        assert any(needed in case.name for case in WRONG_TYPES), needed


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_file_is_refused_with_one_line_and_nothing_stored(
    case, command, monitor, stored, tmp_path, monkeypatch
):
    monkeypatch.setattr(limits, "DEFAULT_LIMITS", limits.Limits(**case.limits))
    folder = tmp_path / "in"
    folder.mkdir()
    bad = case.make(folder)
    before = database_bytes(stored)
    run = monitor(*COMMANDS[command](bad))
    assert (run.code, run.out) == (2, ""), run.err
    assert run.err.startswith("error: ") and run.err.count("\n") == 1, run.err
    if command in case.says_on:
        assert case.says in run.err
    if command == "load" and case.says:
        assert "nothing was stored" in run.err
    assert database_bytes(stored) == before


def test_the_error_line_names_the_file_and_the_json_path(monitor, stored, tmp_path):
    bad = json_file(edited("protocolSection.designModule.phases", "PHASE2"), "trials.json")(tmp_path)
    run = monitor("load", bad)
    assert run.err == (
        f"error: {bad}: protocolSection.designModule.phases: expected a list of phase names, "
        'got the string "PHASE2"; nothing was stored\n'
    )


@pytest.mark.parametrize("command", ["show", "history", "diff"])
def test_full_width_digits_are_not_an_nct_id(command, monitor, stored):
    run = monitor(command, "NCT０６８２１５０３")
    assert run.code == 2 and run.err.startswith("error: NCT０６８２１５０３ is not an NCT id")


@pytest.mark.parametrize("make, says", [(fifo, "a FIFO (named pipe)"), (symlink_loop, "a symbolic link loop")])
def test_a_folder_holding_a_fifo_or_a_symlink_loop_is_refused_without_blocking(make, says, monitor, stored, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    json_file(BASE, "good.json")(folder)
    bad = make(folder)
    run = monitor("load", folder)
    assert run.code == 2 and run.err.count("\n") == 1
    assert run.err.startswith(f"error: {bad}: {says}") and run.err.endswith("; nothing was stored\n")


@pytest.mark.parametrize("command", ["diff FILE", "diff A B", "show FILE"])
def test_a_folder_where_a_file_is_needed_is_named(command, monitor, stored, tmp_path):
    run = monitor(*COMMANDS[command](tmp_path))
    assert (run.code, run.err) == (2, f"error: {tmp_path}: a folder, where one snapshot file is needed\n")


@pytest.mark.parametrize("depth, refused", [(9, False), (64, False), (65, True), (100_000, True)])
def test_json_nesting_is_refused_past_the_limit_before_parsing(depth, refused):
    from monitor.errors import ParseError
    from monitor.normalize import jsontext

    for text in ("[" * depth + "]" * depth, '{"a":' * depth + '"[{"' + "}" * depth):
        if refused:
            with pytest.raises(ParseError, match="nested more than 64 levels"):
                jsontext.decode(text)
        else:
            jsontext.decode(text)
