"""vault.match, the vault's scorer: the EIP-712 ``Match`` type cross-checked with eth-account
and ethers, reference normalisation, the history summary, the two tiers, never-shared and
disliked items, the determinism and the privacy figure (THREATS row 39)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vault import match, scopes
from vault.canonical import json_hash
from vault.eth import eip712
from vault.eth.eip712 import MATCH, Domain
from vault.identity import Event, EventKind
from vault.wire import MatchRequest

LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REPO = Path(__file__).resolve().parent.parent
NOW = 1_763_800_000.0
SECRET = b"\x07" * 32
COMPANY = "0x" + "ab" * 20
PROFILE = {
    "preferences.music": {"status": "ok", "genres": [{"genre": "jazz", "weight": 0.6},
                                                     {"genre": "rock", "weight": 0.2}]},
    "preferences.video": {"status": "ok", "genres": [{"genre": "animation", "weight": 0.5}],
                          "platforms": []},
    "interests.topics": {"status": "insufficient_data"},
}


def history(*plays: tuple[str, str, int], views: tuple[str, ...] = ()) -> match.History:
    found = match.History()
    found.fold([Event(EventKind.PLAY, int(NOW) - 3600, "t",
                      {"artist": artist, "track": track, "ms_played": 200_000})
                for artist, track, times in plays for _ in range(times)])
    found.fold([Event(EventKind.VIEW, int(NOW) - 86_400, "t", {"title": title})
                for title in views])
    return found


def person(found: match.History | None = None, **kw: Any) -> match.Person:
    return match.person(PROFILE, found or match.History(), never_shared=kw.get("never", ()),
                        dislikes=kw.get("dislikes", ()), now=NOW)


def listing(size: int = 30, **probe: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"id": f"c{i}", "kind": "track", "genres": ["pop"], "title": f"Song {i}"}
        for i in range(size)
    ]
    listed[0] = {**listed[0], **probe}
    return listed


def first(**probe: Any) -> match.Candidate:
    """The probed candidate of a listing, as the scorer reads it."""
    return match.read_candidates(listing(**probe))[0]


def ranked(listed: list[dict[str, Any]], who: match.Person, *, tier: str = match.HISTORY,
           k: int = 10, company: str = COMPANY, now: float = NOW) -> tuple[str, ...]:
    return match.rank(match.read_candidates(listed), who, k=k, tier=tier, company=company,
                      secret=SECRET, now=now).ids


# --------------------------------------------------------------------------- EIP-712


def test_match_type_string_and_hash_are_the_agreed_ones() -> None:
    agreed = ("Match(uint256 grantId,uint64 scopes,bytes32 candidatesHash,uint8 k,"
              "bytes32 nonce,uint64 issuedAt)")
    assert MATCH.encode_type == agreed
    assert keccak(text=agreed) == eip712.MATCH_TYPEHASH


@settings(max_examples=40, deadline=None)
@given(grant_id=st.integers(0, 2**256 - 1), bitmap=st.integers(0, 2**64 - 1),
       listed=st.binary(min_size=32, max_size=32), k=st.integers(0, 255),
       nonce=st.binary(min_size=32, max_size=32), issued_at=st.integers(0, 2**64 - 1))
def test_match_digest_matches_eth_account(grant_id: int, bitmap: int, listed: bytes, k: int,
                                          nonce: bytes, issued_at: int) -> None:
    domain = Domain(31337, LEDGER)
    message = {"grantId": grant_id, "scopes": bitmap, "candidatesHash": listed, "k": k,
               "nonce": nonce, "issuedAt": issued_at}
    signable = encode_typed_data(full_message=eip712.typed_data(domain, MATCH, message))
    assert domain.match_digest(grant_id, bitmap, listed, k, nonce, issued_at) == bytes(
        _hash_eip191_message(signable))


def test_match_digest_refuses_a_k_beyond_uint8() -> None:
    with pytest.raises(ValueError):
        Domain(1, LEDGER).match_digest(1, 1, bytes(32), 256, bytes(32), 1)


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None or not (REPO / "node_modules" / "ethers").is_dir(),
                    reason="needs Node.js and node_modules/ethers")
def test_match_signed_with_ethers_verifies_in_python() -> None:
    domain = Domain(31337, LEDGER)
    listed = "0x" + json_hash(listing()).hex()
    message = {"grantId": 7, "scopes": scopes.bitmap(["match.history"]),
               "candidatesHash": listed, "k": 10, "nonce": "0x" + "11" * 32,
               "issuedAt": 1_763_800_000}
    document = eip712.typed_data(domain, MATCH, message)
    key = os.urandom(32)
    job = {"op": "sign", "privateKey": "0x" + key.hex(), "domain": document["domain"],
           "types": document["types"], "primaryType": "Match",
           "message": {k: str(v) if isinstance(v, int) else v for k, v in message.items()}}
    done = subprocess.run(["node", str(Path(__file__).with_name("eip712_crosscheck.js"))],
                          input=json.dumps(job), capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=True)
    signed = json.loads(done.stdout)
    digest = domain.match_digest(7, message["scopes"], listed, 10, "0x" + "11" * 32,
                                 1_763_800_000)
    assert eip712.recover_signer(digest, signed["signature"]) == eip712.address_of(key)


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_unit = st.one_of(st.sampled_from([0, 1, 0.0, 1.0, -0.0, 1e-06, 2.5e-06, 5e-05, 1e-4, 0.5]),
                  st.floats(0, 1, allow_nan=False))
_candidate = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=8)},
    optional={
        "title": st.one_of(st.none(), _text), "kind": st.sampled_from([None, "movie", "track"]),
        "genres": st.lists(_text, max_size=3), "tags": st.lists(_text, max_size=3),
        "prior": st.one_of(st.none(), _unit),
        "similar": st.lists(st.one_of(
            st.text(min_size=1, max_size=12),
            st.fixed_dictionaries({"weight": _unit, "ref": st.text(min_size=1, max_size=12)}),
        ), max_size=4),
    },
)


def _body(candidates: list[Any]) -> bytes:
    return json.dumps({"grant_id": 1, "scopes": ["match.history"], "k": 10,
                       "candidates": candidates, "nonce": "0x" + "11" * 32, "issued_at": 1,
                       "signature": "0x" + "22" * 65}, ensure_ascii=False).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(_candidate, min_size=1, max_size=4), st.randoms())
def test_candidates_hash_is_keccak_of_the_rfc8785_json_as_sent(
    candidates: list[dict[str, Any]], rng: Any
) -> None:
    """Whatever the order of the keys sent, the numbers (0, 1.0, 5e-05) or the strings
    (control characters, non-ASCII), the hash of the validated list is that of the JSON
    value the company sent, encoded by the reference RFC 8785 implementation."""
    sent = [dict(rng.sample(list(c.items()), len(c))) for c in candidates]
    raw = _body(sent)
    assert match.candidates_hash(match.read_request(raw).candidates) == keccak(
        rfc8785.dumps(json.loads(raw)["candidates"]))


@pytest.mark.parametrize("candidate", [
    {"id": "a"}, {"id": ""}, {"id": "a" * 65}, {"id": 7}, {"id": "a", "prior": "0.5"},
    {"id": "a", "prior": 1.5}, {"id": "a", "prior": 1}, {"id": "a", "prior": None},
    {"id": "a", "kind": "book"}, {"id": "a", "kind": None}, {"id": "a", "colour": "red"},
    {"id": "a", "genres": ["x"] * 11}, {"id": "a", "genres": ["x" * 41]},
    {"id": "a", "tags": ["x"] * 21}, {"id": "a", "title": "x" * 201}, {"id": "a", "title": 5},
    {"id": "a", "similar": [""]}, {"id": "a", "similar": ["x" * 201]},
    {"id": "a", "similar": [{"ref": "x", "weight": 2}]}, {"id": "a", "similar": [{"ref": "x"}]},
    {"id": "a", "similar": [{"ref": "x", "weight": 0.5, "why": 1}]},
    {"id": "a", "similar": [3]}, {"id": "a", "similar": ["x"] * 51},
    {"id": "a", "similar": [{"ref": "x", "weight": True}]},
])
def test_the_request_is_validated_as_the_wire_model_documents(candidate: dict[str, Any]
                                                              ) -> None:
    """The route's validator (plain dicts) accepts and refuses what the published model,
    vault.wire.MatchRequest, does."""
    raw = _body([candidate])
    try:
        MatchRequest.model_validate_json(raw)
        documented = True
    except ValidationError:
        documented = False
    try:
        read = match.read_request(raw)
        enforced = True
    except match.Malformed:
        enforced = False
    assert enforced == documented
    if enforced:
        # exactly what was sent, nothing added
        assert match.as_json_value(read.candidates) == [candidate]


@pytest.mark.parametrize(("field", "value", "read"), [
    ("grant_id", 2650, 2650), ("grant_id", 2650.0, 2650), ("k", 6.0, 6),
    ("issued_at", 1e9, 10**9), ("grant_id", 2**53 - 1, 2**53 - 1),
    ("grant_id", 2650.5, None), ("k", 6.5, None), ("grant_id", "5", None),
    ("k", True, None), ("issued_at", -1, None), ("grant_id", 2**53, None),
    ("scopes", [], None), ("scopes", ["preferences.music"], None), ("nonce", "0x11", None),
])
def test_the_request_s_integers_are_json_schema_integers(field: str, value: Any,
                                                          read: int | None) -> None:
    """An integer is one as the published schema has it (JSON Schema: 6 or 6.0, never 6.5,
    "6" or true), read as a Python int; anything else is malformed."""
    raw = json.dumps({**json.loads(_body([{"id": "a"}])), field: value}).encode()
    if read is None:
        with pytest.raises(match.Malformed):
            match.read_request(raw)
    else:
        found = getattr(match.read_request(raw), field)
        assert found == read and type(found) is int


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(st.characters(codec="ascii"), max_size=30),
    st.from_regex(r"[ A-Za-z_.-]{0,12} ?[(\[] ?[0-9]{4} ?[)\]]\s*", fullmatch=True),
    st.text(max_size=30),
), max_size=8))
def test_normalise_many_is_normalise_of_each(texts: list[str]) -> None:
    assert match.normalise_many(texts) == [match.normalise(t) for t in texts]


# --------------------------------------------------------------------------- the catalog


def test_the_catalog_names_the_scorer_and_its_noise() -> None:
    for name in match.SCOPES:
        entry = scopes.scope(name)
        assert entry.transform.startswith(match.SCORER + ":")
        assert entry.bit in (16, 17)
    assert f"scale {match.GUMBEL_SCALE}" in scopes.scope(match.HISTORY).transform


# --------------------------------------------------------------------------- history


def test_normalise_drops_case_punctuation_and_a_trailing_year() -> None:
    assert match.normalise("Toy Story (1995)") == "toy story"
    assert match.normalise("  AC/DC ") == "ac dc"
    assert match.normalise("Beyoncé") == match.normalise("BEYONCÉ")
    assert match.normalise(7) == ""


def test_history_skips_short_plays_and_counts_uses() -> None:
    found = match.History()
    found.fold([Event(EventKind.PLAY, 10, "t", {"artist": "A", "track": "T", "ms_played": 5})])
    assert found.refs["artist"] == {}
    found = history(("Nina Simone", "Feeling Good", 3), views=("Toy Story",))
    assert found.refs["artist"]["nina simone"][0] == 3
    assert found.refs["title"]["toy story"][0] == 1
    # A film is watched once: one view a day ago counts (almost) fully; an artist played
    # three times counts less than one played twenty times, and old uses count less.
    assert 0.99 < found.affinity("title", "toy story", now=NOW) <= 1
    assert found.affinity("title", "toy story", now=NOW + 365 * 86_400) < 0.7
    assert 0.5 < found.affinity("artist", "nina simone", now=NOW) < 0.7
    assert history(("Nina Simone", "Feeling Good", 20)).affinity(
        "artist", "nina simone", now=NOW) > 0.99


# --------------------------------------------------------------------------- ranking


def test_ranking_holds_exactly_k_distinct_ids_of_the_list() -> None:
    for k in (1, 5, 10):
        ids = ranked(listing(), person(), k=k)
        assert len(ids) == len(set(ids)) == k
        assert set(ids) <= {c["id"] for c in listing()}


def test_history_ranks_a_favourite_first_and_content_ranks_by_genre() -> None:
    # Each reference moves a score by at most 1 (the ε's sensitivity): the favourite is
    # related to five things the person plays, so that it stands out of the noise.
    songs = ("Feeling Good", "Sinnerman", "Ain't Got No", "Wild Is the Wind")
    who = person(history(*(("Nina Simone", song, 30) for song in songs)))
    probe = {"similar": ["Nina Simone", {"ref": "Sinnerman", "weight": 1},
                         {"ref": "Feeling Good", "weight": 0.9}, *songs[2:]]}
    assert ranked(listing(**probe), who)[0] == "c0"
    assert ranked(listing(genres=["Jazz"]), who, tier=match.CONTENT)[0] == "c0"


def test_content_tier_reads_nothing_of_the_history() -> None:
    """THREATS row 39: under match.content the answer is the same whether or not the person
    consumed the probed item, and whatever the probe's title and similar list say."""
    consumed = person(history(("Probe Band", "Probe Song", 50), views=("Probe Film",)))
    never = person()
    answers = {
        ranked(listing(**probe), who, tier=match.CONTENT)
        for who in (consumed, never)
        for probe in ({"title": "Probe Film", "similar": ["Probe Band", "Probe Song"]},
                      {"title": "Other", "similar": ["Nobody"]}, {})
    }
    assert len(answers) == 1


