"""Progress on a terminal, for commands whose work grows with their input.

:class:`TerminalProgress` shows one line on stderr, rewritten in place, once the work has run
longer than ``delay`` seconds and only when stderr is a terminal (never in a pipe, a file or a
test's capture); :meth:`~TerminalProgress.close` erases it.

Examples
========

>>> import io
>>> progress = TerminalProgress("derive bound", stream=io.StringIO())
>>> progress(1, 10)
>>> progress.close()
>>> progress.stream.getvalue()
''
"""

import sys
import time

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """``progress(done, total)``: "PREFIX: example DONE/TOTAL ..." on a terminal, after
    ``delay`` seconds."""

    def __init__(self, prefix, *, stream=None, delay=2.0, what="example"):
        self.prefix, self.what, self.delay = prefix, what, delay
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()
        self.shown = False
        try:
            self.terminal = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.terminal = False

    def __call__(self, done, total):
        if not self.terminal or time.monotonic() - self.started < self.delay:
            return
        self.stream.write(f"\r\033[K{self.prefix}: {self.what} {done}/{total} ...")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
