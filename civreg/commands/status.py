"""``civreg status``: a live terminal view of the services' metrics endpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from civreg.settings import load_settings

__all__ = ["status"]


def status(
    endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--endpoint",
            "-e",
            help="A service's metrics endpoint (host:port or URL); repeat for several. "
            "Default: $CIVREG_STATUS_ENDPOINTS (comma-separated).",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between refreshes (and between the two samples of --once).")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit instead of refreshing.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each endpoint.")] = 3.0,
) -> None:
    """Each department's lag, event rate, p99 publish-to-applied latency, dead letters and review queue.

    Reads the services' /metrics and /readyz directly (no Prometheus or Grafana needed). Exit status 3 when a
    service is down or not ready.
    """
    from deploy.local.status import parse_endpoints, run_status

    endpoints = [*(endpoint or []), *([] if endpoint else parse_endpoints(load_settings().status_endpoints))]
    if not endpoints:
        raise typer.BadParameter(
            "no metrics endpoints: pass --endpoint HOST:PORT or set CIVREG_STATUS_ENDPOINTS", param_hint="--endpoint"
        )
    if not run_status(endpoints, interval=interval, once=once, timeout=timeout):
        raise typer.Exit(3)
