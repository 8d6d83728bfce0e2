"""The admin REST API (port 9070): deployments, services, version and health; discovery I/O."""
