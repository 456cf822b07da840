"""AzuraForge's platform backbone.

- `azuraforge_platform.settings`: the only reader of the environment;
- `azuraforge_platform.store`: experiments, metrics, logs, events, artifacts (SQLite/PostgreSQL);
- `azuraforge_platform.events`: persisted-then-published experiment events, gap-free streams;
- `azuraforge_platform.execution`: `run_experiment` and the embedded `LocalExecutor`;
- `azuraforge_platform.worker`: the Celery application for the distributed mode;
- `azuraforge_platform.api`: the HTTP API (`create_app`), `azuraforge_platform.client` its client.

Pipelines are reached only through `azuraforge_pipeline`'s entry-point registry.
"""

__version__ = "0.1.0"
