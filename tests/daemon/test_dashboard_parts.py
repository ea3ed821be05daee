"""The dashboard's pure parts: login codes and sessions, the earnings chart, and the upload
form's parser."""

from __future__ import annotations

import httpx
import pytest

from vault.daemon import earnings_chart, uploads
from vault.daemon.sessions import LOGIN_CODE_SECONDS, MAX_SESSIONS, SESSION_SECONDS, Sessions
from vault.grant import Grant, Status

ADDRESS = "0x" + "11" * 20


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def grant(grant_id: int, *, starts_at: int, price: int = 10**18, duration: int = 1000,
          status: Status = Status.ACTIVE, owner_earned: int | None = None) -> Grant:
    return Grant(id=grant_id, owner=ADDRESS, company=ADDRESS, scopes=1, price=price,
                 duration=duration, max_releases=0, status=status, starts_at=starts_at,
                 owner_earned=owner_earned)


def test_a_login_code_is_spent_by_its_first_use() -> None:
    sessions = Sessions(clock=Clock())
    code, _ = sessions.new_login_code()
    first = sessions.exchange(code)
    assert first is not None
    assert sessions.exchange(code) is None
    session_id, session = first
    assert sessions.find(session_id) is session
    assert code not in repr(sessions) and session.csrf not in repr(session)


def test_login_codes_and_sessions_expire() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    code, expires_at = sessions.new_login_code()
    assert expires_at == clock.now + LOGIN_CODE_SECONDS
    clock.now = expires_at
    assert sessions.exchange(code) is None

    code, _ = sessions.new_login_code()
    exchanged = sessions.exchange(code)
    assert exchanged is not None
    clock.now += SESSION_SECONDS - 1
    assert sessions.find(exchanged[0]) is not None  # use renews it
    clock.now += SESSION_SECONDS - 1
    assert sessions.find(exchanged[0]) is not None
    clock.now += SESSION_SECONDS
    assert sessions.find(exchanged[0]) is None


def test_the_csrf_token_must_match_exactly() -> None:
    sessions = Sessions(clock=Clock())
    exchanged = sessions.exchange(sessions.new_login_code()[0])
    assert exchanged is not None
    session = exchanged[1]
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf[:-1])


def test_sessions_are_bounded_and_ended_ones_are_gone() -> None:
    sessions = Sessions(clock=Clock())
    made = []
    for _ in range(MAX_SESSIONS + 1):
        exchanged = sessions.exchange(sessions.new_login_code()[0])
        assert exchanged is not None
        made.append(exchanged[0])
    assert sum(sessions.find(s) is not None for s in made) == MAX_SESSIONS
    sessions.end(made[-1])
    assert sessions.find(made[-1]) is None


def test_earnings_stream_linearly_and_stop_at_the_revoke_split() -> None:
    active = grant(1, starts_at=100)
    assert earnings_chart.earned_at(active, 100) == 0
    assert earnings_chart.earned_at(active, 600) == 10**18 // 2
    assert earnings_chart.earned_at(active, 5000) == 10**18
    revoked = grant(2, starts_at=100, status=Status.REVOKED, owner_earned=10**17)
    assert earnings_chart.earned_at(revoked, 5000) == 10**17
    assert earnings_chart.earned_at(grant(3, starts_at=0), 5000) == 0  # never approved


def test_the_chart_stacks_grants_and_ends_at_the_total() -> None:
    grants = [grant(1, starts_at=100), grant(2, starts_at=600, price=2 * 10**18)]
    chart = earnings_chart.chart(grants, now=1100)
    assert chart is not None
    assert [s.grant_id for s in chart.series] == [1, 2]
    assert chart.max_wei == 10**18 + 10**18
    assert [s.earned_wei for s in chart.series] == [10**18, 10**18]
    top_right = chart.series[-1].points.split()[len(chart.series[-1].points.split()) // 2 - 1]
    assert top_right == f"{chart.right:.1f},{chart.top:.1f}"
    assert earnings_chart.chart([grant(1, starts_at=0)], now=1100) is None


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A body and its Content-Type as httpx (another implementation) encodes them."""
    built = httpx.Request("POST", "http://127.0.0.1/", data=fields, files=files)
    return built.read(), built.headers["content-type"]


def test_the_upload_parser_reads_what_a_client_encodes_byte_for_byte() -> None:
    content = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\r\n"
    body, content_type = multipart({"csrf": "tøken", "kind": ""},
                                   {"file": ("Streaming History.json", content)})
    upload = uploads.parse(body, content_type, max_file_bytes=len(content))
    assert upload == uploads.Upload(fields={"csrf": "tøken", "kind": ""},
                                    filename="Streaming History.json", content=content)
    with pytest.raises(uploads.UploadTooLarge):
        uploads.parse(body, content_type, max_file_bytes=len(content) - 1)


@pytest.mark.parametrize(("body", "content_type", "said"), [
    (b"", "multipart/form-data; boundary=x", "not a complete"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
     "multipart/form-data; boundary=x", "holds no file"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
     "multipart/form-data", "no valid boundary"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
     "text/plain; boundary=x", "must be sent as multipart/form-data"),
    (b"--x\r\nContent-Type: text/plain\r\n\r\n1\r\n--x--\r\n",
     "multipart/form-data; boundary=x", "no form-data name"),
    (b"--x\r\nno header end\r\n--x--\r\n", "multipart/form-data; boundary=x", "no headers"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--x--\r\n",
     "multipart/form-data; boundary=x", "not UTF-8"),
])
def test_the_upload_parser_refuses_what_is_not_the_form(
    body: bytes, content_type: str, said: str
) -> None:
    with pytest.raises(uploads.MalformedUpload, match=said):
        uploads.parse(body, content_type, max_file_bytes=1024)


def test_the_upload_parser_takes_one_file_and_a_few_short_fields() -> None:
    two_files, content_type = multipart({}, {"file": ("a.json", b"[]")})
    second = two_files.replace(b"--\r\n", b"\r\n", 1)  # reopen the closing delimiter
    boundary = content_type.split("boundary=")[1].encode()
    second += b'Content-Disposition: form-data; name="file"; filename="b.json"\r\n\r\n[]'
    second += b"\r\n--" + boundary + b"--\r\n"
    with pytest.raises(uploads.MalformedUpload, match="exactly one file"):
        uploads.parse(second, content_type, max_file_bytes=1024)
    many, content_type = multipart({f"f{i}": "1" for i in range(uploads.MAX_PARTS)},
                                   {"file": ("a.json", b"[]")})
    with pytest.raises(uploads.MalformedUpload, match="more than"):
        uploads.parse(many, content_type, max_file_bytes=1024)
    long, content_type = multipart({"note": "x" * (uploads.MAX_FIELD_BYTES + 1)},
                                   {"file": ("a.json", b"[]")})
    with pytest.raises(uploads.MalformedUpload, match="too long"):
        uploads.parse(long, content_type, max_file_bytes=1024)
