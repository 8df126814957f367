"""What the soak's clients were answered and what was lost (bench/soak.py): the ledger every client
writes into, the database's side of every acknowledged write, and the report."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

DOCUMENTED_503 = {"service_unavailable", "query_workers_unavailable"}
RECOVERY_SECONDS = 10  # a refusal this soon after a fault ended is counted as the fault's


@dataclass(frozen=True)
class Refusal:
    at: float  # sent, in seconds since the traffic started
    done: float  # answered
    route: str
    answer: str  # "503 service_unavailable"
    content: bytes


@dataclass
class Ledger:
    """Every answer, and the writes acknowledged; shared by the clients (appends under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    views_acknowledged: Counter[int] = field(default_factory=Counter)
    views_refused: Counter[int] = field(default_factory=Counter)
    tags_acknowledged: list[tuple[int, str]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # every answer other than 2xx
    rollups: Counter[str] = field(default_factory=Counter)

    def answered(
        self, route: str, status: int, content: bytes, headers: dict[str, str], at: float, done: float
    ) -> None:
        problem = _unexpected(status, content, headers)
        with self.lock:
            self.statuses[(route, status)] += 1
            if status >= 300:
                self.refusals.append(
                    Refusal(round(at, 1), round(done, 1), route, f"{status} {_code(content)}", content[:200])
                )
            if problem is not None:
                self.unexpected.append(
                    {"route": route, "status": status, "at_s": round(at, 1), "why": problem}
                )


def _code(content: bytes) -> str:
    try:
        return str(json.loads(content).get("code"))
    except (ValueError, AttributeError):
        return "-"


def _unexpected(status: int, content: bytes, headers: dict[str, str]) -> str | None:
    """Why an answer is not one a client may get in a faulty day (None: it may)."""
    if status < 400:
        return None
    try:
        error = json.loads(content)
    except ValueError:
        return f"not the error envelope: {content[:200]!r}"
    retry_after = {name.lower(): value for name, value in headers.items()}.get("retry-after")
    if status == 503 and error.get("code") in DOCUMENTED_503 and retry_after:
        return None
    if status == 429 and retry_after:
        return None
    return f"{error.get('code')}: {error.get('detail')}"[:300]


def view_events(database_url: str) -> dict[int, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT insight_id, count(*) FROM viewtracking_viewevent GROUP BY 1"
        ).fetchall()
    return dict(rows)


def tags(database_url: str) -> set[tuple[int, str]]:
    with psycopg.connect(database_url) as connection:
        return set(
            connection.execute(
                "SELECT item.insight_id, tag.name FROM tagging_taggeditem AS item "
                "JOIN tagging_tag AS tag ON tag.id = item.tag_id"
            ).fetchall()
        )


def report(
    ledger: Ledger, *, elapsed: float, faults: dict[str, tuple[float, float]], recorded: Counter[int], counted: dict[int, int],
    baseline: dict[int, int], tagged: set[tuple[int, str]],
) -> dict[str, Any]:  # fmt: skip
    acknowledged = ledger.views_acknowledged
    insights = set(acknowledged) | set(ledger.views_refused)
    lost_views = sum(max(0, acknowledged[i] - recorded[i]) for i in insights)
    # trending counts every view event, those of the insights' creation (the baseline) included
    uncounted = sum(max(0, acknowledged[i] + baseline.get(i, 0) - counted.get(i, 0)) for i in insights)
    lost_tags = [pair for pair in ledger.tags_acknowledged if pair not in tagged]
    by_status: Counter[int] = Counter()
    by_route: dict[str, dict[int, int]] = {}
    for (route, status), count in sorted(ledger.statuses.items()):
        by_status[status] += count
        by_route.setdefault(route, {})[status] = count
    return {
        "seconds": round(elapsed, 1),
        "requests": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_route": by_route,
        "faults": {name: {"from_s": began, "to_s": ended} for name, (began, ended) in faults.items()},
        "refused_by_phase": refused_by_phase(ledger.refusals, faults),
        "refused_otherwise": [
            {"at_s": r.at, "route": r.route, "answer": r.answer, "body": r.content.decode(errors="replace")}
            for r in ledger.refusals
            if phase_of(r, faults) == "otherwise"
        ][:20],
        "unexpected": ledger.unexpected,
        "views_acknowledged": sum(acknowledged.values()),
        "views_recorded": sum(recorded.values()),
        "views_lost": lost_views,
        "views_missing_from_trending": uncounted,
        "views_recorded_though_refused": sum(max(0, recorded[i] - acknowledged[i]) for i in insights),
        "tags_acknowledged": len(ledger.tags_acknowledged),
        "tags_lost": len(lost_tags),
        "rollups": dict(ledger.rollups),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def phase_of(refusal: Refusal, faults: dict[str, tuple[float, float]]) -> str:
    """The fault a refusal belongs to (in flight during it or in the RECOVERY_SECONDS after), or "otherwise"."""
    return next(
        (
            name
            for name, (began, ended) in faults.items()
            if refusal.done >= began and refusal.at <= ended + RECOVERY_SECONDS
        ),
        "otherwise",
    )


def refused_by_phase(
    refusals: list[Refusal], faults: dict[str, tuple[float, float]]
) -> dict[str, dict[str, int]]:
    """The non-2xx answers by when they were sent: during a fault (or just after it), or otherwise."""
    phases: dict[str, Counter[str]] = {name: Counter() for name in [*faults, "otherwise"]}
    for refusal in refusals:
        phases[phase_of(refusal, faults)][refusal.answer] += 1
    return {phase: dict(counts) for phase, counts in phases.items()}
