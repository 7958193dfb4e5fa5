"""Stream definitions, record shaping and JSON Schemas."""
