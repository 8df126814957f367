"""The one lock every write of many insights of a project takes first.

Tag writes (tagging.services: create/PATCH/PUT tags, bulk_update_tags, tag rename and delete) and
soft-deleting or restoring many insights (`bulk_delete`, `bulk_restore`) all begin by taking this
transaction-scoped advisory lock on the project, before any row lock. Taken first by all of them, it
is the one lock order there is: two such writes never hold each other's rows, so they cannot
deadlock, and every outcome equals some serial order of them. Writes of one insight that take no
tags (PATCH of its name, access controls) lock only that row, and hold nothing a bulk write then
waits on. These writes are rare and short next to reads, so a per-project lock costs little.
"""

from __future__ import annotations

from django.db import connection

# First key of the two-key advisory lock: "tags" in ASCII (tag writes took it first), so it cannot
# collide with other lock users.
ADVISORY_LOCK_NAMESPACE = 0x74616773


def project_writes_lock(project_id: int) -> None:
    """Wait for, then hold until the transaction ends, the project's lock of many-insight writes."""
    assert connection.in_atomic_block, "the lock lasts for a transaction; take it inside one"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, project_id])
