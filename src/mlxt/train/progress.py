"""Progress display: a tqdm bar (step, loss, lr, tokens/s, ETA) when stderr is a terminal,
otherwise one concise line every ``log_every`` steps."""

from __future__ import annotations

import sys
import time


def _format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True, stream=None,
                 time_limit: float = 0.0):
        """``time_limit``: seconds after which training stops whatever the step (0 = none); the
        ETA is the sooner of the two ends."""
        self.stream = stream or sys.stderr
        self.total, self.start_step, self.start = total, initial, time.time()
        self.time_limit = time_limit
        self.enabled = enabled
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            # With a time budget the step count says little about the end: the bar then counts
            # steps without a total and the ETA goes into the postfix.
            self.bar = tqdm(total=None if time_limit > 0 else total, initial=initial, file=self.stream,
                            dynamic_ncols=True, unit="step", desc="train")

    def update(self, step: int, loss: float, lr: float, tokens_per_s: float) -> None:
        if not self.enabled:
            return
        eta = self._eta(step)
        if self.bar is not None:
            self.bar.n = step
            extra = {"eta": eta} if self.time_limit > 0 else {}
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}", **extra,
                                 refresh=False)
            self.bar.refresh()
            return
        print(f"step {step}/{self.total}  loss {loss:.4f}  lr {lr:.3e}  {tokens_per_s:,.0f} tok/s  eta {eta}",
              file=self.stream, flush=True)

    def _eta(self, step: int) -> str:
        done, spent = step - self.start_step, max(time.time() - self.start, 1e-9)
        rate = done / spent
        left = (self.total - step) / rate if rate > 0 else float("inf")
        if self.time_limit > 0:
            left = min(left, self.time_limit - spent)
        return _format_eta(left) if left != float("inf") else "?"

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
