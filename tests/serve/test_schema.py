"""The service against its own OpenAPI spec (Schemathesis): every operation, fed inputs the spec
allows and inputs it forbids, never answers a 5xx — bad input is a 4xx with a message.

The operations are read at collection from an app over no platform (building the spec
touches none); each case is then sent to the app over a real platform (the tiny world's
served runs, a store of its own), with the write token."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from snsrec.serve.app import create_app

from .conftest import fresh_platform

TOKEN = "schema-test-token"

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(None, TOKEN))


@pytest.fixture(scope="module")
def app(served, tmp_path_factory):
    platform = fresh_platform(served, tmp_path_factory.mktemp("schema"))
    return create_app(platform, TOKEN, clock=lambda: served["now"])


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_a_server_error(case, app):
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error])
