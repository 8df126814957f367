"""tagging's HTTP interface: `bulk_update_tags`, composed into the insight viewset."""
