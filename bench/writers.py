"""One way to write an insight page (issue 23, item 3): three ways to produce the `results` JSON bytes
of a page of the insight list, measured in one run on the same rows, each checked byte-identical to
today's before it is timed.

- `writers`: today's. The list's compiled `insight_rows` statement, its rows written by the
  serializer's precompiled `RowWriter` (apikit/json_rows.py), rendered by DRF's JSONRenderer.
- `serializers`: the same statement, its rows through the plain serializer
  (`Serializer(rows, many=True, context=...).data`), rendered by the same renderer.
- `sql json`: the same statement wrapped in one that builds each row's JSON object in PostgreSQL
  (bench/writers_sql.py: `json_build_object`, the page aggregated by `json_agg`) and returns it as
  text; Python then parses it, puts in each row's `last_refresh` (from Redis, as the others do) and
  renders it: PostgreSQL's JSON text is not compact, and a query's numbers are written as Python
  writes them, so the bytes could not be identical without both steps.

Every timed call is one request's worth: the statement, the Redis round trip of `last_refresh`, the
writing and the rendering. Rounds interleave the variants (in a rotating order) on the same page
of the same data, so a busy neighbour slows all of them alike. The caller is a member who is not an
admin of the organization, so every row's access level is computed as for most callers.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stack
from django.db import connection
from rest_framework.renderers import JSONRenderer

from accounts.caller import Caller
from accounts.models import OrganizationMembership, Project, User
from accounts.services import installation_bootstrap
from apikit.json_rows import RowWriter
from bench.writers_sql import sql_json_statement
from infra.db.compiled import Markers, Prepared
from infra.redis import cache_set_many
from insights.access import insights_visible
from insights.api.base import insights_shown
from insights.api.serializers import InsightBasicSerializer, InsightSerializer
from insights.models import AccessLevel, Dashboard, DashboardTile, Insight, InsightAccessOverride
from insights.query_runner import insight_results_fingerprint, query_last_refreshed, query_refreshed_key
from insights.selectors import InsightFilters, insight_rows, insights_filter, insights_order
from tagging.models import Tag, TaggedItem
from viewtracking.models import InsightViewed

INSIGHTS = 3000
USERS = 12
TAGS = 40
DASHBOARDS = 30
SIZES = (20, 100)
SHAPES = {"full": InsightSerializer, "basic": InsightBasicSerializer}
VARIANTS = ("serializers", "writers", "sql json")  # simplest first: the order the decision reads them in
ROUNDS = 150
WARMUP_ROUNDS = 10
FIRST_PAGES = 5  # timed on the first pages, those callers read (a deep OFFSET costs the statement alone)
WITHIN = 0.10  # issue 23: the simplest within 10% of the fastest is kept
# Names that test the writers' escaping: quotes, backslashes, control characters, line and paragraph
# separators (which DRF's renderer escapes), text outside ASCII.
ODD_NAMES = ('say "hi"', "back\\slash", "tab\there\nnewline", "ctl\x01", "sep\u2028par\u2029", "émoji 📈 ok")


@dataclass(frozen=True)
class WritersWorld:
    project: Project
    caller: User


def writers_world() -> WritersWorld:
    """A project of INSIGHTS insights as the list shows them: creators and editors (some gone),
    tags, tiles on live and deleted dashboards, views, a few access levels and overrides, queries of
    several kinds, cached results for some, odd characters in names, time stamps with and without
    microseconds."""
    rng = random.Random(23)
    setup = installation_bootstrap(
        email="writers@bench.test", password=None, organization_name="Writers", project_name="writers",
        scopes=["*"], ai_approved=False, project_scoped=False,
    )  # fmt: skip
    project = setup.project
    users = User.objects.bulk_create(
        [
            User(email=f"user{n}@bench.test", first_name=f"Ünïcode {n}", last_name="O'Brien")
            for n in range(USERS)
        ]
    )
    OrganizationMembership.objects.bulk_create(
        [OrganizationMembership(organization=setup.organization, user=user) for user in users]
    )
    caller = users[0]
    queries = [_trends(event, days) for event in ("$pageview", "signup", "purchase") for days in (7, 30)]
    queries += [
        None,
        {"kind": "HogQuery", "code": "return 1.5"},
        {"kind": "DataVisualizationNode", "n": [1.0, 2e-7]},
    ]

    def creator() -> User | None:
        return None if rng.random() < 0.05 else rng.choice(users)

    insights = []
    for n in range(INSIGHTS):
        query = rng.choice(queries)
        insights.append(
            Insight(
                project=project,
                name=None if n % 17 == 0 else (rng.choice(ODD_NAMES) if n % 11 == 0 else f"Insight {n}"),
                derived_name=f"Derived {n}" if n % 3 == 0 else None,
                description=f"About {n}" if n % 2 else None,
                query=query,
                results_fingerprint=insight_results_fingerprint(query),
                order=n if n % 4 == 0 else None,
                favorited=n % 5 == 0,
                saved=n % 9 != 0,
                access_level=rng.choice([AccessLevel.EDITOR] * 8 + [AccessLevel.VIEWER, AccessLevel.NONE]),
                created_by=creator(),
                last_modified_by=creator(),
            )
        )
    insights = Insight.objects.bulk_create(insights)
    with connection.cursor() as cursor:  # auto_now(_add) fields cannot be set through the ORM
        cursor.execute(_TIMES_SQL, {"project": project.id})
    InsightAccessOverride.objects.bulk_create(
        [InsightAccessOverride(insight=insight, user=caller, access_level=AccessLevel.VIEWER)
         for insight in insights if insight.access_level == AccessLevel.NONE and rng.random() < 0.5]
    )  # fmt: skip
    tags = Tag.objects.bulk_create([Tag(project=project, name=f"tag-{n}") for n in range(TAGS)])
    TaggedItem.objects.bulk_create(
        [
            TaggedItem(tag=tag, insight=insight)
            for insight in insights
            for tag in rng.sample(tags, rng.randint(0, 4))
        ]
    )
    dashboards = Dashboard.objects.bulk_create(
        [Dashboard(project=project, name=f"Dashboard {n}", deleted=n % 10 == 0) for n in range(DASHBOARDS)]
    )
    DashboardTile.objects.bulk_create(
        [DashboardTile(dashboard=dashboard, insight=insight)
         for insight in insights for dashboard in rng.sample(dashboards, rng.randint(0, 3))]
    )  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)  # views with no fraction, a short one, a full one
    InsightViewed.objects.bulk_create(
        [InsightViewed(project=project, user=user, insight=insight,
                       last_viewed_at=now - timedelta(seconds=rng.randint(0, 90 * 86400),
                                                      microseconds=rng.choice((0, 120_000, 123_456))))
         for insight in insights if rng.random() < 0.6 for user in rng.sample(users, rng.randint(1, 3))]
    )  # fmt: skip
    fingerprints = {insight.results_fingerprint for insight in insights if insight.results_fingerprint}
    cached = sorted(fingerprints)[: len(fingerprints) // 2]
    cache_set_many(
        {query_refreshed_key(project_id=project.id, fingerprint=fp): "2026-12-01T10:00:00Z" for fp in cached},
        timeout=3600,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return WritersWorld(project=project, caller=caller)


def _trends(event: str, days: int) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "dateRange": {"date_from": f"-{days}d"},
            "series": [{"kind": "EventsNode", "event": event, "math": "total"}]}}  # fmt: skip


# Spread over a year; every seventh without microseconds (ISO 8601 then has no fraction).
_TIMES_SQL = """
UPDATE insights_insight SET
    created_at = CASE WHEN id %% 7 = 0 THEN date_trunc('second', t) ELSE t END,
    last_modified_at = t + interval '1 hour' * (id %% 5),
    updated_at = t + interval '1 day'
