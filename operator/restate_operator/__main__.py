"""``python -m restate_operator`` / ``restate-py-operator``: run the operator cluster-wide.

Flags: ``--namespace NS`` (repeatable) limits watching; ``--standalone`` disables kopf peering;
``--liveness URL`` serves kopf's health endpoint (e.g. ``http://0.0.0.0:8080/healthz``).
"""

from __future__ import annotations

import argparse
import logging

import kopf

from restate_operator import main as handlers


def main(argv: list[str] | None = None) -> None:
    """Parse flags and run kopf until interrupted."""
    parser = argparse.ArgumentParser(prog="restate-py-operator", description=__doc__)
    parser.add_argument("--namespace", action="append", default=[], help="watch only these namespaces")
    parser.add_argument("--standalone", action="store_true", help="no peering with other operator replicas")
    parser.add_argument(
        "--liveness", default=None, help="liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin request is noise
    assert handlers.configure is not None  # importing the module registered the handlers
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        liveness_endpoint=args.liveness,
    )


if __name__ == "__main__":
    main()
