"""Airbyte protocol: messages, catalog and the spec/check/discover/read entrypoint."""
