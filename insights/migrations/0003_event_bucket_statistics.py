"""Statistics on the Trends bucket expressions.

Without them PostgreSQL guesses that `date_trunc('day', timestamp AT TIME ZONE 'UTC')` takes as many
values as `timestamp`, plans a hash aggregate for millions of groups and will not aggregate in
parallel; with them it knows a month of days is 31 groups and splits the scan across workers (a 30-day
daily total over 10M events: 3.5 s to 2.3 s). The expressions match what insights/trends.py sends for
projects in UTC (parameters are bound client-side, so the zone arrives as this literal); projects in
other zones get the serial plan.
"""

from django.db import migrations

INTERVALS = ("hour", "day", "week", "month")


class Migration(migrations.Migration):
    dependencies = [("insights", "0002_event")]

    operations = [
        migrations.RunSQL(
            f"CREATE STATISTICS event_{interval}_utc_stats ON (date_trunc('{interval}', timestamp AT TIME ZONE 'UTC')) "
            "FROM insights_event",
            reverse_sql=f"DROP STATISTICS IF EXISTS event_{interval}_utc_stats",
        )
        for interval in INTERVALS
    ]
