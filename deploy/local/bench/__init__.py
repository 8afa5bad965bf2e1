"""``civreg bench``: the harness (named cases timed side by side), the codec and consumer suites, and the list of
suites (``suites``). Dev tooling: nothing in producers, consumers or schemas imports it."""
