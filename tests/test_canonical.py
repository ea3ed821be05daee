"""RFC 8785: vault's canonical JSON agrees byte for byte with the reference implementation."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.canonical import canonical_json, json_hash

UNSAFE = 2**53

scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(UNSAFE - 1), max_value=UNSAFE - 1)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e16)
    | st.floats(min_value=-1e16, max_value=-1e-4)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x3F))  # control characters, escapes
)
keys = st.text(max_size=8) | st.text(alphabet=st.characters(min_codepoint=0xE000), max_size=3)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


def reference(value: Any) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(value)
    except Exception as error:  # the reference refuses some values (big ints, NaN, ...)
        return type(error)


@settings(max_examples=3000, deadline=None)
@given(values)
def test_agrees_with_the_reference_implementation(value: Any) -> None:
    expected = reference(value)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        with pytest.raises(expected):
            canonical_json(value)


@pytest.mark.parametrize(
    "value",
    [
        0.1 + 0.2, 1e-4, 9.999e-5, 1e-7, 1e16 - 2, 1e16, 1e21, 1e22, 5e-324, -0.0, 1.0, -2.0,
        123456789.125, 2**53 - 1, -(2**53 - 1),
        {"b": 1, "a": [1, "x"]},
        {"\uffff": 1, "\U00010000": 2, "a": 3},  # UTF-16 order differs from code points
        "tab\there \"quoted\" back\\slash \x00\x1f\x7f \u2028 é 😀",
        {"weights": [0.05, 0.35, 0.6], "status": "ok"},
    ],
)
def test_edge_values_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_refuses_what_rfc_8785_refuses() -> None:
    for bad in (2**53, math.nan, math.inf, "\ud800"):
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json(bad)


def test_json_hash_is_keccak_of_the_canonical_bytes() -> None:
    value = {"preferences.music": {"status": "ok", "genres": [{"genre": "jazz", "weight": 0.4}]}}
    assert json_hash(value) == keccak(rfc8785.dumps(value))
