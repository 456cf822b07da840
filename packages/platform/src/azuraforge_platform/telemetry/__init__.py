"""Observability shared by the API, the workers and the runs: Prometheus metrics
(`telemetry.metrics`) and structured logs with request and experiment ids (`telemetry.logs`).
The API's scrape-time collector and HTTP middleware live in `api/`."""