FROM (SELECT id AS insight_id, now() - random() * interval '365 days' AS t
      FROM insights_insight WHERE project_id = %(project)s) AS times
WHERE id = times.insight_id
"""


def list_statement() -> Prepared:
    """The statement of the default insight list's page, as the list route compiles it."""
    markers = Markers()
    scoped = insights_visible(
        insights_shown().filter(project_id=markers.number("project")),
        Caller(user_id=markers.number("user"), is_admin=False),
    )
    listed = insights_order(insights_filter(queryset=scoped, filters=InsightFilters()), "-last_modified_at")
    return insight_rows(listed, markers, limit="limit", offset="offset")


@dataclass(frozen=True)
class Page:
    """What one request asks for: its shape, its page size and its page."""

    shape: str
    size: int
    offset: int


class Variants:
    """The three ways to a page's `results` bytes, on the world's project and caller; each one is
    `(fetch, write)`: the statement, then everything after it."""

    def __init__(self, world: WritersWorld) -> None:
        self.project, self.caller = world.project, world.caller
        self.statement = list_statement()
        self.sql = {
            shape: sql_json_statement(self.statement, cls, timezone=self.project.timezone)
            for shape, cls in SHAPES.items()
        }
        self.renderer = JSONRenderer()

    def rows(self, page: Page) -> list[Any]:
        return self.statement.rows(
            project=self.project.id, user=self.caller.id, limit=page.size, offset=page.offset
        )

    def context(self, rows: list[Any]) -> dict[str, Any]:
        fingerprints = [row.results_fingerprint for row in rows if row.results_fingerprint]
        refreshed = query_last_refreshed(project_id=self.project.id, fingerprints=fingerprints)
        return {"project": self.project, "last_refresh": refreshed}

    def writers(self, page: Page, rows: list[Any]) -> bytes:
        return self.renderer.render(RowWriter.write_rows(SHAPES[page.shape], rows, self.context(rows)))

    def serializers(self, page: Page, rows: list[Any]) -> bytes:
        data = SHAPES[page.shape](rows, many=True, context=self.context(rows)).data
        return self.renderer.render(data)

    def sql_rows(self, page: Page) -> str:
        page_rows = self.sql[page.shape].rows(
            project=self.project.id, user=self.caller.id, limit=page.size, offset=page.offset
        )
        text: str = page_rows[0].results
        return text

    def sql_json(self, page: Page, text: str) -> bytes:
        results = json.loads(text)
        fingerprints = [row["last_refresh"] for row in results if row["last_refresh"]]
        refreshed = query_last_refreshed(project_id=self.project.id, fingerprints=fingerprints)
        for row in results:
            row["last_refresh"] = refreshed.get(row["last_refresh"])
        return self.renderer.render(results)

    def steps(self, variant: str) -> tuple[Callable[[Page], Any], Callable[[Page, Any], bytes]]:
        return {
            "writers": (self.rows, self.writers),
            "serializers": (self.rows, self.serializers),
            "sql json": (self.sql_rows, self.sql_json),
        }[variant]

    def answer(self, variant: str, page: Page) -> bytes:
        fetch, write = self.steps(variant)
        return write(page, fetch(page))


