from __future__ import annotations

from pathlib import Path

import pytest
import rfc8785
from eth_utils.crypto import keccak

from vault import errors, scopes

#: Published bits. A scope never changes its bit; new scopes take the next free one.
PUBLISHED_BITS = {
    "profile.age_range": 0,
    "profile.region": 1,
    "profile.languages": 2,
    "preferences.colors": 3,
    "preferences.style": 4,
    "preferences.music": 5,
    "preferences.video": 6,
    "preferences.food": 7,
    "interests.topics": 8,
    "shopping.gift_ideas": 9,
    "shopping.price_band": 10,
    "mood.current": 11,
    "activity.dayparts": 12,
    "household.size": 13,
    "shopping.categories": 14,
    "mood.recent": 15,
}

#: Known answer for catalog v4 (v3, 0xece90cdc…, had the match scorer match-v1; v2,
#: 0x7437309d…, had no match scopes; v1, 0x7bb2dfda…, drew the noise per company and epoch). If
#: this fails the catalog changed: bump CATALOG_VERSION, keep every published bit, and update
#: the hash here and in docs/scopes.md.
CATALOG_V4_HASH = "b47fd3ac88fe4c377a741702de0ebba53b3c2cf7945a138c579bcd1f1f73e6da"


def test_published_bits_never_move() -> None:
    assert {s.name: s.bit for s in scopes.CATALOG if s.name in PUBLISHED_BITS} == PUBLISHED_BITS


def test_bits_are_dense_unique_and_fit_a_uint64() -> None:
    bits = [s.bit for s in scopes.CATALOG]
    assert bits == list(range(len(scopes.CATALOG)))
    assert len(scopes.CATALOG) >= 14
    assert max(bits) < 64
    assert len({s.name for s in scopes.CATALOG}) == len(scopes.CATALOG)


@pytest.mark.parametrize("entry", scopes.CATALOG, ids=lambda s: s.name)
def test_every_scope_is_fully_described(entry: scopes.Scope) -> None:
    assert entry.name.count(".") == 1 and entry.name == entry.name.lower()
    assert entry.description and "\n" not in entry.description
    assert entry.transform and "\n" not in entry.transform
    assert entry.sensitivity in ("low", "medium", "high")
    assert entry.shape["type"] == "object"
    assert entry.shape["properties"]["status"] == {"const": "ok"}
    assert set(entry.shape["required"]) == set(entry.shape["properties"])


def test_catalog_hash_is_keccak_of_canonical_json() -> None:
    expected = bytes(keccak(rfc8785.dumps(scopes.catalog_json())))
    assert scopes.catalog_hash() == expected
    assert len(scopes.catalog_hash()) == 32
    assert scopes.catalog_hash().hex() == CATALOG_V4_HASH
    assert scopes.catalog_json()["version"] == scopes.CATALOG_VERSION
    # The hash covers the noise recipe too: a company pays for a known release noise.
    assert scopes.catalog_json()["noise"] == {
        "recipe": scopes.NOISE_RECIPE, "keep_probability": scopes.NOISE_KEEP_PROBABILITY
    }


def test_bitmap_round_trips_names() -> None:
    names = ["preferences.music", "profile.age_range", "mood.recent"]
    bits = scopes.bitmap(names)
    assert bits == (1 << 5) | 1 | (1 << 15)
    assert scopes.names_of(bits) == ["profile.age_range", "preferences.music", "mood.recent"]
    every = scopes.bitmap(s.name for s in scopes.CATALOG)
    assert scopes.names_of(every) == [s.name for s in scopes.CATALOG]
    assert scopes.bitmap([]) == 0 and scopes.names_of(0) == []


@pytest.mark.parametrize("name", ["preferences.musik", "", "PROFILE.AGE_RANGE", "x" * 10_000])
def test_unknown_names_raise_unknown_scope(name: str) -> None:
    with pytest.raises(errors.UnknownScope) as raised:
        scopes.bitmap(["profile.region", name])
    assert len(str(raised.value)) < 120
    with pytest.raises(errors.UnknownScope):
        scopes.scope(name)


@pytest.mark.parametrize("bits", [1 << 63, 1 << 18, -1, 1 << 64])
def test_unknown_bits_raise_unknown_scope(bits: int) -> None:
    with pytest.raises(errors.UnknownScope):
        scopes.names_of(bits)


def test_scope_lookup_returns_the_entry() -> None:
    assert scopes.scope("mood.current").sensitivity == "high"
    assert scopes.scope("preferences.music").noisy


def test_the_docs_table_lists_every_scope_with_its_bit_and_the_hash() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scopes.md").read_text()
    for entry in scopes.CATALOG:
        assert f"| {entry.bit} | `{entry.name}` | {entry.description} |" in doc
    assert scopes.catalog_hash().hex() in doc
