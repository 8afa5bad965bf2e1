"""Options that long-running services (``civreg consume``, ``civreg relay``) share, written once so their flags,
ranges and help read the same in every ``--help``."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["LogLevelOption", "MetricsPortOption"]

LogLevelOption = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")]

MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65_535,
        help="Serve /metrics, /healthz and /readyz on this port; 0 = off (default: $CIVREG_METRICS_PORT, 0).",
    ),
]
