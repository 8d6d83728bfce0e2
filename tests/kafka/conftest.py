"""Fixtures of the Kafka component tests: the real broker fixture lives beside the integration harness."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from kafka_broker import kafka_broker

__all__ = ["kafka_broker"]
