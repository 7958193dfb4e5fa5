"""The simulated account the HTTP tests share (one per module): a full-access key and a key with
five of the eight scopes the streams need."""

from __future__ import annotations

SCOPED_KEY = "pk_http_scoped_key_0123456789abcdef"
GRANTED = ("profiles:read", "metrics:read", "templates:read", "flows:read", "tags:read")
SIZES = {"events": 40, "profiles": 20, "lists": 2, "campaigns": 3}
