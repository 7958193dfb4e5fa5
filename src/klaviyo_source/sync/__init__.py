"""The standalone sync face: `klaviyo-source sync` (command.py), its Sink into a destination
(sink.py), progress and summaries (progress.py) and `klaviyo-source demo` (demo.py)."""
