"""What operators run around the departments: starting a department's consumer (``running``), acknowledgements
and the trace, review decisions, dead-letter re-drive."""
