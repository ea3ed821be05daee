from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from vault import privacy, scopes
from vault.privacy import EPOCH_SECONDS

SECRET = bytes(range(32))
NOW = 1_735_689_600  # 2025-01-01T00:00:00Z
COMPANY = "0x1111111111111111111111111111111111111111"
MUSIC = scopes.scope("preferences.music")
VALUE: dict[str, Any] = {
    "status": "ok",
    "genres": [
        {"genre": "jazz", "weight": 0.4},
        {"genre": "electronic", "weight": 0.3},
        {"genre": "indie", "weight": 0.15},
        {"genre": "soul", "weight": 0.1},
        {"genre": "pop", "weight": 0.05},
    ],
}


def company(i: int) -> str:
    return "0x" + f"{i:040x}"


def test_epochs_are_seven_days() -> None:
    assert privacy.epoch_of(0) == 0
    assert privacy.epoch_of(EPOCH_SECONDS - 1) == 0
    assert privacy.epoch_of(EPOCH_SECONDS) == 1
    assert privacy.epoch_of(NOW) == NOW // (7 * 86_400)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        (date(1990, 1, 1), "35-44"),
        (date(1990, 1, 2), "25-34"),  # turns 35 the next day
        (date(2007, 1, 1), "18-24"),
        (date(2007, 1, 2), "under-18"),
        (date(2000, 6, 1), "18-24"),
        (date(1960, 1, 1), "65+"),
        (date(1975, 6, 30), "45-54"),
        (date(1965, 6, 30), "55-64"),
    ],
)
def test_age_range_buckets(birth: date, expected: str) -> None:
    assert privacy.age_range(birth, now=NOW) == expected


@pytest.mark.parametrize("birth", [date(2030, 1, 1), date(1800, 1, 1)])
def test_impossible_ages_have_no_range(birth: date) -> None:
    assert privacy.age_range(birth, now=NOW) is None


@pytest.mark.parametrize(
    ("size", "bucket"), [(1, "1"), (2, "2"), (3, "3-4"), (4, "3-4"), (5, "5+"), (12, "5+"),
                         (0, None), (-2, None), (10**9, None)]
)
def test_household_buckets(size: int, bucket: str | None) -> None:
    assert privacy.household_bucket(size) == bucket


def test_top_k_keeps_supported_items_with_rounded_shares() -> None:
    counts = {"b": 10, "a": 10, "c": 5, "rare": 2, "d": 3}
    assert privacy.top_k(counts, k=3, min_support=3, step=0.05) == [
        ("a", 0.35), ("b", 0.35), ("c", 0.15)
    ]
    assert privacy.top_k({}, k=3, min_support=1, step=0.1) == []
    assert privacy.top_k({"x": 1, "y": 1000}, k=5, min_support=1, step=0.05) == [("y", 1.0)]
    assert privacy.top_k({"x": 2}, k=5, min_support=3, step=0.05) == []


def test_min_counts() -> None:
    assert privacy.meets_min_count(3, 3)
    assert not privacy.meets_min_count(2, 3)


def test_non_noisy_and_insufficient_values_are_released_unchanged() -> None:
    age = {"status": "ok", "range": "25-34"}
    assert privacy.release_value(scopes.scope("profile.age_range"), age, company=COMPANY,
                                 now=NOW, secret=SECRET) == age
    empty = privacy.insufficient()
    for i in range(200):
        assert privacy.release_value(MUSIC, empty, company=company(i), now=NOW,
                                     secret=SECRET) == empty


def test_noise_is_stable_within_an_epoch() -> None:
    start = privacy.epoch_of(NOW) * EPOCH_SECONDS
    for i in range(300):
        first = privacy.release_value(MUSIC, VALUE, company=company(i), now=start,
                                      secret=SECRET)
        last = privacy.release_value(MUSIC, VALUE, company=company(i).upper().replace("0X", "0x"),
                                     now=start + EPOCH_SECONDS - 1, secret=SECRET)
        assert first == last


def test_averaging_a_thousand_answers_in_one_epoch_recovers_nothing_more() -> None:
    # Find a company whose answer this epoch is noisy, then ask 1,000 times.
    noisy = next(c for c in map(company, range(10_000))
                 if privacy.release_value(MUSIC, VALUE, company=c, now=NOW, secret=SECRET) != VALUE)
    answers = [privacy.release_value(MUSIC, VALUE, company=noisy, now=NOW + i * 60, secret=SECRET)
               for i in range(1000)]
    distinct = {json.dumps(a, sort_keys=True) for a in answers}
    assert len(distinct) == 1
    assert answers[0] != VALUE  # the noise stays in: repetition cannot average it away


def _replaced(answer: dict[str, Any]) -> int:
    return sum(a["genre"] != v["genre"] for a, v in zip(answer["genres"], VALUE["genres"],
                                                         strict=True))


def test_noise_replaces_about_five_percent_and_differs_across_companies() -> None:
    answers = [privacy.release_value(MUSIC, VALUE, company=company(i), now=NOW, secret=SECRET)
               for i in range(4000)]
    replaced = sum(_replaced(a) for a in answers)
    assert 0.035 < replaced / (4000 * 5) < 0.065
    assert len({json.dumps(a, sort_keys=True) for a in answers}) > 50


def test_noise_differs_across_epochs_and_secrets() -> None:
    def pattern(now: int, secret: bytes) -> list[int]:
        return [_replaced(privacy.release_value(MUSIC, VALUE, company=company(i), now=now,
                                                secret=secret)) for i in range(500)]

    base = pattern(NOW, SECRET)
    assert pattern(NOW + EPOCH_SECONDS, SECRET) != base
    assert pattern(NOW, bytes(32)) != base


def test_noise_keeps_weights_uses_the_vocabulary_and_never_mutates_its_input() -> None:
    snapshot = json.dumps(VALUE, sort_keys=True)
    for i in range(2000):
        answer = privacy.release_value(MUSIC, VALUE, company=company(i), now=NOW, secret=SECRET)
        assert [a["weight"] for a in answer["genres"]] == [v["weight"] for v in VALUE["genres"]]
        names = [a["genre"] for a in answer["genres"]]
        assert set(names) <= set(scopes.MUSIC_GENRES)
        assert len(set(names)) == len(names)
    assert json.dumps(VALUE, sort_keys=True) == snapshot


def test_noise_applies_to_plain_tag_lists() -> None:
    colors = scopes.scope("preferences.colors")
    value = {"status": "ok", "colors": ["teal", "navy", "beige"]}
    answers = [privacy.release_value(colors, value, company=company(i), now=NOW, secret=SECRET)
               for i in range(2000)]
    changed = [a for a in answers if a != value]
    assert changed
    assert all(set(a["colors"]) <= set(scopes.COLORS) for a in changed)


@pytest.mark.parametrize("entry", [s for s in scopes.CATALOG if s.noisy], ids=lambda s: s.name)
def test_every_noisy_scope_has_a_vocabulary_to_draw_from(entry: scopes.Scope) -> None:
    targets = privacy._noise_targets(entry.name)
    assert targets and all(len(vocabulary) > 3 for _, _, vocabulary in targets)


def test_budget_allows_known_epochs_and_new_ones_until_the_limit() -> None:
    assert privacy.budget_allows(set(), 5, limit=2)
    assert privacy.budget_allows({5}, 6, limit=2)
    assert not privacy.budget_allows({5, 6}, 7, limit=2)
    assert privacy.budget_allows({5, 6}, 6, limit=2)
    assert not privacy.budget_allows(set(), 0, limit=0)
    assert privacy.budget_allows([5, 5, 5], 6, limit=2)
