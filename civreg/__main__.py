"""``python -m civreg`` runs the CLI (same as the ``civreg`` console command)."""

import sys

if sys.argv[1:2] == ["consume"]:
    # Before the CLI's imports (most of a second): a SIGTERM while a consumer starts must end it cleanly too.
    from civreg.stopping import install_stop_handlers

    install_stop_handlers()

from civreg.cli import main  # after the stop handlers, on purpose

main()
