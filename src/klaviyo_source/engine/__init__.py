"""The read engine: partitions -> bounded concurrent fetch -> ordered output to a Sink.

`read()` is the entry point (see engine/run.py); partitions.py holds the plan and the watermark,
requests.py the listing parameters, scan.py the workers.
"""

from klaviyo_source.engine.run import read

__all__ = ["read"]