def check_identical(variants: Variants, *, rows: int) -> dict[str, str]:
    """Each variant's bytes against today's for every row (in pages of 100) and for the first pages
    of 20, both shapes: "identical", or where it first differs."""
    pages = [Page(shape, 100, offset) for shape in SHAPES for offset in range(0, rows, 100)]
    pages += [Page(shape, 20, offset) for shape in SHAPES for offset in range(0, 100, 20)]
    verdicts = dict.fromkeys(VARIANTS, "identical")
    for page in pages:
        today = variants.answer("writers", page)
        for variant in VARIANTS:
            if verdicts[variant] == "identical":
                verdicts[variant] = (
                    _first_difference(page, today, variants.answer(variant, page)) or "identical"
                )
    return verdicts


def _first_difference(page: Page, today: bytes, theirs: bytes) -> str | None:
    if theirs == today:
        return None
    at = next(
        (i for i, (a, b) in enumerate(zip(today, theirs, strict=False)) if a != b),
        min(len(today), len(theirs)),
    )
    return (
        f"differs ({page.shape}, {page.size} rows from {page.offset}, byte {at}: "
        f"{today[at - 30 : at + 30]!r} today, {theirs[at - 30 : at + 30]!r})"
    )


@dataclass
class Samples:
    total: list[float]  # seconds per request: the statement and everything after it
    after: list[float]  # the part after the statement: Redis, writing, rendering

    def median_ms(self) -> float:
        return statistics.median(self.total) * 1000

    def p95_ms(self) -> float:
        return statistics.quantiles(self.total, n=20)[-1] * 1000


Key = tuple[str, int, str]  # shape, page size, variant


def measure(variants: Variants, *, rounds: int = ROUNDS) -> dict[Key, Samples]:
    """`rounds` rounds (after WARMUP_ROUNDS not kept); in each, every shape and page size on one of
    the first pages (the next one each round), the variants one after another in an order that
    rotates."""
    samples = {
        (shape, size, variant): Samples([], []) for shape in SHAPES for size in SIZES for variant in VARIANTS
    }
    order = list(VARIANTS)
    for number in range(WARMUP_ROUNDS + rounds):
        for shape in SHAPES:
            for size in SIZES:
                page = Page(shape, size, number % FIRST_PAGES * size)
                order = order[1:] + order[:1]
                for variant in order:
                    fetch, write = variants.steps(variant)
                    started = time.perf_counter()
                    fetched = fetch(page)
                    middle = time.perf_counter()
                    write(page, fetched)
                    ended = time.perf_counter()
                    if number >= WARMUP_ROUNDS:
                        samples[shape, size, variant].total.append(ended - started)
                        samples[shape, size, variant].after.append(ended - middle)
    return samples


