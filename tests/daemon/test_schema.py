"""schemathesis against the live daemon's OpenAPI schema: no server error and no response
that violates the schema, on every route (owner routes called with the token)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from .conftest import Served

_RECORDS_ROUTES = "/v1/owner/records/"


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
            # The records routes check what JSON Schema cannot say (a path names a readable
            # file, a fact's value fits that fact, a mood is one the vault knows) and answer
            # such a request 400: right, not a schema violation. Every other check applies.
            excluded = (
                [positive_data_acceptance] if case.path.startswith(_RECORDS_ROUTES) else []
            )
            case.call_and_validate(headers=daemon.owner_headers, timeout=30,
                                   excluded_checks=excluded)

        check()
