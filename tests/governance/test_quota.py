"""The daily quota's two counts, read in one query (issue 12), against the definitions of ``used_today`` and
``refused_today``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from governance.accounts.models import Account, Role
from governance.columns import utcnow
from governance.db import init_db, make_engine
from governance.generations.models import Generation, GenerationState
from governance.generations.services.generations import Quota, quota_for, refused_today, used_today


def test_quota_counts_match_used_and_refused_today_and_see_the_sessions_own_rows() -> None:
    engine = make_engine("sqlite://")
    init_db(engine)
    now = utcnow()
    with Session(engine) as s:
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h", daily_quota=10))
        s.add(Account(id="acc_b", name="b", role=Role.CREATOR, token_hash="i"))
        rows = [(GenerationState.BLOCKED, None, now), (GenerationState.BLOCKED, None, now),  # refused at the precheck
                (GenerationState.BLOCKED, "worker-1", now),  # blocked by a later stage: used
                (GenerationState.RELEASED, "worker-1", now), (GenerationState.PRECHECKED, None, now),
                (GenerationState.RELEASED, "worker-1", now - timedelta(days=1, hours=1))]  # yesterday: neither
        for state, claimed, at in rows:
            s.add(Generation(requester_id="acc_a", prompt="p", seed=1, state=state, claimed_by=claimed, created_at=at))
        s.add(Generation(requester_id="acc_b", prompt="p", seed=1, state=GenerationState.BLOCKED, created_at=now))
        s.commit()
        account = s.get(Account, "acc_a")
        q = quota_for(s, account, default_quota=30, now=now)
        assert (q.daily, q.used, q.refused, q.left) == (10, 3, 2, 7)
        assert (q.used, q.refused) == (used_today(s, "acc_a", now), refused_today(s, "acc_a", now))
        s.add(Generation(requester_id="acc_a", prompt="p", seed=1, state=GenerationState.BLOCKED))  # not flushed
        q = quota_for(s, account, default_quota=30, now=now)
        assert (q.used, q.refused) == (3, 3) == (used_today(s, "acc_a", now), refused_today(s, "acc_a", now))
        assert quota_for(s, s.get(Account, "acc_b"), default_quota=30, now=now).refused == 1
    engine.dispose()


@pytest.mark.parametrize(("daily", "used", "refused", "left"), [
    (3, 0, 0, 3),  # a fresh day
    (3, 1, 0, 2),  # generations used
    (3, 0, 2, 1),  # refusals used none of the generations, but one more refusal would end the day's requests
    (2, 0, 2, 0),  # every request is refused until midnight (review s23-try, finding 5)
    (2, 2, 0, 0),  # every generation used
    (3, 2, 1, 1),  # the nearer bound counts
    (2, 5, 7, 0),  # a quota lowered below today's counts: never negative
    (0, 0, 0, 0),  # no generations for this account
])
def test_left_is_what_the_nearer_of_the_two_bounds_leaves(daily: int, used: int, refused: int, left: int) -> None:
    """``left`` is the number of requests that are sure to be taken: each uses a generation or a refusal, and a
    request is refused once either count reaches ``daily`` (``_refuse_over_quota``)."""
    now = utcnow()
    assert Quota(daily, used, refused, now, 1).left == left
