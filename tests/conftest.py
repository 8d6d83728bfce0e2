"""Fixtures shared across test packages: a real etcd cluster (``tests/etcd_cluster.py``).

The module is loaded by path and registered as ``etcd_cluster``, so any test can
``from etcd_cluster import EtcdCluster, unique_prefix`` without putting ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("etcd_cluster", Path(__file__).with_name("etcd_cluster.py"))
assert _spec is not None
assert _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules["etcd_cluster"] = _module
_spec.loader.exec_module(_module)

etcd_cluster = _module.etcd_cluster
