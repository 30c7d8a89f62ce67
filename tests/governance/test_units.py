from pathlib import Path

import pytest
from sqlmodel import Session

from governance.config import ConfigError, Settings
from governance.db import init_db, make_engine, unit_of_work
from governance.services import translog


def test_settings_from_env():
    s = Settings.from_env({"GOVERNANCE_DAILY_QUOTA": "5", "GOVERNANCE_DATA_DIR": "/tmp/x",
                           "GOVERNANCE_SECRET_KEY": "hunter2"})
    assert s.daily_quota == 5 and s.data_dir == Path("/tmp/x")
    assert "hunter2" not in repr(s)
    with pytest.raises(ConfigError):
        Settings.from_env({"GOVERNANCE_PORT": "eighty"})
    with pytest.raises(ConfigError):
        Settings(daily_quota=-1)
    with pytest.raises(ConfigError):
        Settings().with_overrides({"colour": "red"})


def test_translog_chain_detects_edits():
    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        for i in range(5):
            translog.append(s, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32)
    with Session(engine) as s:
        entries = list(translog.all_entries(s))
        assert [e.index for e in entries] == list(range(5))
        assert translog.verify_chain(entries)
        entries[2].content_id = "ffffffffffffffff"
        assert not translog.verify_chain(entries)
        assert not translog.verify_chain(entries[:2] + entries[3:])
