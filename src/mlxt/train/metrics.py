"""``metrics.jsonl``: one JSON object per logged step (``"split": "train"``) or evaluation
(``"split": "valid"``), appended and flushed as training goes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from mlxt.errors import MlxtError


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
    """All complete records. A torn last line (a writer killed mid-append) is skipped; any other
    line that is not a record (a JSON object with an integer ``step``) names the file and line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MlxtError(f"{path}: not a metrics log (invalid UTF-8 at byte {exc.start})") from None
    except OSError as exc:
        raise MlxtError(f"{path}: cannot read the metrics log ({exc.strerror or exc})") from None
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: the torn end of an interrupted append
                continue
            raise MlxtError(f"{path}:{number}: not a JSON record; the metrics log is damaged") from None
        step = record.get("step", 0) if isinstance(record, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            raise MlxtError(f"{path}:{number}: not a metrics record (expected a JSON object with an integer "
                            "'step'); the metrics log is damaged")
        records.append(record)
    return records
