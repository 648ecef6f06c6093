"""Open loop: the first offered rate the server could not keep up with — when the client
sent it. A level where the client fell short is the load_shortfall finding's to say."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.shortfall import Shortfall
from loadlens.findings.model import Finding

KIND = "rate_saturation"
SECTION = "story"
ORDER = 100


def _shortfall_of(a: Any, deployment: str, offered: float) -> Shortfall | None:
    for s in getattr(a, "shortfalls", None) or []:
        if s.deployment == deployment and s.load_mode == "rate" and s.requested == offered:
            return s
    return None


def find(a: Any) -> list[Finding]:
    out = []
    for r in a.saturations:
        s = _shortfall_of(a, r.deployment, r.offered_rps)
        if s is not None and s.status == "client_shortfall":
            continue  # the client sent less than asked: no server queue to speak of
        kept = (
            f"; it kept up at {r.last_kept_up_rps:g} req/s"
            if r.last_kept_up_rps is not None
            else "; it kept up with none of the offered rates"
        )
        done = (
            f"At {r.offered_rps:g} req/s offered, {r.deployment} completed only "
            f"{r.achieved_rps:.2f} req/s ({r.achieved_rps / r.offered_rps:.0%})"
        )
        if s is None:  # no record of what was sent: the saturation as measured
            sentence = f"{done}: its queue grows for as long as that load lasts{kept}."
            sent = None
        elif s.status in ("server_saturation", "ok") and s.basis not in ("", "served_rate"):
            assert s.delivered is not None
            sentence = (
                f"{done} while the client sent {s.delivered:.3g} req/s as asked: its queue "
                f"grows for as long as that load lasts{kept}."
            )
            sent = s.delivered
        else:
            sentence = (
                f"{done}: if the client sent as asked, its queue grows for as long as that "
                f"load lasts{kept}. The file does not record when requests were sent, so a "
                "client that fell behind would read the same."
            )
            sent = None
        out.append(
            Finding(
                kind=KIND,
                severity="critical",
                deployment=r.deployment,
                sentence=sentence,
                evidence={
                    "offered_rps": r.offered_rps,
                    "achieved_rps": r.achieved_rps,
                    "last_kept_up_rps": r.last_kept_up_rps,
                    "sent_rps": sent,
                },
                confidence="completed requests per second of sending (the run's duration less "
                "one request time at the lightest rate); open-loop arrivals, 2/√n tolerance",
            )
        )
    return out
