"""The one Klaviyo API revision this project speaks (sent as the `revision` header)."""

REVISION = "2026-07-15"
