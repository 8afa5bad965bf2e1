"""The schema compatibility policy: ``schema-compatibility.yaml``, FULL_TRANSITIVE unless a subject says.

Why FULL_TRANSITIVE: departments upgrade on their own timetables and a new department replays ten years of
history, so every version must read every other version's events, in both directions. Why a file: the policy is
reviewed like code, and the same file drives the local registry, auto-registration and ``civreg schemas``.

Subjects are named here without the environment's topic prefix (``registrations.deaths-uk.gov.civreg.
DeathRegistered``), so one policy serves every environment; keys may be shell-style patterns. The file is found
through ``CIVREG_CONFIG_DIR`` (``Settings.config_files``); ``POLICY_PATH`` is the copy installed with civreg.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from civreg.errors import CivregError
from civreg.settings import PACKAGED_CONFIG
from schemas.compatibility import CompatibilityLevel

__all__ = ["POLICY_PATH", "CompatibilityPolicy", "PolicyError", "load_policy"]

POLICY_PATH = PACKAGED_CONFIG.compatibility_policy


class PolicyError(CivregError, ValueError):
    """The policy file is malformed; the message names the key."""


@dataclass(frozen=True)
class CompatibilityPolicy:
    """A default level and per-subject overrides (exact keys first, then patterns in file order)."""

    default: CompatibilityLevel = CompatibilityLevel.FULL_TRANSITIVE
    subjects: Mapping[str, CompatibilityLevel] = field(default_factory=dict)

    def level_for(self, key: str) -> CompatibilityLevel:
        """The level for the subject ``key`` (a subject without its topic prefix)."""
        exact = self.subjects.get(key)
        if exact is not None:
            return exact
        for pattern, level in self.subjects.items():
            if fnmatch.fnmatchcase(key, pattern):
                return level
        return self.default

    def level_for_subject(self, subject: str, topic_prefix: str) -> CompatibilityLevel:
        """The level for a full subject name under ``topic_prefix``."""
        head = f"{topic_prefix}."
        return self.level_for(subject[len(head) :] if subject.startswith(head) else subject)


def _level(value: Any, where: str) -> CompatibilityLevel:
    try:
        return CompatibilityLevel(str(value).upper())
    except ValueError:
        allowed = ", ".join(level.value for level in CompatibilityLevel)
        raise PolicyError(f"{where}: {value!r} is not a compatibility level ({allowed})") from None


def load_policy(path: Path = POLICY_PATH) -> CompatibilityPolicy:
    """Read the policy file; a missing file means the default policy."""
    if not path.is_file():
        return CompatibilityPolicy()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping with 'default' and 'subjects'")
    unknown = set(data) - {"default", "subjects"}
    if unknown:
        raise PolicyError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    default = _level(data.get("default", CompatibilityLevel.FULL_TRANSITIVE.value), f"{path}: default")
    subjects = data.get("subjects") or {}
    if not isinstance(subjects, dict):
        raise PolicyError(f"{path}: 'subjects' must map subject names (or patterns) to levels")
    return CompatibilityPolicy(
        default, {str(key): _level(value, f"{path}: subjects.{key}") for key, value in subjects.items()}
    )
