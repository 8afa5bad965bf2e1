"""``python -m civreg`` runs the CLI (same as the ``civreg`` console command)."""

from civreg.cli import main

main()
