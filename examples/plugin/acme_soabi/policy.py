"""ACME's site policy: a veto, and an audit log of every change.

* Files that no RECORD lists are never aliased (even with --include-unowned).
* Distributions named in ``ACME_SOABI_DENY`` (comma-separated) are never
  aliased: their vendors ship separate musl builds we want to be told about.
* With ``ACME_SOABI_LOG`` set, every alias created or removed is appended to
  that file as one JSON line.

A veto cannot be overridden: not by another plugin's approval, not by the
user.  An exception raised here is reported as a problem of the run
(``plugin:acme-policy: ...``) and never breaks the run or interpreter start-up.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

from packaging.utils import canonicalize_name

from soabi_shim import InterpreterFacts, Report, Verdict, hookimpl
from soabi_shim.scan import Candidate


def _denied() -> set[str]:
    names = os.environ.get("ACME_SOABI_DENY", "").split(",")
    return {canonicalize_name(n) for n in names if n.strip()}


@hookimpl
def soabi_shim_check_candidate(candidate: Candidate, facts: InterpreterFacts) -> Optional[Verdict]:
    if candidate.distribution is None:
        return Verdict.refuse("ACME policy: files no RECORD lists are not aliased")
    if canonicalize_name(candidate.distribution) in _denied():
        return Verdict.refuse(f"ACME policy: {candidate.distribution} is in ACME_SOABI_DENY")
    return None  # no opinion: the built-in checks decide


@hookimpl
def soabi_shim_report(report: Report) -> None:
    log = os.environ.get("ACME_SOABI_LOG")
    changed = [a.to_json() for a in report.aliases if a.action in ("created", "removed")]
    if not log or not changed:
        return  # also called at interpreter start-up: do nothing when there is nothing to say
    entry = {
        "time": time.time(),
        "command": report.command,
        "python": report.interpreter.executable,
        "aliases": changed,
    }
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
