"""The service against its own OpenAPI spec (Schemathesis): every operation, fed inputs the spec
allows and inputs it forbids, never answers a 5xx — bad input is a 4xx with a message.

One test drives the whole API, so that it can count what it sent: for each operation of
the spec, Hypothesis draws cases from Schemathesis's strategies in both generation modes
and sends them in process (ASGI) to the app over a real platform (the tiny world's served
runs, a store of its own), with the write token."""

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from snsrec.serve.app import create_app

from .conftest import fresh_platform

TOKEN = "schema-test-token"
EXAMPLES = 80             # per operation and generation mode (fewer where the inputs run out)
MIN_REQUESTS = 1000
# Writes first, so that the reads meet what they stored; takedowns last.
ORDER = {"POST": 0, "GET": 1, "DELETE": 2}


def _whole(value) -> bool:
    """A JSON integer as Schemathesis draws it: an int, or a float with no fraction (4.0)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        float(value).is_integer()


def _onto_the_world(case, users: list[int], notes: list[int]) -> None:
    """Valid ids of a positive case moved onto the world's users and notes: drawn freely, an
    event's note is almost never one the platform has (a 422 before the store) and a feed's
    user is one without history (a cold start); mapped, the cases reach the store and the
    personalised paths. ``id % len`` keeps Hypothesis's choice (and its shrinking)."""
    if isinstance(case.query, dict) and _whole(case.query.get("user_id")):
        case.query["user_id"] = users[int(case.query["user_id"]) % len(users)]
    body = case.body if isinstance(case.body, dict) else {}
    events = body.get("events", []) if isinstance(body.get("events"), list) else []
    for item in [body, *events]:
        if _whole(item.get("user_id")):
            item["user_id"] = users[int(item["user_id"]) % len(users)]
        if item is not body and _whole(item.get("note_id")):
            item["note_id"] = notes[int(item["note_id"]) % len(notes)]


def _fuzz(op, mode: GenerationMode, users: list[int], notes: list[int],
          sent: Counter) -> None:
    """Up to EXAMPLES cases of ``op`` in ``mode``, each sent and counted in ``sent``."""
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        if mode == GenerationMode.POSITIVE:
            _onto_the_world(case, users, notes)
        response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
        sent[op.label, response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])

    check()


def test_no_operation_answers_a_server_error(served, tmp_path):
    app = create_app(fresh_platform(served, tmp_path), TOKEN, clock=lambda: served["now"])
    users = served["tables"].users.select("user_id").collect().to_series().to_list()
    notes = sorted(served["notes"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: ORDER[op.method.upper()])
    sent: Counter[tuple[str, int]] = Counter()       # (operation, status) -> requests
    for op in operations:
        # A negative case breaks some input: /healthz and /metrics have none to break.
        has_inputs = any([op.path_parameters, op.query, op.headers, op.body])
        for mode in list(GenerationMode) if has_inputs else [GenerationMode.POSITIVE]:
            _fuzz(op, mode, users, notes, sent)
    per_op = Counter()
    for (label, _), n in sent.items():
        per_op[label] += n
    assert set(per_op) == {op.label for op in operations}, per_op
    assert sum(per_op.values()) >= MIN_REQUESTS, per_op
    assert not [k for k in sent if k[1] >= 500], sent
