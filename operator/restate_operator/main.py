"""The operator's entry module for ``kopf run -m restate_operator.main``: settings and all handlers.

Importing it registers every handler (one module per custom resource) with kopf's default registry.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from restate_operator import cluster, deployment, subscription
from restate_operator.kube import load_config

__all__ = ["cluster", "configure", "deployment", "subscription"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    """One place for kopf settings: finalizer name, progress storage, event posting; then k8s credentials."""
    settings.persistence.finalizer = "restate.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="restate.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="restate.dev")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # A resync timer running when a resource is deleted would hold its finalizer for kopf's default
    # 60 s cancellation polling; a second is enough for our timers, which only call the admin API.
    settings.background.cancellation_polling = 1.0
    load_config()
    logger.info("restate-operator configured")
