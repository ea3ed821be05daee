"""The bundled sample exports (vault/samples) parse with their importers."""

from __future__ import annotations

from collections import Counter

from vault.identity import Event, EventKind, Fact
from vault.importers import importer_for, sample_exports

CANARY = "CANARY-7f3a-raw-track"


def load() -> dict[str, list[Event | Fact]]:
    out = {}
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            out[kind] = list(importer_for(kind).parse(stream, filename=path.name))
    return out


def test_every_sample_parses_into_a_realistic_set():
    records = load()
    plays = records["spotify"]
    assert len(plays) > 300
    assert len({e.attrs["artist"] for e in plays if isinstance(e, Event)}) >= 10
    assert 100 < len(records["spotify-extended"]) < 180  # podcasts and incognito dropped
    assert len(records["youtube"]) == 92  # the ad and the removed video dropped
    assert len(records["netflix"]) == 42  # the trailer and the hook dropped
    assert Counter(e.kind for e in records["jsonl"] if isinstance(e, Event)) == {
        EventKind.PURCHASE: 28
    }
    assert len(records["csv"]) == 42
    facts = {f.name for f in records["profile"] if isinstance(f, Fact)}
    assert "birth_date" in facts and "household_size" in facts


def test_the_canary_is_planted_once():
    """THREATS row 29: the raw canary value other tests look for is in the samples."""
    tracks = [e.attrs["track"] for e in load()["spotify"] if isinstance(e, Event)]
    assert tracks.count(CANARY) == 1
