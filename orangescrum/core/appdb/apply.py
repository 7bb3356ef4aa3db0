"""Apply a simulated history to the app database: in event order, in transactions, resumable.

Idempotent twice over: every statement is an upsert or an update keyed by the event's ids
(orangescrum/core/appdb/translate.py), and the marker table `orangescrum_simulation` records
which history the database holds and how many of its events are applied, in the same
transaction as those events. A re-run of the same history skips what is applied (a finished
one writes nothing, so the binlog a change-data-capture reader follows sees no replays); a
different history is refused rather than mixed in.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from orangescrum.core.appdb.connection import MARKER_TABLE, ensure_schema
from orangescrum.core.appdb.translate import translate
from orangescrum.core.errors import OrangeScrumError

if TYPE_CHECKING:
    from pymysql.connections import Connection

log = logging.getLogger(__name__)

# Deliveries reach the producer seconds after their event; the app wrote each event at its own
# time. Holding events back this long before applying them restores the app's order; an
# event further out of order is an error, not a silent reordering.
REORDER_WINDOW: Final = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class ApplyReport:
    events: int  # events in the history
    applied: int  # applied by this run
    already_applied: int  # skipped: applied by an earlier run
    statements: int  # statements this run executed


def in_event_order(
    records: Iterable[dict[str, Any]], window: datetime.timedelta = REORDER_WINDOW
) -> Iterator[dict[str, Any]]:
    """Records by event_timestamp (ties: company, then arrival), from delivery order.

    Within a company events are at least a second apart, so this order is the order the app
    acted in; across companies it is merely deterministic.
    """
    held: list[tuple[datetime.datetime, int, int, dict[str, Any]]] = []
    arrival = itertools.count()
    newest: datetime.datetime | None = None
    released: datetime.datetime | None = None
    for record in records:
        moment = record["event_timestamp"]
        if released is not None and moment < released:
            raise OrangeScrumError(
                f"Event {record['event_id']} at {moment.isoformat()} arrived after events "
                f"up to {released.isoformat()} were applied (more than {window} out of order)."
            )
        heapq.heappush(held, (moment, record["company_id"], next(arrival), record))
        newest = moment if newest is None else max(newest, moment)
        while held[0][0] < newest - window:
            released = held[0][0]
            yield heapq.heappop(held)[3]
    while held:
        yield heapq.heappop(held)[3]


def apply_history(
    connection: Connection,
    records: Iterable[dict[str, Any]],
    history: str,
    *,
    events_per_transaction: int = 500,
    progress_every: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ApplyReport:
    """Apply `records` (delivery order) as the app would have written them.

    `history`: what identifies this history (seed, companies, days, start date); `progress`
    hears every applied event, the log one line every `progress_every`.
    """
    ensure_schema(connection)
    done = _resume_point(connection, history)
    applied = statements = events = 0
    with connection.cursor() as cursor:
        for events, record in enumerate(in_event_order(records), start=1):
            if events <= done:
                continue
            # The event's position is its case_activities id: stable for a given history.
            for statement in translate(record, events):
                cursor.execute(statement.sql, statement.params)
                statements += 1
            applied += 1
            if applied % events_per_transaction == 0:
                _commit(connection, cursor, events)
            if applied % progress_every == 0:
                log.info("applied %d events (%d statements)", applied, statements)
            if progress is not None:
                progress(1)
        _commit(connection, cursor, max(events, done))
    log.info(
        "history %s: %d events, %d applied now (%d statements), %d applied before",
        *(history, events, applied, statements, min(done, events)),
    )
    return ApplyReport(events, applied, min(done, events), statements)


def _resume_point(connection: Connection, history: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT history, applied_events FROM {MARKER_TABLE} WHERE id = 1")
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"INSERT INTO {MARKER_TABLE} (id, history, applied_events) VALUES (1, %s, 0)",
                (history,),
            )
            connection.commit()
            return 0
    held, done = row
    if held != history:
        raise OrangeScrumError(
            f"The app database holds another simulated history ({held}), not {history}: "
            "rerun that one, or add --reset to empty the app's tables first."
        )
    return int(done)


def _commit(connection: Connection, cursor: Any, events: int) -> None:
    cursor.execute(f"UPDATE {MARKER_TABLE} SET applied_events = %s WHERE id = 1", (events,))
    connection.commit()
