"""The Singer tap face (`tap-klaviyo-source`): the same engine, speaking the Singer spec.

catalog.py builds the discovered catalog and reads a selected one, sink.py writes SCHEMA,
RECORD and STATE messages, tap.py is the command line Meltano and Singer runners call.
"""
