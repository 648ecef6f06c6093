"""A finding: one plain sentence with the numbers behind it and how sure it is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


class Finding(BaseModel):
    """A finding never states a number it does not carry in `evidence`, and says how sure
    it is (`confidence`): sample sizes, confidence intervals, or why there are none."""

    model_config = ConfigDict(frozen=True)

    kind: str  # the registry module that made it (findings/<kind>.py)
    severity: Severity
    deployment: str | None
    sentence: str
    evidence: dict[str, float | int | str | None]
    confidence: str
