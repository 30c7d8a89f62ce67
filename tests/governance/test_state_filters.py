"""The ``?state=`` filter every list shares (:func:`governance.pagination.states_named`): the disputes' list, the
notices' review queue and the generations' filter each accept their own words and refuse anything else with the
error their endpoint documents, on a real database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from governance.db import init_db, make_engine
from governance.errors import BadRequest, InvalidInput
from governance.generations.models import GenerationState
from governance.generations.services.generations import GenerationFilter
from governance.likenesses.models import DisputeState
from governance.likenesses.services import disputes as disputes_svc
from governance.notices import services as notices_svc
from governance.notices.models import NoticeState


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_db(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.mark.parametrize("state", [None, "all", *[s.value for s in DisputeState]])
def test_the_disputes_list_takes_all_or_one_state(session: Session, state: str | None) -> None:
    assert list(disputes_svc.list_disputes(session, state)) == []


@pytest.mark.parametrize("state", [None, "", "queue", "all", *[s.value for s in NoticeState]])
def test_the_notices_queue_takes_queue_all_or_one_state(session: Session, state: str | None) -> None:
    assert notices_svc.queue(session, state) == []


@pytest.mark.parametrize("state", ["queue", "", "OPEN", "bogus"])
def test_the_disputes_list_refuses_another_word(session: Session, state: str) -> None:
    with pytest.raises(InvalidInput, match=r"state must be one of \['open', 'resolved', 'all'\], got"):
        disputes_svc.list_disputes(session, state)


@pytest.mark.parametrize("state", ["open ", "Queue", "bogus"])
def test_the_notices_queue_refuses_another_word(session: Session, state: str) -> None:
    with pytest.raises(InvalidInput, match=r"state must be one of \[.*'queue', 'all'\], got"):
        notices_svc.queue(session, state)


def test_the_generations_filter_refuses_a_word_with_a_400() -> None:
    assert GenerationFilter.parse("held", None, None).state is GenerationState.HELD
    assert GenerationFilter.parse(None, None, None).state is None
    with pytest.raises(BadRequest, match=r"state must be one of \['requested', .*'held'\], got 'all'"):
        GenerationFilter.parse("all", None, None)
