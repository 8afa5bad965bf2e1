"""How the bus runs: local Kafka runner, topic definitions, deployment files."""
