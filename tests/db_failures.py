"""Real database failures, injected where a test needs one."""

from __future__ import annotations

from django.db import connection


def refuse_activity_log() -> None:
    """Make every insert into the activity log fail, as a real database error would: the last write
    of most services, so a test can prove their transaction is whole. The trigger lives in the test's
    own transaction, which drops it again."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_activity() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'activity log refused'; END $$;
            CREATE TRIGGER refuse_activity BEFORE INSERT ON insights_activitylog
            FOR EACH ROW EXECUTE FUNCTION refuse_activity();
            """
        )
