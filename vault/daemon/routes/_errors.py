"""Error responses routes declare, so the OpenAPI schema lists every status they answer."""

from __future__ import annotations

from typing import Any

from vault.wire import ErrorPublic


def errors_for(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorPublic} for status in (*statuses, 403, 413, 500)}
