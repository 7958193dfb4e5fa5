"""A faithful local Klaviyo API simulator (aiohttp), driven by the vendored OpenAPI spec."""
