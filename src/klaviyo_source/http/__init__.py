"""HTTP client, rate limiting and retries for the Klaviyo API."""
