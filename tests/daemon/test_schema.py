"""schemathesis against the live daemon's OpenAPI schema: no server error and no response
that violates the schema, on every route (owner routes called with the token)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Served


@pytest.mark.slow
def test_daemon_conforms_to_its_openapi_schema(daemon: Served) -> None:
    schema = schemathesis.openapi.from_url(
        daemon.base + "/v1/owner/openapi.json", headers=daemon.owner_headers
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(data=st.data())
        @settings(max_examples=20, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(data: st.DataObject) -> None:
            case = data.draw(operation.as_strategy())  # noqa: B023 (one operation per loop)
            case.call_and_validate(headers=daemon.owner_headers, timeout=30)

        check()
