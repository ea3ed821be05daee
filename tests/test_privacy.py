from __future__ import annotations

import copy
import json
import math
from datetime import date
from typing import Any

import pytest

from vault import privacy, scopes
from vault.privacy import EPOCH_SECONDS

SECRET = bytes(range(32))
NOW = 1_735_689_600  # 2025-01-01T00:00:00Z
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
    assert privacy.release_value(scopes.scope("profile.age_range"), age, secret=SECRET) == age
    empty = privacy.insufficient()
    for i in range(200):
        assert privacy.release_value(MUSIC, empty, secret=secret(i)) == empty
        assert privacy.revealed_entries(MUSIC, empty, empty, secret=secret(i)) == {}


def secret(i: int) -> bytes:
    return i.to_bytes(32, "big")


def genres(answer: dict[str, Any]) -> list[str]:
    return [entry["genre"] for entry in answer["genres"]]


def _replaced(answer: dict[str, Any], truth: dict[str, Any] = VALUE) -> int:
    return sum(a != v for a, v in zip(genres(answer), genres(truth), strict=True))


def test_noise_replaces_about_five_percent_of_entries_across_secrets() -> None:
    answers = [privacy.release_value(MUSIC, VALUE, secret=secret(i)) for i in range(4000)]
    replaced = sum(_replaced(a) for a in answers)
    assert 0.04 < replaced / (4000 * 5) < 0.06
    assert len({json.dumps(a, sort_keys=True) for a in answers}) > 50


def test_the_answer_is_a_function_of_the_secret_and_the_truth_alone() -> None:
    """THREATS row 38: nothing else is an input, so asking again, as another company or in
    another epoch, gives the identical answer; another secret gives other noise."""
    noisy = next(s for s in map(secret, range(10_000))
                 if privacy.release_value(MUSIC, VALUE, secret=s) != VALUE)
    first = privacy.release_value(MUSIC, VALUE, secret=noisy)
    for _ in range(100):
        assert privacy.release_value(MUSIC, copy.deepcopy(VALUE), secret=noisy) == first
    others = {json.dumps(privacy.release_value(MUSIC, VALUE, secret=bytes([n]) * 32))
              for n in range(64)}
    assert len(others) > 1


def test_a_changed_truth_redraws_only_the_changed_entries() -> None:
    """THREATS row 38: "indie" leaves the list and "rock" takes its place. Every other
    entry keeps its fate and its replacements; its released value moves only when its
    first free replacement was "rock" (now a true entry) or is "indie" (no longer one)."""
    changed = copy.deepcopy(VALUE)
    changed["genres"][2]["genre"] = "rock"
    moved = 0
    for i in range(3000):
        s = secret(i)
        before = genres(privacy.release_value(MUSIC, VALUE, secret=s))
        after = genres(privacy.release_value(MUSIC, changed, secret=s))
        for position, truth in enumerate(genres(VALUE)):
            if truth == "indie":
                continue
            fate = privacy._is_replaced(s, MUSIC.name, "genres", truth)
            order = privacy._replacements(s, MUSIC.name, "genres", truth, scopes.MUSIC_GENRES)
            assert fate == privacy._is_replaced(s, MUSIC.name, "genres", truth)
            if not fate:
                assert before[position] == after[position] == truth
            elif before[position] != after[position]:
                assert {before[position], after[position]} & {"rock", "indie"}, (i, position)
                moved += 1
            assert order == privacy._replacements(s, MUSIC.name, "genres", truth,
                                                  scopes.MUSIC_GENRES)
    assert moved < 3000 * 4 * 0.05 * 0.2  # a small part of the few replaced entries


def test_a_re_ranked_truth_keeps_every_entrys_fate() -> None:
    """The rank is not an input: the same entries in another order are released as the
    same values, only reordered."""
    reordered = {"status": "ok", "genres": list(reversed(VALUE["genres"]))}
    for i in range(2000):
        before = genres(privacy.release_value(MUSIC, VALUE, secret=secret(i)))
        after = genres(privacy.release_value(MUSIC, reordered, secret=secret(i)))
        if after != list(reversed(before)):  # two replaced entries competing for one value
            assert _replaced(privacy.release_value(MUSIC, VALUE, secret=secret(i))) >= 2


def test_noise_keeps_weights_uses_the_vocabulary_and_never_mutates_its_input() -> None:
    snapshot = json.dumps(VALUE, sort_keys=True)
    for i in range(2000):
        answer = privacy.release_value(MUSIC, VALUE, secret=secret(i))
        assert [a["weight"] for a in answer["genres"]] == [v["weight"] for v in VALUE["genres"]]
        names = genres(answer)
        assert set(names) <= set(scopes.MUSIC_GENRES)
        assert len(set(names)) == len(names)
    assert json.dumps(VALUE, sort_keys=True) == snapshot


def test_noise_applies_to_plain_tag_lists() -> None:
    colors = scopes.scope("preferences.colors")
    value = {"status": "ok", "colors": ["teal", "navy", "beige"]}
    answers = [privacy.release_value(colors, value, secret=secret(i)) for i in range(2000)]
    changed = [a for a in answers if a != value]
    assert changed
    assert all(set(a["colors"]) <= set(scopes.COLORS) for a in changed)


@pytest.mark.parametrize("entry", [s for s in scopes.CATALOG if s.noisy], ids=lambda s: s.name)
def test_every_noisy_scope_has_a_vocabulary_to_draw_from(entry: scopes.Scope) -> None:
    targets = privacy._noise_targets(entry.name)
    assert targets and all(len(vocabulary) > 3 and most > 0 for _, _, vocabulary, most in targets)


# --- the privacy figure -------------------------------------------------------------------

