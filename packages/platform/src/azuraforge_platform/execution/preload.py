"""Imported once by the fork server (see `processes`), never by the API or a worker itself: it
loads the installed pipeline plugins through the entry-point registry, so a run or prediction
forked from the server finds numpy, pandas and its app already imported (a prediction would
otherwise spend seconds importing before its first step)."""

from __future__ import annotations

import logging

try:
    from azuraforge_pipeline import discover

    discover()  # a broken plugin is recorded and skipped there, never raised
except Exception:  # the fork server must start whatever a plugin does at import
    logging.getLogger(__name__).exception("preloading the pipeline plugins failed")