def kept(samples: dict[Key, Samples], verdicts: dict[str, str]) -> tuple[str | None, dict[str, float]]:
    """The simplest variant with identical output whose median is within WITHIN of the fastest's in
    every shape and page size, and each variant's worst ratio to the fastest."""
    worst = dict.fromkeys(VARIANTS, 0.0)
    for shape in SHAPES:
        for size in SIZES:
            medians = {variant: samples[shape, size, variant].median_ms() for variant in VARIANTS}
            fastest = min(median for variant, median in medians.items() if verdicts[variant] == "identical")
            for variant, median in medians.items():
                worst[variant] = max(worst[variant], median / fastest)
    eligible = [v for v in VARIANTS if verdicts[v] == "identical" and worst[v] <= 1 + WITHIN]
    return (eligible[0] if eligible else None), worst


def report(samples: dict[Key, Samples], verdicts: dict[str, str], *, minutes: float, load: tuple[float, float],
           rows: int, header: str) -> str:  # fmt: skip
    chosen, worst = kept(samples, verdicts)
    lines = [
        "# One way to write rows: the three measured",
        "",
        f"{header} ({minutes:.1f} minutes). Load average (1 min) {load[0]:.2f} when the timing began and "
        f"{load[1]:.2f} when it ended: the machine was {'shared' if max(load) > 1 else 'quiet'} "
        "(interleaved rounds slow every variant alike, so the ratios hold better than the milliseconds).",
        "",
        f"The data: one project of {INSIGHTS:,} insights ({rows:,} visible to the caller, a member who is not "
        f"an admin) with {USERS} creators, {TAGS} tags, {DASHBOARDS} dashboards (some deleted), views, "
        "access levels and overrides, several query kinds, cached results for half the queries, odd "
        f"characters in names. {ROUNDS} interleaved rounds after {WARMUP_ROUNDS} not kept, on the first {FIRST_PAGES} "
        "pages of the default list (newest first) in turn; each request is "
        "the page's statement, the Redis round trip of `last_refresh`, the writing and DRF's JSON rendering of "
        '`results`, in the bench\'s process (no HTTP). "After the statement" is the part in Python and Redis. '
        "Output: byte-compared with today's on every visible row, both shapes, before timing.",
        "",
        "| shape | rows | way | output | median | p95 | after the statement (median) | median / fastest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        for size in SIZES:
            fastest = min(samples[shape, size, v].median_ms() for v in VARIANTS if verdicts[v] == "identical")
            for variant in VARIANTS:
                found = samples[shape, size, variant]
                output = "identical bytes" if verdicts[variant] == "identical" else "**not identical**"
                lines.append(
                    f"| {shape} | {size} | {variant} | {output} | {found.median_ms():.2f} ms | {found.p95_ms():.2f} ms "
                    f"| {statistics.median(found.after) * 1000:.2f} ms | {found.median_ms() / fastest:.2f} |"
                )
    lines += [
        "",
        *(f"- {variant}: {verdict}" for variant, verdict in verdicts.items() if verdict != "identical"),
    ]
    ratios = ", ".join(f"{variant} {worst[variant]:.2f}" for variant in VARIANTS)
    lines += [
        "",
        "## Decision",
        "",
        f"Issue 23 keeps the simplest way within {WITHIN:.0%} of the fastest (simplest first: plain "
        "serializers, then the precompiled writers, then JSON built in SQL, which repeats the serializers' "
        f"shape in SQL). Each way's worst median over the fastest's, across both shapes and page sizes: {ratios}. "
        + (f"Kept by this run: **{chosen}**." if chosen else "No way is within the margin in every case.")
        + " "
        + DECIDED,
        "",
    ]
    return "\n".join(lines)


# What the code follows; a run that keeps another way says the decision should be revisited.
DECIDED = (
    "The code writes rows with the precompiled writers (apikit/json_rows.py, whose docstring gives the "
    "figures that decided it); a run that keeps another way exits with 1, a sign to revisit that."
)


def bench_writers(header: str, started: float) -> tuple[str, bool]:
    """Build the world, check the outputs, time the variants; the report and whether this run keeps
    the way the code follows."""
    stack.say("bench: building the writers' world")
    world = writers_world()
    variants = Variants(world)
    rows = variants.statement.count(project=world.project.id, user=world.caller.id, limit=INSIGHTS, offset=0)
    stack.say(f"bench: checking the outputs on {rows:,} rows")
    verdicts = check_identical(variants, rows=rows)
    stack.say(f"bench: timing ({ROUNDS} rounds)")
    load_before = os.getloadavg()[0]
    samples = measure(variants)
    load = (load_before, os.getloadavg()[0])
    text = report(
        samples, verdicts, minutes=(time.monotonic() - started) / 60, load=load, rows=rows, header=header
    )
    return text, kept(samples, verdicts)[0] == "writers"
