"""Shared test helpers (conftest.py holds fixtures only): factories, environment (repository path, free port, a
subprocess's settings), customer rows, delivery as the runtime dispatches, test departments, the local PostgreSQL
server and the crashing consumer process."""
