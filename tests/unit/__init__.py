"""Pure logic: no broker, schema registry or PostgreSQL (``make unit`` runs these and contract/)."""
