"""Metadata store providers; each implements :class:`restate_server.metadata.api.MetadataStore`."""
