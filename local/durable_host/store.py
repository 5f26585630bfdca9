"""SQLite persistence for the local durable host: instances, histories and pending work.

Everything the engine needs to resume after a crash lives here: the instance rows (status,
input/output, custom status and the engine's per-execution bookkeeping), every history event of
every execution, the inbox of events not yet delivered to an orchestrator, scheduled activity work
and durable timers. One connection, guarded by a re-entrant lock; each engine step is one
transaction (``with store.transaction():``), so a host killed between steps loses nothing that
was committed and re-runs what was not (at-least-once, like Azure).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ActivityWork", "InboxItem", "InstanceRow", "Store", "TimerRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_time REAL NOT NULL,
    last_updated_time REAL NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_instance ON history (instance_id, execution_id, seq);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox (instance_id, id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    timer_id INTEGER NOT NULL,
    fire_at TEXT NOT NULL,
    fire_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (fire_ts);
"""


@dataclass
class InstanceRow:
    """One orchestration instance (its current execution)."""

    instance_id: str
    name: str
    version: str
    execution_id: str
    runtime_status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created_time: float
    last_updated_time: float
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    state: dict[str, Any]


@dataclass(frozen=True)
class InboxItem:
    """An event waiting to be delivered to an orchestrator in its next episode."""

    id: int
    instance_id: str
    execution_id: str | None
    event: dict[str, Any]


@dataclass(frozen=True)
class ActivityWork:
    """A scheduled activity invocation whose completion is not recorded yet."""

    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class TimerRow:
    """A durable timer that has not fired yet."""

    id: int
    instance_id: str
    execution_id: str
    timer_id: int
    fire_at: str
    fire_ts: float


