"""Every write of many insights at once, on the same insights and tags: `bulk_update_tags`, tag rename
and merge, tag delete, `bulk_delete`, `bulk_restore`, PATCHes of single insights, and views recorded on them — real threads,
each with its own PostgreSQL connection, released together (insights/locking.py).

What "safe" means is checked, not assumed: the writes' activity entries give the order they were
applied in; replaying the requests in that order on a model of the project must end where the
database did, and must give every request the answer it got. A lost tag, a duplicate, a rename that
missed an insight attached meanwhile, or a delete that raced a restore would each make them differ.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.db.models import Min

from insights.models import ActivityLog, Insight
from tagging.models import Tag, TaggedItem

INSIGHTS = 10


@dataclass
class Model:
    """The project as the spec describes it: each insight's tags and whether it is deleted."""

    tags: dict[int, set[str]]
    deleted: dict[int, bool] = field(default_factory=dict)

    def apply(self, route: str, body: dict) -> dict:
        """Apply one request; its answer, as the service must give it at that point."""
        if route == "bulk_update_tags":
            live = [i for i in dict.fromkeys(body["ids"]) if not self.deleted[i]]
            for i in live:
                wanted = set(body["tags"])
                self.tags[i] = {"add": self.tags[i] | wanted, "remove": self.tags[i] - wanted, "set": wanted}[
                    body["action"]
                ]
            return {
                "updated": [{"id": i, "tags": sorted(self.tags[i])} for i in live],
                "skipped": [
                    {"id": i, "reason": "Not found or no edit access"} for i in body["ids"] if self.deleted[i]
                ],
            }
        if route in ("rename", "delete"):
            old = body["from"] if route == "rename" else body["name"]
            carrying = [i for i, tags in self.tags.items() if old in tags]
            for i in carrying:
                self.tags[i] = self.tags[i] - {old} | ({body["to"]} if route == "rename" else set())
            return {"insights": len(carrying)}
        for i in body["ids"]:
            self.deleted[i] = route == "bulk_delete"
        return {"updated": [{"id": i, "deleted": route == "bulk_delete"} for i in body["ids"]], "skipped": []}

    def carried(self, name: str) -> bool:
        return any(name in tags for tags in self.tags.values())


@pytest.mark.django_db(transaction=True)
def test_thirty_three_writers_at_once_end_as_some_serial_order_with_no_lost_tag_and_no_failure(
    client_for, owner, project, insights_url, make_insight
):
    insights = [make_insight(tags=["old", "doomed", *(["merged"] if n % 2 else [])]) for n in range(INSIGHTS)]
    ids = [insight.id for insight in insights]
    model = Model({i: {"old", "doomed"} | ({"merged"} if n % 2 else set()) for n, i in enumerate(ids)},
                  {i: False for i in ids})  # fmt: skip
    flipping = ids[:4]
    tags_url = f"/api/projects/{project.id}/tags/"

    def bulk(action: str, window: list[int], tags: list[str]) -> tuple[str, dict]:
        return "bulk_update_tags", {"ids": window, "action": action, "tags": tags}

    requests: list[tuple[str, dict]] = [
        bulk("add", ids[0:4], ["old", "a"]), bulk("add", ids[2:7], ["merged"]), bulk("add", ids[5:10], ["old"]),
        bulk("add", ids[1:9:2], ["doomed", "b"]), bulk("add", ids[::3], ["a", "merged"]), bulk("add", ids[3:6], ["c"]),
        bulk("add", ids[6:], ["old", "c"]), bulk("add", ids[:2], ["b"]),
        bulk("remove", ids[::2], ["merged"]), bulk("remove", ids[1:5], ["a", "old"]), bulk("remove", ids[4:], ["c"]),
        bulk("remove", ids[:3], ["doomed"]),
        bulk("set", ids[7:9], ["b", "old"]), bulk("set", ids[2:3], []), bulk("set", ids[0:2], ["merged", "c"]),
        ("rename", {"from": "old", "to": "merged"}), ("rename", {"from": "old", "to": "merged"}),
        ("rename", {"from": "c", "to": "renamed"}),
        ("delete", {"name": "doomed"}), ("delete", {"name": "doomed"}), ("delete", {"name": "a"}),
        *[("bulk_delete", {"ids": flipping}) for _ in range(3)],
        *[("bulk_restore", {"ids": flipping[::-1]}) for _ in range(3)],
        *[("patch", {"name": f"Renamed {i}"}) for i in flipping[:3]],
        *[("viewed", {"insight_ids": ids[::-1]}) for _ in range(3)],  # inserts that reference the insights
    ]  # fmt: skip
    urls = {"rename": f"{tags_url}rename/", "delete": f"{tags_url}delete/"}
    answers: dict[int, tuple[int, dict, str]] = {}
    barrier = threading.Barrier(len(requests), timeout=60)

    def writer(position: int, client, route: str, body: dict) -> None:
        barrier.wait()
        try:
            if route == "patch":
                response = client.patch(f"{insights_url}{flipping[position % 3]}/", body, format="json")
            else:
                response = client.post(urls.get(route, f"{insights_url}{route}/"), body, format="json")
            answer = response.json() if response.content else None
            answers[position] = (response.status_code, answer, response["X-Request-ID"])
        finally:
            connection.close()

    threads = [
        threading.Thread(target=writer, args=(position, client_for(owner), route, body))
        for position, (route, body) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 1. Nothing failed: no deadlock, no serialisation failure, no constraint violation as a 5xx. A
    #    rename or delete may find its tag gone (404), a PATCH its insight deleted (404).
    assert len(answers) == len(requests) == 33
    refused = [(requests[p], status) for p, (status, _, _) in answers.items()
               if status != (201 if requests[p][0] == "viewed" else 200)
               and not (status == 404 and requests[p][0] in ("rename", "delete", "patch"))]  # fmt: skip
    assert refused == []

    # 2. The order the writes were applied in: a request's activity entries are written under the lock,
    #    so their ids follow it. A request with no entry changed nothing.
    first_entry = dict(
        ActivityLog.objects.values("request_id").annotate(first=Min("id")).values_list("request_id", "first")
    )
    applied = sorted(
        (first_entry[uuid.UUID(request_id)], position)
        for position, (_, _, request_id) in answers.items()
        if uuid.UUID(request_id) in first_entry and requests[position][0] != "patch"
    )
    assert len(applied) >= 15  # the race was real: most requests changed something

    # 3. Replayed in that order, every request gets the answer it got.
    for _, position in applied:
        route, body = requests[position]
        status, answer, _ = answers[position]
        assert (status, answer) == (200, model.apply(route, body)), (route, body)

    # 4. And the model ends where the database did: each insight's tags (once each) and state, and
    #    only tags something carries.
    for i in ids:
        names = list(TaggedItem.objects.filter(insight_id=i).values_list("tag__name", flat=True))
        assert sorted(names) == sorted(model.tags[i]), i
        assert Insight.objects.get(id=i).deleted == model.deleted[i], i
    names = list(Tag.objects.filter(project=project).values_list("name", flat=True))
    assert sorted(names) == sorted({name for tags in model.tags.values() for name in tags})
