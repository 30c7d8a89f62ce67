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
- ``GET /v1/generations`` answers 400 when ``until`` is not after ``since``: one parameter bound to another,
  which a query's schema cannot say.
- A page ``cursor`` is never generated as valid: it is signed by the service, so any string a generator makes is
  refused (400) by design (tests/governance/test_pagination.py holds cursors to account).

One check of ours joins schemathesis' own (:func:`declared_response_headers`): every header an answer carries is
declared on the operation's response for that status, bar HTTP's own (``governance.openapi.GENERIC_HEADERS``);
schemathesis checks the declared ones' values against their schemas.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from governance import authz
from governance.accounts.services import create_account
from governance.app import create_app
from governance.authz import Principal
from governance.db import unit_of_work
from governance.openapi import GENERIC_HEADERS

EXAMPLES = int(os.environ.get("CG_FUZZ_EXAMPLES", "30"))
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



@schemathesis.check
def declared_response_headers(ctx: Any, response: Any, case: Any) -> bool | None:
    """Fail when the answer carries a header its operation's response does not declare (HTTP's own aside)."""
    if case.method.upper() != case.operation.method.upper():
        return None  # schemathesis trying a method the path does not take (405 with Allow, or OPTIONS)
    definition = case.operation.responses.find_by_status_code(response.status_code)
    if definition is None:
        return None  # an undocumented status: status_code_conformance reports it
    declared = {name.lower() for name, _ in definition.headers.items()} if definition.headers else set()
    undeclared = sorted({name.lower() for name in response.headers} - declared - GENERIC_HEADERS)
    if undeclared:
        raise AssertionError(f"{case.operation.label} answered {response.status_code} with headers its response "
                             f"does not declare: {undeclared}")
    return True


def _drop_valid_cursor(case: Any) -> None:
    """Leave out a page ``cursor`` generated as valid (module docstring); an invalid one stays, to be refused."""
    if case.query and "cursor" in case.query and case.meta is not None and case.meta.generation.mode.is_positive:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}


def _allowed(label: str, check: str, status: int | None, body: bytes) -> bool:
    """The contract's allowances (module docstring), each as narrow as the case it is for."""
    if check != "positive_data_acceptance" or status != 400:
        return False
    if label in ("GET /sbr/v1/matches/byBinding", "POST /sbr/v1/matches/byBinding"):
        return True
    return label == "GET /v1/generations" and b"must be after since" in body


class Callers:
    """Schemathesis' auth provider: four requests in five go out as the next caller the authorization table admits
    to the operation, the fifth as the next of all callers (``WHO``), so that refusals are fuzzed too. The tokens
    are the accounts' own (a rotated one is followed: ``POST /v1/me/token`` answers with the new one)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.count = itertools.count()
        self.anyone = itertools.cycle(WHO)
        self.admitted: dict[str, Iterator[str]] = {}
        for p in authz.TABLE.values():
            method, path = p.route.split()
            label = method + " " + re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"{\1}", path)
            self.admitted[label] = itertools.cycle([w for w in WHO if Principal(w) in p.anyone])

    def get(self, case: Any, ctx: Any) -> str:
        return "callers"

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _drop_valid_cursor(case)  # (every case but those testing the auth itself, which a 401 answers first)
        admitted = self.admitted.get(case.operation.label)
        who = next(self.anyone) if admitted is None or next(self.count) % 5 == 4 else next(admitted)
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

    class TheseCallers(Callers):
        def __init__(self) -> None:
            super().__init__(tokens)

    schema.auth.auth(refresh_interval=None)(TheseCallers)
    only = os.environ.get("CG_FUZZ_PATHS")
    if only:
        schema = schema.include(path_regex=only)
    operations = sum(1 for _ in schema.get_all_operations())
    requests, failures, statuses, phases = 0, [], Counter[int](), Counter[str]()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            phases[str(event.phase.value)] += len(event.recorder.interactions)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    statuses[interaction.response.status_code] += 1
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        interaction = event.recorder.interactions.get(case_id)
                        status = interaction.response.status_code if interaction and interaction.response else None
                        body = interaction.response.content if interaction and interaction.response else b""
                        if _allowed(event.recorder.label, check.name, status, body or b""):
                            continue
                        failures.append(f"{event.recorder.label} [{check.name}] -> {status}: "
                                        f"{check.failure_info.failure.title}: {check.failure_info.failure.message}\n"
                                        f"{check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise AssertionError(f"schemathesis stopped: {event.exception}")
    print("schemathesis: statuses", dict(sorted(statuses.items())), "requests by phase", dict(phases))
    return operations, requests, failures


@pytest.fixture
def wsgi_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """schemathesis 4.32.5's in-process transport hands socket settings (``max_redirects``, ``verify``...) on to
    werkzeug, which refuses them, when a check makes a follow-up call (``use_after_free``,
    ``ensure_resource_availability``): they mean nothing in process, so they are dropped before the call."""
    from schemathesis.transport.wsgi import WSGITransport

    send = WSGITransport.send

    def in_process(self: Any, case: Any, **kwargs: Any) -> Any:
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", in_process)


# Hypothesis warns when it would print a large generated value (an upload of some MB); it is not a fault of the app
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_the_app_keeps_its_openapi_contract(contract_app: Any, wsgi_transport: None) -> None:
    operations, requests, failures = run_contract(contract_app)
    print(f"schemathesis: {operations} operations, {requests} requests, {len(failures)} failures")
    assert operations >= (1 if os.environ.get("CG_FUZZ_PATHS") else 70)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:40])
