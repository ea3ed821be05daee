"""Declared profile in TOML."""

from __future__ import annotations

import io

import pytest

from vault.errors import MalformedExport
from vault.identity import FACT_NAMES, Fact
from vault.importers.profile import _CHECKS, ProfileImporter


def parse_text(text: str) -> list[Fact]:
    return list(ProfileImporter().parse(io.BytesIO(text.encode()), filename="p.toml"))


def test_parses_every_fact_normalised(parse):
    assert parse("profile", "profile.toml") == [
        Fact("birth_date", "1990-04-12"),
        Fact("city", "Lyon"),
        Fact("country", "FR"),
        Fact("languages", ["fr", "en-GB"]),
        Fact("favourite_colors", ["teal", "ochre"]),
        Fact("style", ["minimalist", "vintage"]),
        Fact("diet", ["vegetarian"]),
        Fact("gift_wishes", ["fountain pen", "pottery class"]),
        Fact("dislikes", ["perfume"]),
        Fact("household_size", 2),
    ]


def test_every_fact_name_has_a_check():
    assert set(_CHECKS) == set(FACT_NAMES)


def test_bad_date_names_the_key_not_the_value(parse):
    """THREATS row 30: a bad date names the file and key; nothing is yielded."""
    with pytest.raises(MalformedExport) as caught:
        parse("profile", "profile_bad_date.toml")
    assert caught.value.path == "profile_bad_date.toml"
    assert "'birth_date'" in caught.value.problem
    assert "1990-02-30" not in str(caught.value)


def test_unknown_key_is_refused_without_echoing_its_value(parse):
    """THREATS rows 9 and 30."""
    with pytest.raises(MalformedExport) as caught:
        parse("profile", "profile_unknown_key.toml")
    assert "unknown key 'password'" in caught.value.problem
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('household_size = "two"', "'household_size': must be an integer"),
        ("household_size = true", "'household_size': must be an integer"),
        ('languages = "fr"', "'languages': must be a list"),
        ('languages = ["not a tag"]', "'languages': must be a list of BCP 47"),
        ('country = "France"', "'country': must be a two-letter"),
        ("birth_date = 1990-04-12T10:00:00", "'birth_date': must be a date"),
        ('birth_date = "12/04/1990"', "'birth_date': must be a date"),
        ('city = ""', "'city': must be a non-empty string"),
        ("[city]\nname = 'Lyon'", "'city': must be a non-empty string"),
        ("city = 'Lyon'\ncity = 'Paris'", "not valid TOML (at "),
    ],
)
def test_wrong_types_are_refused(text, problem):
    """THREATS row 30: wrong types."""
    with pytest.raises(MalformedExport) as caught:
        parse_text(text)
    assert problem in caught.value.problem


def test_toml_error_does_not_quote_the_file():
    """THREATS row 9: the TOML parser's message is reduced to a position."""
    with pytest.raises(MalformedExport) as caught:
        parse_text('city = "Lyon\ngift_wishes = ["CANARY-secret"')
    assert "CANARY" not in str(caught.value)


def test_oversized_profile_is_refused():
    """THREATS row 30: huge input."""
    with pytest.raises(MalformedExport, match="larger than"):
        parse_text("# " + "x" * (1 << 20))
