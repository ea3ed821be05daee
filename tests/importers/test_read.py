"""The shared streaming readers: bounded records, one error type, no quoted values."""

from __future__ import annotations

import io

import pytest

from vault.errors import MalformedExport
from vault.importers._read import MAX_RECORD_BYTES, csv_rows, json_array, jsonl

RECORD = b'{"a": 1}'


def array(data: bytes, **kwargs) -> list:
    return list(json_array(io.BytesIO(data), filename="f.json", **kwargs))


def test_json_array_yields_numbered_objects_and_skips_bom():
    assert array(b"\xef\xbb\xbf \n[" + RECORD + b"," + RECORD + b"]") == [
        (1, {"a": 1}),
        (2, {"a": 1}),
    ]


def test_json_array_streams_across_many_chunks():
    data = b"[" + b",".join([RECORD] * 50_000) + b"]"
    assert sum(1 for _ in json_array(io.BytesIO(data), filename="f.json")) == 50_000


@pytest.mark.parametrize(
    ("data", "record", "problem"),
    [
        (b"", None, "empty file"),
        (b" " * 200_000, None, "empty file"),
        (b'{"a": 1}', None, "expected a JSON array"),
        (b"[" + RECORD + b", 3]", 2, "not a JSON object"),
        (b"[" + RECORD + b"] trailing", 2, "not valid JSON"),
        (b"[" + RECORD + b", {\"a\": \"\xff\xfe\"}]", 2, "not valid JSON"),
        (b"[" + RECORD, 2, "not valid JSON"),
    ],
)
def test_json_array_refuses_malformed_input(data, record, problem):
    """THREATS row 30: bad JSON, truncated files, not an array."""
    with pytest.raises(MalformedExport) as caught:
        array(data)
    assert (caught.value.path, caught.value.record) == ("f.json", record)
    assert problem in caught.value.problem


def test_json_error_does_not_quote_the_file():
    """THREATS rows 9 and 30: the JSON parser's message quotes the bytes around the error;
    ours never does."""
    data = b'[{"track": "CANARY-7f3a-raw-track", oops}]'
    with pytest.raises(MalformedExport) as caught:
        array(data)
    assert "CANARY" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_json_array_refuses_a_huge_record_before_reading_it_all():
    """THREATS row 30: a record past the cap is refused while ijson is still reading it."""

    class Counting(io.BytesIO):
        served = 0

        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            Counting.served += len(data)
            return data

    huge = b'{"t": "' + b"x" * (64 * MAX_RECORD_BYTES) + b'"}'
    stream = Counting(b"[" + RECORD + b"," + huge + b"]")
    with pytest.raises(MalformedExport) as caught:
        list(json_array(stream, filename="f.json"))
    assert caught.value.record == 2
    assert "record larger than" in caught.value.problem
    assert Counting.served < 2 * MAX_RECORD_BYTES


def test_json_array_accepts_records_just_under_the_cap():
    big = b'{"t": "' + b"x" * (MAX_RECORD_BYTES - 100_000) + b'"}'
    assert len(array(b"[" + big + b"," + big + b"]")) == 2


def test_jsonl_refuses_a_huge_line():
    """THREATS row 30: huge lines."""
    data = RECORD + b"\n" + b"x" * (MAX_RECORD_BYTES + 10) + b"\n"
    with pytest.raises(MalformedExport) as caught:
        list(jsonl(io.BytesIO(data), filename="f.jsonl"))
    assert caught.value.record == 2
    assert "line longer than" in caught.value.problem


def rows(data: bytes) -> list:
    return list(csv_rows(io.BytesIO(data), filename="f.csv", required=("a",)))


def test_csv_rows_skip_blank_lines_and_keep_quoted_newlines():
    assert rows(b"\xef\xbb\xbfa,b\r\n1,\"x\ny\"\r\n\r\n2,z\r\n") == [
        (1, {"a": "1", "b": "x\ny"}),
        (3, {"a": "2", "b": "z"}),
    ]


@pytest.mark.parametrize(
    ("data", "record", "problem"),
    [
        (b"", None, "empty file"),
        (b"b,c\n1,2\n", None, "lacks column(s) 'a'"),
        (b"a,a\n1,2\n", None, "names a column twice"),
        (b"a,b\n1,2\n1,2,3\n", 2, "expected 2 columns, found 3"),
        (b"a,b\n1,2\n\xff,2\n", 2, "not UTF-8"),
        (b"a,b\n1,2\n" + b"x" * (MAX_RECORD_BYTES + 1) + b"\n", 2, "line longer than"),
        (b'a,b\n1,"' + b"x" * 200_000 + b'"\n', 1, "not valid CSV"),
    ],
)
def test_csv_rows_refuse_malformed_input(data, record, problem):
    """THREATS row 30: wrong columns, huge lines, not UTF-8."""
    with pytest.raises(MalformedExport) as caught:
        rows(data)
    assert (caught.value.path, caught.value.record) == ("f.csv", record)
    assert problem in caught.value.problem
