"""The OpenAPI document is the contract: schemathesis generates requests from it for every operation and holds
the app's answers to it with every check it has (no 5xx, no status the operation does not list, every body and
header as documented, invalid input refused, valid input not refused as malformed, auth enforced where
declared, 405 with ``Allow`` for a method a path does not take, ...), in all its phases (the schema's examples,
coverage of each keyword's edges, random fuzzing, stateful sequences following the responses).

It runs in process against the WSGI app (schemathesis' engine, as its CLI runs it), as a different caller from
one request to the next: an admin, a creator, a rights holder, a regulator, or nobody. ``CG_FUZZ_EXAMPLES`` sets
the examples per operation and phase (``make test``: the default below; ``make fuzz``: 300) and
``CG_FUZZ_PATHS`` a regular expression of the paths to fuzz; ``docs/api.md`` says what a run costs.

Two allowances, both for what JSON Schema cannot say, and both narrow:

- ``positive_data_acceptance`` also accepts 415 and 422: a request can match its schema and still be refused on
  the service's rules (random bytes are not a video; a notice must name a video released here; an owner needs no
  grant of their own face). 400 stays a failure: a request that matches its schema is never "malformed".
- The C2PA Soft Binding Resolution API answers 400 for a ``value`` that is not of its ``alg``'s format (the
  specification's status for a bad query), and an OpenAPI query cannot tie one parameter's format to another's:
  ``/sbr/v1/matches/byBinding`` may answer valid-looking data with 400.
- A page ``cursor`` is never generated: it is signed by the service, so any string a generator makes is refused
  (400) by design (tests/governance/test_pagination.py holds cursors to account).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from governance.accounts.services import create_account
from governance.app import create_app
from governance.db import unit_of_work

EXAMPLES = int(os.environ.get("CG_FUZZ_EXAMPLES", "8"))
WHO = ("admin", "creator", "rights_holder", "regulator", "anonymous")

CONFIG = f"""
seed = 20261129
workers = 1
suppress-health-check = ["all"]

[generation]
max-examples = {EXAMPLES}

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "422", "429", "5xx"]
"""
#: (operation, check, status) failures that are the contract's allowances (module docstring), not defects
ALLOWED = {("GET /sbr/v1/matches/byBinding", "positive_data_acceptance", 400),
           ("POST /sbr/v1/matches/byBinding", "positive_data_acceptance", 400)}


def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """Leave out a generated page ``cursor`` (module docstring)."""
    if query and "cursor" in query:
        query = {k: v for k, v in query.items() if k != "cursor"}
    return query


class Callers:
    """Schemathesis' auth provider: each request goes out as the next caller in turn (``WHO``); the tokens are
    the accounts' own (a rotated one is followed: ``POST /v1/me/token`` answers with the new one)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.turn = itertools.cycle(WHO)

    def get(self, case: Any, ctx: Any) -> str:
        return "callers"

    def set(self, case: Any, data: str, ctx: Any) -> None:
        who = next(self.turn)
        # schemathesis calls this only where it is not testing the auth itself (then it sends its own value)
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if who != "anonymous":
            case.headers["Authorization"] = f"Bearer {self.tokens[who]}"


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("contract")
    app = create_app({"data_dir": str(data), "worker": "none", "verify_per_minute": 100_000,
                      "simulate_per_minute": 100_000})
    yield app
    app.extensions["consentgate"].close()


def run_contract(app: Any) -> tuple[int, int, list[str]]:
    """Run schemathesis over ``app``: (operations, requests made, failures as readable lines)."""
    tokens: dict[str, str] = {}
    with unit_of_work(app.extensions["consentgate"].engine) as session:
        for role in WHO[:-1]:
            _, tokens[role] = create_account(session, f"fuzz-{role.replace('_', '-')}", role)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=SchemathesisConfig.from_str(CONFIG))
    schema.hook(map_query)

    class TheseCallers(Callers):
        def __init__(self) -> None:
            super().__init__(tokens)

    schema.auth.auth(refresh_interval=None)(TheseCallers)
    only = os.environ.get("CG_FUZZ_PATHS")
    if only:
        schema = schema.include(path_regex=only)
    operations = sum(1 for _ in schema.get_all_operations())
    requests, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        interaction = event.recorder.interactions.get(case_id)
                        status = interaction.response.status_code if interaction and interaction.response else None
                        if (event.recorder.label, check.name, status) in ALLOWED:
                            continue
                        failures.append(f"{event.recorder.label} [{check.name}] -> {status}: "
                                        f"{check.failure_info.failure.title}\n{check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise AssertionError(f"schemathesis stopped: {event.exception}")
    return operations, requests, failures


def test_the_app_keeps_its_openapi_contract(contract_app: Any) -> None:
    operations, requests, failures = run_contract(contract_app)
    print(f"schemathesis: {operations} operations, {requests} requests, {len(failures)} failures")
    assert operations >= (1 if os.environ.get("CG_FUZZ_PATHS") else 70)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:40])
