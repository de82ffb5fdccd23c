"""Progress display: a tqdm bar when stderr is a terminal, otherwise one concise line every
``log_every`` steps.

A run with a step budget shows ``step 25/100`` and an ETA. A time-limited run (``max_minutes``,
where ``steps`` is only a ceiling) shows the time trained out of the limit as its main measure,
``02:10/06:00``, then the step count, and an ETA that is the sooner of the two ends.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


_format_eta = format_duration


class Progress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True, stream=None,
                 time_limit: float = 0.0, time_done: float = 0.0):
        """``time_limit``: seconds after which training stops whatever the step (0 = none);
        ``time_done``: seconds of it already used (a resumed time-scheduled run)."""
        self.stream = stream or sys.stderr
        self.total, self.start_step, self.start = total, initial, time.time()
        self.time_limit, self.time_done = time_limit, time_done
        self.enabled = enabled
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            if time_limit > 0:  # the bar fills with time; the step goes into the postfix
                self.bar = tqdm(total=round(time_limit), initial=min(round(time_done), round(time_limit)),
                                file=self.stream, dynamic_ncols=True, desc="",
                                bar_format="train: {percentage:3.0f}%|{bar}| {desc}")
            else:
                self.bar = tqdm(total=total, initial=initial, file=self.stream, dynamic_ncols=True, unit="step",
                                desc="train")

    def update(self, step: int, loss: float, lr: float, tokens_per_s: float, seconds: float | None = None) -> None:
        """``seconds``: the time counted against ``time_limit`` so far (default: since this display
        started, plus ``time_done``)."""
        if not self.enabled:
            return
        if seconds is None:
            seconds = self.time_done + time.time() - self.start
        if self.time_limit > 0:
            self._update_timed(step, loss, lr, tokens_per_s, seconds)
            return
        eta = self._eta(step)
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            self.bar.refresh()
            return
        print(f"step {step}/{self.total}  loss {loss:.4f}  lr {lr:.3e}  {tokens_per_s:,.0f} tok/s  eta {eta}",
              file=self.stream, flush=True)

    def _update_timed(self, step: int, loss: float, lr: float, tokens_per_s: float, seconds: float) -> None:
        eta = self._eta(step, left_in_time=self.time_limit - seconds)
        text = f"{format_duration(seconds)}/{format_duration(self.time_limit)}"
        if self.bar is not None:
            self.bar.n = min(max(round(seconds), 0), self.bar.total)
            self.bar.set_description_str(f"{text}  step {step:,}  loss {loss:.4f}  lr {lr:.2e}  "
                                         f"{tokens_per_s:,.0f} tok/s  eta {eta}", refresh=False)
            self.bar.refresh()
            return
        print(f"{text}  step {step:,}  loss {loss:.4f}  lr {lr:.3e}  {tokens_per_s:,.0f} tok/s  eta {eta}",
              file=self.stream, flush=True)

    def _eta(self, step: int, left_in_time: float = float("inf")) -> str:
        done, spent = step - self.start_step, max(time.time() - self.start, 1e-9)
        rate = done / spent
        left = min((self.total - step) / rate if rate > 0 else float("inf"), left_in_time)
        return format_duration(left) if left != float("inf") else "?"

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
