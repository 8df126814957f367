"""viewtracking's HTTP interface: `viewed`, `my_last_viewed` and `trending`, composed into the insight viewset."""
