"""Infrastructure every app may use, knowing no app: Redis, metrics, logs, the PostgreSQL backend
and prepared statements, the query lane, wake-ups across processes, task replies and work slots.
It imports nothing of the apps, of `apikit` or of the project wiring (`insights_api`)."""
