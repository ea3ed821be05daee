"""Amounts of ether as people read them."""

from __future__ import annotations

from decimal import Decimal


def format_eth(wei: int) -> str:
    """Wei as an exact ETH string without trailing zeros: ``1500000000000000 → "0.0015 ETH"``."""
    if not isinstance(wei, int) or isinstance(wei, bool):
        raise TypeError("wei is an int")
    text = format(Decimal(wei).scaleb(-18), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"