def test_the_same_list_gets_the_same_ranking_within_an_epoch_only() -> None:
    who = person()
    listed = listing()
    assert ranked(listed, who) == ranked(listed, who, now=NOW + 3600)
    later = {ranked(listed, who, now=NOW + week * 7 * 86_400) for week in range(1, 6)}
    assert len(later) > 1  # fresh noise each epoch
    assert len({ranked(listed, who, company="0x" + f"{c:040x}") for c in range(5)}) > 1


def test_never_shared_scopes_and_dislikes_contribute_nothing() -> None:
    played = history(("Nina Simone", "Feeling Good", 30))
    probe = {"similar": ["Nina Simone", "Feeling Good"], "genres": ["jazz"]}
    assert match.score(first(**probe), person(played), tier=match.HISTORY).history > 0
    for who in (person(played, never=["preferences.music"]),
                person(played, dislikes=["nina simone", "feeling good", "Jazz"])):
        scored = match.score(first(**probe), who, tier=match.HISTORY)
        assert scored.history == 0
        assert scored.content == 0 or who.profile.get("music") is None
    silenced = person(played, dislikes=["jazz"])
    assert match.score(first(**probe), silenced, tier=match.CONTENT).content == 0


def test_epsilon_per_tier() -> None:
    assert match.epsilon(match.CONTENT, 10) == 0
    assert match.epsilon(match.HISTORY, 10) == pytest.approx(10 / match.GUMBEL_SCALE, abs=1e-3)
    assert match.tier_of(["match.content", "match.history"]) == match.HISTORY


def test_reasons_are_words() -> None:
    who = person(history(("Nina Simone", "Feeling Good", 14)))
    scored = match.score(first(similar=["Nina Simone"], genres=["jazz"]), who,
                         tier=match.HISTORY)
    assert match.reason(scored) == "1 related artist you played 14 times; you like jazz"
