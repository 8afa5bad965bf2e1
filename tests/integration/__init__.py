"""On the real parts: a Kafka broker, the schema registry, PostgreSQL (conftest starts them once per session)."""
