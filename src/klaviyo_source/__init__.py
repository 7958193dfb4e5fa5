"""klaviyo-source: Klaviyo data out of Klaviyo's API, into Airbyte, DuckDB or Postgres."""

from klaviyo_source.revision import REVISION

__all__ = ["REVISION"]
__version__ = "0.1.0"
