"""The read engine: partitions -> bounded concurrent fetch -> ordered output to a Sink.

`read()` is the entry point (engine/run.py) and returns a `ReadRun` handle; `contract.py` is what
callers implement and receive (Sink, RawRecordSink, selections, stats, outcomes); partitions.py
holds the plan and the watermark, params.py the listing parameters, scan.py the workers,
outbox.py the bounded page channel, observer.py the per-stream request counters.
"""

from klaviyo_source.engine.run import ReadRun, read

__all__ = ["ReadRun", "read"]
