"""tagging's HTTP interface: `bulk_update_tags`, composed into the insight viewset, and the project's
tags routes (list, rename or merge, delete)."""