#: Each noisy list, written out from the catalog by hand: (scope, vocabulary, most entries).
NOISY_LISTS = {
    "preferences.colors": [(scopes.COLORS, 3)],
    "preferences.style": [(scopes.STYLES, 3)],
    "preferences.music": [(scopes.MUSIC_GENRES, 5)],
    "preferences.video": [(scopes.VIDEO_GENRES, 5), (scopes.PLATFORMS, 3)],
    "preferences.food": [(scopes.DIETS, 3)],
    "interests.topics": [(scopes.TOPICS, 5)],
    "shopping.categories": [(scopes.PURCHASE_CATEGORIES, 5)],
}


def test_every_noisy_scope_and_no_other_states_its_privacy_figure() -> None:
    figures = {s.name: privacy.scope_privacy(s.name) for s in scopes.CATALOG}
    assert {name for name, figure in figures.items() if figure is not None} == set(NOISY_LISTS)


@pytest.mark.parametrize(("name", "lists"), NOISY_LISTS.items())
def test_privacy_figures_match_a_direct_computation(
    name: str, lists: list[tuple[tuple[str, ...], int]]
) -> None:
    """ε of k-ary randomized response, keep 0.95: ln(0.95 · (V - 1) / 0.05) per entry; an
    answer's is the sum over its full lists; the best guess is right 95 % of the time."""
    figure = privacy.scope_privacy(name)
    assert figure is not None
    per_entry = [math.log(0.95 * (len(vocabulary) - 1) / 0.05) for vocabulary, _ in lists]
    assert [f.epsilon_per_entry for f in figure.fields] == pytest.approx(per_entry, abs=1e-4)
    assert [(f.vocabulary_size, f.max_entries) for f in figure.fields] == [
        (len(vocabulary), most) for vocabulary, most in lists
    ]
    answer = sum(e * most for e, (_, most) in zip(per_entry, lists, strict=True))
    assert figure.epsilon_per_answer == pytest.approx(answer, abs=1e-3)
    assert figure.keep_probability == figure.best_guess_accuracy == 0.95
    assert privacy.worst_case_epsilon(scopes.bitmap([name, "profile.age_range"])) == (
        pytest.approx(answer, abs=1e-3)
    )


def test_the_stated_epsilon_bounds_the_mechanism_measured_over_secrets() -> None:
    """The ratio the ε bounds, measured: a one-entry list "jazz" is released as "jazz"
    with probability 0.95; a list "rock" is released as "jazz" with probability
    0.05 / 21. Their ratio's logarithm is the stated ε per entry (5.99)."""
    trials = 40_000
    jazz = {"status": "ok", "genres": [{"genre": "jazz", "weight": 1.0}]}
    rock = {"status": "ok", "genres": [{"genre": "rock", "weight": 1.0}]}
    kept = sum(genres(privacy.release_value(MUSIC, jazz, secret=secret(i))) == ["jazz"]
               for i in range(trials))
    became = sum(genres(privacy.release_value(MUSIC, rock, secret=secret(i))) == ["jazz"]
                 for i in range(trials))
    figure = privacy.scope_privacy(MUSIC.name)
    assert figure is not None
    assert kept / trials == pytest.approx(0.95, abs=0.005)
    assert math.log(kept / became) == pytest.approx(figure.fields[0].epsilon_per_entry, abs=0.35)


# --- the budget ------------------------------------------------------------------------------


def test_revealed_entries_name_each_true_and_released_pair_under_the_secret() -> None:
    released = privacy.release_value(MUSIC, VALUE, secret=SECRET)
    revealed = privacy.revealed_entries(MUSIC, VALUE, released, secret=SECRET)
    assert len(revealed) == 5
    music = privacy.scope_privacy(MUSIC.name)
    assert music is not None
    assert set(revealed.values()) == {music.fields[0].epsilon_per_entry}
    assert all(len(digest) == 16 for digest in revealed)
    again = privacy.revealed_entries(MUSIC, copy.deepcopy(VALUE), released, secret=SECRET)
    assert again == revealed
    changed = copy.deepcopy(VALUE)
    changed["genres"][2]["genre"] = "rock"
    after = privacy.revealed_entries(
        MUSIC, changed, privacy.release_value(MUSIC, changed, secret=SECRET), secret=SECRET
    )
    assert len(set(after) - set(revealed)) >= 1
    assert len(set(after) & set(revealed)) >= 3
    other_secret = privacy.revealed_entries(MUSIC, VALUE, released, secret=bytes(32))
    assert not set(other_secret) & set(revealed)
    assert privacy.revealed_entries(scopes.scope("profile.age_range"),
                                    {"status": "ok", "range": "25-34"},
                                    {"status": "ok", "range": "25-34"}, secret=SECRET) == {}


def test_charges_by_company_merge_repeats_and_charge_legacy_answers_in_full() -> None:
    """A release logged before memoised noise (``noisy_epoch``) is charged every entry of
    each noisy scope it carried, once per epoch."""
    music = privacy.scope_privacy(MUSIC.name)
    assert music is not None
    rows = [
        ("0xAbC", {"d1": 6.0, "d2": 6.0}, None, ("preferences.music",)),
        ("0xabc", {"d2": 6.0, "d3": 5.0}, None, ("preferences.music",)),
        ("0xABC", None, 2900, ("preferences.music", "profile.age_range")),
        ("0xabc", None, 2900, ("preferences.music",)),
        ("0xdef", None, 2901, ("profile.age_range",)),
    ]
    charged = privacy.charges_by_company(rows)
    assert set(charged) == {"0xabc", "0xdef"}
    assert charged["0xdef"] == {}
    assert sum(charged["0xabc"].values()) == pytest.approx(17.0 + music.epsilon_per_answer)
