"""The one exception type for user mistakes.

Anything a user can get wrong (a missing file, a bad config key, a foreign checkpoint) raises
`MlxtError` with a one-line message naming the file, line or field and what was expected.
The CLI prints it as ``mlxt: error: <message>`` and exits with status 2; no traceback.
Warnings are `MlxtWarning`s, which the CLI prints as one line ``mlxt: warning: <message>``.
"""


class MlxtError(Exception):
    """A user-facing error: the message is one line and says what was expected."""


class MlxtWarning(UserWarning):
    """Something odd but legal (a truncated input, an unused setting): the run goes on. The CLI
    prints it as one line ``mlxt: warning: <message>``."""


def warning_line(message) -> str:
    """One line ``mlxt: warning: ...`` for a warning (its text only, no source path)."""
    text = " ".join(str(message).split("\n")).strip()
    for prefix in ("mlxt: warning: ", "mlxt: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return f"mlxt: warning: {text}"


def warn(message: str) -> None:
    """Issue an `MlxtWarning` (one ``mlxt: warning:`` line under the CLI)."""
    import warnings

    warnings.warn(message, MlxtWarning, stacklevel=2)
