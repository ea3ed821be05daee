"""Generic JSONL and CSV events."""

from __future__ import annotations

import io

import pytest

from vault.errors import MalformedExport
from vault.identity import Event, EventKind
from vault.importers.generic import CsvImporter, JsonlImporter


def jsonl(text: str) -> list[Event]:
    return list(JsonlImporter().parse(io.BytesIO(text.encode()), filename="e.jsonl"))


def csv_(text: str) -> list[Event]:
    return list(CsvImporter().parse(io.BytesIO(text.encode()), filename="e.csv"))


def test_jsonl_fixture(parse):
    assert parse("jsonl", "events.jsonl") == [
        Event(EventKind.PURCHASE, 1706955300, "jsonl",
              {"item": "Le Creuset casserole", "category": "kitchen", "price": 249.9,
               "currency": "EUR"}),
        Event(EventKind.MOOD, 1706950800, "jsonl", {"mood": "calm"}),
        Event(EventKind.PLAY, 1706958000, "jsonl",
              {"artist": "Miles Davis", "track": "So What", "ms_played": 545000,
               "genre": "jazz"}),
        Event(EventKind.VIEW, 1706990400, "jsonl",
              {"title": "Arte Concert: Jazz à Vienne", "platform": "arte", "seconds": 3600}),
    ]


def test_csv_fixture(parse):
    assert parse("csv", "events.csv") == [
        Event(EventKind.PURCHASE, 1706955300, "csv",
              {"item": "Wool scarf", "category": "clothing", "price": 39.5,
               "currency": "EUR"}),
        Event(EventKind.MOOD, 1706950800, "csv", {"mood": "happy"}),
        Event(EventKind.MOOD, 1707033600, "csv", {"mood": "tired"}),
    ]


def test_integer_price_is_normalised_to_float():
    """The same purchase written 12 or 12.0 must give the same canonical bytes."""
    head = '{"kind":"purchase","occurred_at":0,"item":"a","category":"b","currency":"EUR",'
    whole, decimal = jsonl(head + '"price":12}'), jsonl(head + '"price":12.0}')
    assert whole[0].canonical() == decimal[0].canonical()


def test_parsing_twice_gives_identical_canonical_bytes(parse):
    for kind, name in (("jsonl", "events.jsonl"), ("csv", "events.csv")):
        runs = [[e.canonical() for e in parse(kind, name)] for _ in range(2)]
        assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("name", "kind", "record", "problem"),
    [
        ("events_unknown_kind.jsonl", "jsonl", 2, "'kind' must be one of"),
        ("events_bad_json.jsonl", "jsonl", 2, "not valid JSON"),
        ("events_bad_mood.csv", "csv", 2, "'mood' must be one of"),
        ("events_wrong_columns.csv", "csv", None, "lacks column(s) 'occurred_at'"),
    ],
)
def test_malformed_fixture_names_file_and_record(parse, name, kind, record, problem):
    """THREATS row 30: unknown kinds, bad JSON, wrong columns."""
    with pytest.raises(MalformedExport) as caught:
        parse(kind, name)
    assert (caught.value.path, caught.value.record) == (name, record)
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"kind":"mood","mood":"calm"}', "missing field 'occurred_at'"),
        ('{"kind":"mood","occurred_at":-1,"mood":"calm"}', "'occurred_at' is out of range"),
        ('{"kind":"mood","occurred_at":true,"mood":"calm"}', "'occurred_at' must be unix"),
        ('{"kind":"mood","occurred_at":"31/01/2024","mood":"calm"}', "not an ISO 8601"),
        ('{"kind":"mood","occurred_at":0,"mood":"calm","note":"x"}', "'note' are not attr"),
        ('{"kind":"play","occurred_at":0,"artist":"a","track":"b","ms_played":-3}',
         "'ms_played' must not be negative"),
        ('{"kind":"play","occurred_at":0,"artist":"a","track":"b","ms_played":1.5}',
         "'ms_played' must be an integer"),
        ('{"kind":"play","occurred_at":0,"artist":"a","ms_played":1}', "missing field 'track'"),
        ('{"kind":"view","occurred_at":0,"title":"","platform":"x"}', "'title' must be a non"),
        ('{"kind":"purchase","occurred_at":0,"item":"a","category":"b","price":NaN,'
         '"currency":"EUR"}', "not valid JSON"),
        ('{"kind":"purchase","occurred_at":0,"item":"a","category":"b","price":-1,'
         '"currency":"EUR"}', "'price' must be a finite, non-negative"),
        ('{"kind":"purchase","occurred_at":0,"item":"a","category":"b","price":1,'
         '"currency":"euro"}', "'currency' must be an ISO 4217"),
        ('{"kind":["mood"],"occurred_at":0,"mood":"calm"}', "'kind' must be one of"),
        ("[1, 2]", "not a JSON object"),
        ("[" * 100_000, "nested deeper than 64 levels"),
        ('{"kind":"mood","occurred_at":0,"mood":' + "[" * 65 + "]" * 65 + "}", "nested deeper"),
    ],
)
def test_jsonl_bad_records(line, problem):
    """THREATS row 30: wrong types, bad dates, negative durations, deep nesting."""
    with pytest.raises(MalformedExport) as caught:
        jsonl('{"kind":"mood","occurred_at":0,"mood":"calm"}\n' + line + "\n")
    assert caught.value.record == 2
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("play,0,a,b,12x", "'ms_played' must be an integer"),
        ("play,0,a,b,-12", "'ms_played' must not be negative"),
        ("play,2024-13-01,a,b,1", "'occurred_at' is not an ISO 8601"),
        ("dance,0,a,b,1", "'kind' must be one of"),
        ('play,0,"a,b,1', "not valid CSV"),
    ],
)
def test_csv_bad_rows(row, problem):
    """THREATS row 30."""
    with pytest.raises(MalformedExport) as caught:
        csv_("kind,occurred_at,artist,track,ms_played\nplay,0,a,b,1\n" + row + "\n")
    assert caught.value.record == 2
    assert problem in caught.value.problem


def test_jsonl_depth_check_survives_py_evm_recursion_limit():
    """THREATS row 30: py-evm raises the recursion limit to 100,000 at import; a deeply nested
    line must still be refused with a message, not crash the process's C stack."""
    import eth  # noqa: F401  (the import is the point: it raises sys.getrecursionlimit())

    with pytest.raises(MalformedExport) as caught:
        jsonl("[" * 200_000 + "\n")
    assert "nested deeper" in caught.value.problem


def test_jsonl_brackets_inside_strings_do_not_count():
    events = jsonl('{"kind":"play","occurred_at":0,"artist":"' + "[" * 100
                   + '","track":"t","ms_played":1}\n')
    assert events[0].attrs["artist"] == "[" * 100
