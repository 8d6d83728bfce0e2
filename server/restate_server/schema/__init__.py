"""Deployments, services and handlers: the schema every component reads, and its registry."""
