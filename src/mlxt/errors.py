"""The one exception type for user mistakes.

Anything a user can get wrong (a missing file, a bad config key, a foreign checkpoint) raises
`MlxtError` with a one-line message naming the file, line or field and what was expected.
The CLI prints it as ``mlxt: error: <message>`` and exits with status 2; no traceback.
"""


class MlxtError(Exception):
    """A user-facing error: the message is one line and says what was expected."""
