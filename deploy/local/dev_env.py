"""``<home>/dev.env``: the settings the running dev stack hands to every later process, one key per owner.

Why per key: the local registry writes its address and the secure local broker its client settings; each must
update or take back its own lines without wiping the other's. Passwords are never written here (the broker's
entry names the 0600 file that holds them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["update_dev_env"]

_HEADER = "# Written by 'civreg dev up' for every later civreg process here; edits may be overwritten."


def update_dev_env(path: Path, values: Mapping[str, str | None]) -> Path:
    """Set (or, for None, remove) ``values`` in ``path``, keeping every other line; the file goes when empty."""
    kept: list[str] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key = line.partition("=")[0].strip()
            if line.startswith("#") or not line.strip() or key in values:
                continue
            kept.append(line)
    kept += [f"{key}={value}" for key, value in values.items() if value is not None]
    if not kept:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([_HEADER, *kept, ""]), encoding="utf-8")
    return path
