"""A /studies page cut into pieces of whole studies without decoding it (monitor.sources.ctgov_pages):
the cuts are where each study starts; a page of another shape is not cut (it is read the old way)."""

from __future__ import annotations

import json

import pytest

from monitor.errors import ParseError
from monitor.limits import DEFAULT_LIMITS, Limits
from monitor.normalize import jsontext
from monitor.prepare import decode
from monitor.sources.ctgov_pages import split_page


def study(nct: str, **more) -> dict:
    return {"protocolSection": {"identificationModule": {"nctId": nct}, **more}, "hasResults": False}


def page(studies: list, token: str | None = None, indent: int | None = None) -> bytes:
    body = {"studies": studies, **({"nextPageToken": token} if token else {})}
    return json.dumps(body, indent=indent, ensure_ascii=False).encode()


STUDIES = [study(f"NCT0000000{i}", note=f'trial {i}, {{not a brace}} "quoted" ,{{"protocolSection"') for i in range(5)]


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty"])
@pytest.mark.parametrize("size", [1, 2, 5])
def test_a_page_is_cut_where_each_study_starts_and_its_pieces_decode_to_its_studies(indent, size):
    body = page(STUDIES, "tok-1", indent)
    split = split_page(body)
    assert split is not None and split.token == "tok-1" and len(split.starts) == 5
    decoded = []
    for _, piece in split.pieces(body, size):
        decoded += json.loads(b"[" + piece + b"]")
    assert decoded == STUDIES


@pytest.mark.parametrize(
    "body",
    [
        page([]),  # nothing to cut
        b'{"totalCount": 5, ' + page(STUDIES)[1:],  # another member before the studies
        page(STUDIES)[:-1] + b', "more": 1}',  # another member after them
        page(STUDIES)[:-2],  # truncated
        b'{"studies": {"protocolSection": {}}}',  # not a list
        b"\xef\xbb\xbf" + page(STUDIES),  # a byte-order mark
        page(STUDIES)[:-1] + b', "nextPageToken": ""}',  # an empty token: refused the old way, not "the last"
    ],
    ids=["empty", "member-before", "member-after", "truncated", "not-a-list", "bom", "empty-token"],
)
def test_a_page_of_another_shape_is_not_cut(body):
    assert split_page(body) is None


def test_a_study_nesting_what_looks_like_a_study_start_is_cut_wrongly_and_its_piece_refused():
    inner = study("NCT00000009")
    hostile = study("NCT00000008", arms=[1, inner])  # ',{"protocolSection"' inside a study
    body = page([hostile, STUDIES[0]])
    split = split_page(body)
    assert len(split.starts) == 3  # one cut too many ...
    pieces = split.pieces(body, 1)
    assert decode(pieces[0][1], "o", frozenset(), DEFAULT_LIMITS) is None  # ... whose pieces do not decode
    both = decode(
        b"".join(p for _, p in [(0, body[split.starts[0] : split.ends[-1]])]), "o", frozenset(), DEFAULT_LIMITS
    )
    assert [found[0] for found in both] == ["NCT00000008", "NCT00000000"]


@pytest.mark.parametrize(
    "value",
    ['"a NUL \\u0000 here"', '"a lone \\ud800 surrogate"', "1" * 41, "1e999", "[" * 70 + "]" * 70],
    ids=["nul", "surrogate", "huge-integer", "infinite", "too-deep"],
)
def test_a_piece_with_a_value_the_limits_refuse_is_left_to_the_old_way(value):
    body = page([study("NCT00000001", note="x")]).replace(b'"x"', value.encode())
    piece = split_page(body).pieces(body, 25)[0][1]
    assert decode(piece, "o", frozenset(), DEFAULT_LIMITS) is None  # the parent reads the page, with its error
    with pytest.raises(ParseError):
        jsontext.decode(body.decode(), DEFAULT_LIMITS)


def test_a_piece_within_the_limits_is_decoded_numbers_and_escapes_included():
    body = page([study("NCT00000001", note="x")]).replace(b'"x"', b'[1e5, 12345678901234567890, "\\u00e9"]')
    found = decode(split_page(body).pieces(body, 25)[0][1], "o", frozenset(), DEFAULT_LIMITS)
    assert [study[0] for study in found] == ["NCT00000001"]
    assert json.loads(found[0][1])["protocolSection"]["note"] == [1e5, 12345678901234567890, "\u00e9"]


def test_a_piece_decoded_by_a_worker_keeps_the_text_an_unpooled_fetch_stores():
    body = page(STUDIES, indent=2)
    split = split_page(body)
    found = decode(split.pieces(body, 5)[0][1], "o", frozenset(), DEFAULT_LIMITS)
    assert [study[1] for study in found] == [json.dumps(s, ensure_ascii=False) for s in STUDIES]


def test_a_study_longer_than_a_text_may_be_is_looked_at_value_by_value():
    limits = Limits(max_text_chars=1_000)
    many = page([study("NCT00000001", notes=["x" * 900] * 3)])  # long, each text within the limit
    one = page([study("NCT00000001", note="x" * 1_500)])  # one text past it
    assert [study[0] for study in decode(split_page(many).pieces(many, 25)[0][1], "o", frozenset(), limits)] == [
        "NCT00000001"
    ]
    assert decode(split_page(one).pieces(one, 25)[0][1], "o", frozenset(), limits) is None
