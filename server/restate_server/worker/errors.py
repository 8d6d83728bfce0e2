"""Errors the worker gives the ingress and the admin API, which render them in their own shapes."""

from __future__ import annotations


class WorkerUnavailable(Exception):
    """The request could not be taken now, and may be retried as it is.

    No leader for the partition on this node (not elected yet, stepped down, fenced by another
    leader), the log refused the append (its disk is full, it is closing), or the partition stopped
    leading while the request waited. Nothing was acknowledged to the client.
    """
