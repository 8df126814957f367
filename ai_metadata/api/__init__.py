"""ai_metadata's HTTP interface: `generate_metadata`, composed into the insight viewset."""
