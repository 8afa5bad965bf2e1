"""The contract of the bus: Avro schemas, the matching pydantic models, the wire codec and topic names."""
