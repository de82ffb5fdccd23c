"""``metrics.jsonl``: one JSON object per logged step (``"split": "train"``) or evaluation
(``"split": "valid"``), appended and flushed as training goes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan"/"inf": JSON has no such numbers
    return value


class MetricsLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (written by a run that died before its next
        checkpoint), so a resumed run's log reads like an uninterrupted one."""
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path)


def read_metrics(path: str | Path) -> list[dict]:
    """All complete records (a torn last line from a killed writer is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
