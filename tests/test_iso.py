"""``_iso.iso``: exactly ``datetime.isoformat``'s text, whatever the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from weavegraph._iso import iso


@given(st.datetimes(timezones=st.sampled_from([UTC, None])))
def test_utc_and_naive_times_read_as_isoformat_writes_them(moment: datetime) -> None:
    assert iso(moment) == moment.isoformat()


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=5, minutes=30)))))
def test_other_zones_are_written_by_isoformat(moment: datetime) -> None:
    assert iso(moment) == moment.isoformat()
    assert datetime.fromisoformat(iso(moment)) == moment
