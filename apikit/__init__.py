"""The HTTP plumbing every API uses, knowing no app: the error envelope, pagination, parsers,
renderers, content negotiation, fields, throttles, OpenAPI rules, request ids and latency metrics,
coalescing of identical requests, row writers and the security headers. It builds on `infra` and
imports nothing of the apps or of the project wiring (`insights_api`)."""
