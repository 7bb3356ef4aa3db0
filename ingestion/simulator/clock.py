"""Simulated time: integer microseconds since the epoch, and the conversions at its edges.

Integers rather than datetimes because the engine compares and adds moments on every action:
they are exact, cheap, and have the same resolution as Avro's timestamp-micros, so nothing is
rounded on the way into a record.
"""

from __future__ import annotations

import datetime
from typing import Final
from zoneinfo import ZoneInfo

UTC: Final = datetime.UTC
EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=UTC)
# Internal clocks are integer microseconds since the epoch: exact, cheap to compare, and the
# same resolution as Avro's timestamp-micros.
SECOND: Final = 1_000_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR


def to_dt(us: int) -> datetime.datetime:
    return EPOCH + datetime.timedelta(microseconds=us)


def to_us(moment: datetime.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


def floor_s(us: int) -> int:
    return us - us % SECOND


def ceil_s(us: int) -> int:
    return -(-us // SECOND) * SECOND


def local_us(tz: ZoneInfo, day: datetime.date, minute: int) -> int:
    local = datetime.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    return to_us(local.astimezone(UTC))