class Store:
    """The SQLite database behind one :class:`~local.durable_host.DurableHost`."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._depth = 0
        with self.lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work; nested uses join the outer transaction."""
        with self.lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return list(self._conn.execute(sql, params).fetchall())

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self.lock:
            cursor = self._conn.execute(sql, params)
            return (
                int(cursor.lastrowid or 0)
                if sql.lstrip().upper().startswith("INSERT")
                else cursor.rowcount
            )

    # ---- instances -------------------------------------------------------------------------

    @staticmethod
    def _instance(row: sqlite3.Row) -> InstanceRow:
        return InstanceRow(
            instance_id=row["instance_id"],
            name=row["name"],
            version=row["version"],
            execution_id=row["execution_id"],
            runtime_status=row["runtime_status"],
            input=row["input"],
            output=row["output"],
            custom_status=row["custom_status"],
            created_time=row["created_time"],
            last_updated_time=row["last_updated_time"],
            parent_instance_id=row["parent_instance_id"],
            parent_execution_id=row["parent_execution_id"],
            parent_task_id=row["parent_task_id"],
            state=json.loads(row["state"]),
        )

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        rows = self._rows("SELECT * FROM instances WHERE instance_id = ?", (instance_id,))
        return self._instance(rows[0]) if rows else None

    def list_instances(self) -> list[InstanceRow]:
        rows = self._rows("SELECT * FROM instances ORDER BY created_time, instance_id")
        return [self._instance(row) for row in rows]

    def put_instance(self, inst: InstanceRow) -> None:
        self._exec(
            "INSERT OR REPLACE INTO instances (instance_id, name, version, execution_id,"
            " runtime_status, input, output, custom_status, created_time, last_updated_time,"
            " parent_instance_id, parent_execution_id, parent_task_id, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inst.instance_id,
                inst.name,
                inst.version,
                inst.execution_id,
                inst.runtime_status,
                inst.input,
                inst.output,
                inst.custom_status,
                inst.created_time,
                inst.last_updated_time,
                inst.parent_instance_id,
                inst.parent_execution_id,
                inst.parent_task_id,
                json.dumps(inst.state),
            ),
        )

    def runnable_instance_ids(self) -> list[str]:
        """Instances with a new execution to start or undelivered inbox events, oldest first."""
        rows = self._rows(
            "SELECT i.instance_id FROM instances i WHERE i.runtime_status IN ('Pending',"
            " 'ContinuedAsNew') OR (i.runtime_status = 'Running' AND EXISTS (SELECT 1 FROM inbox b"
            " WHERE b.instance_id = i.instance_id)) ORDER BY i.last_updated_time, i.instance_id"
        )
        return [row["instance_id"] for row in rows]

    def delete_instance(self, instance_id: str) -> int:
        """Remove an instance with all its history and pending work; returns rows deleted."""
        with self.transaction():
            count = self._exec("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
            self._exec("DELETE FROM history WHERE instance_id = ?", (instance_id,))
            self.clear_pending_work(instance_id, include_inbox=True)
        return count

    def clear_pending_work(self, instance_id: str, *, include_inbox: bool) -> None:
        """Drop scheduled activities and timers (and optionally undelivered events)."""
        with self.transaction():
            self._exec("DELETE FROM activities WHERE instance_id = ?", (instance_id,))
            self._exec("DELETE FROM timers WHERE instance_id = ?", (instance_id,))
            if include_inbox:
                self._exec("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))

    # ---- history ---------------------------------------------------------------------------

    def history(self, instance_id: str, execution_id: str | None = None) -> list[dict[str, Any]]:
        if execution_id is None:
            rows = self._rows(
                "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)
            )
        else:
            rows = self._rows(
                "SELECT event FROM history WHERE instance_id = ? AND execution_id = ? ORDER BY seq",
                (instance_id, execution_id),
            )
        return [json.loads(row["event"]) for row in rows]

    def append_history(
        self, instance_id: str, execution_id: str, events: list[dict[str, Any]]
    ) -> None:
        with self.transaction():
            for event in events:
                self._exec(
                    "INSERT INTO history (instance_id, execution_id, event) VALUES (?, ?, ?)",
                    (instance_id, execution_id, json.dumps(event)),
                )

    # ---- inbox -----------------------------------------------------------------------------

    def add_inbox(self, instance_id: str, execution_id: str | None, event: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
            (instance_id, execution_id, json.dumps(event)),
        )

    def inbox(self, instance_id: str) -> list[InboxItem]:
        rows = self._rows("SELECT * FROM inbox WHERE instance_id = ? ORDER BY id", (instance_id,))
        return [
            InboxItem(row["id"], row["instance_id"], row["execution_id"], json.loads(row["event"]))
            for row in rows
        ]

    def delete_inbox(self, ids: list[int]) -> None:
        with self.transaction():
            for item_id in ids:
                self._exec("DELETE FROM inbox WHERE id = ?", (item_id,))

    # ---- activities ------------------------------------------------------------------------

    def add_activity(
        self, instance_id: str, execution_id: str, task_id: int, name: str, input_text: str | None
    ) -> None:
        self._exec(
            "INSERT INTO activities (instance_id, execution_id, task_id, name, input)"
            " VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, task_id, name, input_text),
        )

    def pending_activities(self) -> list[ActivityWork]:
        rows = self._rows("SELECT * FROM activities ORDER BY id")
        return [
            ActivityWork(
                row["id"],
                row["instance_id"],
                row["execution_id"],
                row["task_id"],
                row["name"],
                row["input"],
            )
            for row in rows
        ]

    def take_activity(self, work_id: int) -> bool:
        """Delete a work item; false when it was already gone (terminated/purged instance)."""
        return self._exec("DELETE FROM activities WHERE id = ?", (work_id,)) > 0

    # ---- timers ----------------------------------------------------------------------------

    def add_timer(
        self, instance_id: str, execution_id: str, timer_id: int, fire_at: str, fire_ts: float
    ) -> None:
        self._exec(
            "INSERT INTO timers (instance_id, execution_id, timer_id, fire_at, fire_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, timer_id, fire_at, fire_ts),
        )

    def cancel_timer(self, instance_id: str, execution_id: str, timer_id: int) -> None:
        self._exec(
            "DELETE FROM timers WHERE instance_id = ? AND execution_id = ? AND timer_id = ?",
            (instance_id, execution_id, timer_id),
        )

    def due_timers(self, now_ts: float) -> list[TimerRow]:
        rows = self._rows("SELECT * FROM timers WHERE fire_ts <= ? ORDER BY fire_ts, id", (now_ts,))
        return [self._timer(row) for row in rows]

    def next_timer(self) -> TimerRow | None:
        rows = self._rows("SELECT * FROM timers ORDER BY fire_ts, id LIMIT 1")
        return self._timer(rows[0]) if rows else None

    def take_timer(self, row_id: int) -> bool:
        return self._exec("DELETE FROM timers WHERE id = ?", (row_id,)) > 0

    @staticmethod
    def _timer(row: sqlite3.Row) -> TimerRow:
        return TimerRow(
            row["id"],
            row["instance_id"],
            row["execution_id"],
            row["timer_id"],
            row["fire_at"],
            row["fire_ts"],
        )
