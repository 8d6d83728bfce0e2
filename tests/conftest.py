"""Fixtures shared across test packages: a real etcd cluster (``tests/etcd_cluster.py``).

The modules are loaded by path and registered by name, so any test can ``from ports import
free_port`` or ``from etcd_cluster import EtcdCluster, unique_prefix`` without putting ``tests/`` on
``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

for _name in ("ports", "etcd_cluster"):  # etcd_cluster imports ports
    _spec = importlib.util.spec_from_file_location(_name, Path(__file__).with_name(f"{_name}.py"))
    assert _spec is not None
    assert _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = _module
    _spec.loader.exec_module(_module)

etcd_cluster = _module.etcd_cluster
