"""Restate service protocol V5-V7: framing, the message registry and notification builders (sans-IO)."""
