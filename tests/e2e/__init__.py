"""Whole processes end to end: the consumer process, backfill, operators' commands."""
