"""Progress bars and the lines written while one is open.

One switch for progress bars outside the runner's own (training epochs): ``faithbench run
--quiet`` and ``run_suite(..., progress=False)`` set ``FAITHBENCH_QUIET=1`` for the run
(:func:`quiet`); an environment variable, so it also reaches subprocesses. A bar drawn while
another is open goes on its own line on a terminal only (:func:`nested_position`), and a log line
goes through tqdm (:func:`write_line`, :func:`outside_bars`, :func:`lines_through_bars`), so a redirected log (a cluster
job's file) holds no cursor movement and no line glued to a bar's (a review: ``ESC[A`` on every
training update, "…00:00, metric reliability …]trained small_cnn …"): there a line after a bar's
``\\r`` frames starts with a newline (:func:`bar_lines`). matplotlib's warnings of characters its
font cannot draw become one line (:func:`missing_glyphs_noted`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator

from tqdm.auto import tqdm

QUIET_ENV = "FAITHBENCH_QUIET"


def bars_disabled() -> bool:
    """True when ``FAITHBENCH_QUIET`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """``FAITHBENCH_QUIET=1`` inside the block when ``enabled`` (else nothing changes); the
    previous value (or its absence) is restored after it."""
    before = os.environ.get(QUIET_ENV)
    if enabled:
        os.environ[QUIET_ENV] = "1"
    try:
        yield
    finally:
        if enabled:
            if before is None:
                os.environ.pop(QUIET_ENV, None)
            else:
                os.environ[QUIET_ENV] = before


def nested_position() -> int | None:
    """``position`` of a bar drawn while another is open: tqdm's next free line (None) on a terminal;
    0 when stderr is redirected, where tqdm's next line moves the cursor up with ``ESC[A`` on every
    update: the inner bar then writes ``\\r``-separated updates on the outer bar's line."""
    return None if sys.stderr.isatty() else 0


def outside_bars() -> contextlib.AbstractContextManager[None]:
    """A block that writes lines to stdout or stderr itself (a ``log`` callable, Python's warnings):
    the open bars are cleared before it and drawn again after it."""
    return tqdm.external_write_mode(file=sys.stderr)


class _BarLines:
    """``sys.stderr`` where it is not a terminal: a line written after a bar's ``\\r`` frames (tqdm's
    updates and its clearing of a bar, which a file keeps on one line) starts with a newline, so that in a
    redirected log it is a line of its own for grep and less (a review: ``…| 2/2 [00:03<00:00]\\r   \\rtrained
    small_cnn …`` on one line); everything else is the stream's own."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - any text stream
        self._stream = stream
        self._after_bar = False

    def write(self, text: str) -> int:
        if text.startswith("\r"):  # a bar's frame, or its clearing
            self._after_bar = not text.endswith("\n")
        elif text:
            if self._after_bar and not text.startswith("\n"):
                self._stream.write("\n")
            self._after_bar = False
        return self._stream.write(text)

    def __getattr__(self, name: str):  # noqa: ANN204 - flush, fileno, encoding, isatty…: the stream's
        return getattr(self._stream, name)

    def __eq__(self, other: object) -> bool:  # tqdm.write clears the bars drawn on the stream itself too
        return other is self or other is self._stream

    def __hash__(self) -> int:
        return hash(self._stream)


@contextlib.contextmanager
def bar_lines() -> Iterator[None]:
    """``sys.stderr`` wrapped by :class:`_BarLines` inside the block where it is not a terminal (a
    terminal honours ``\\r``); the stream is put back after it."""
    stream = sys.stderr
    if stream is None or isinstance(stream, _BarLines) or stream.isatty():
        yield
        return
    sys.stderr = wrapped = _BarLines(stream)
    try:
        yield
    finally:
        if sys.stderr is wrapped:
            sys.stderr = stream


def write_line(line: str) -> None:
    """``line`` to stderr through ``tqdm.write``: an open bar is cleared first and drawn again after."""
    tqdm.write(line, file=sys.stderr)


class _BarSafeHandler(logging.Handler):
    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.log is None:
                write_line(self.format(record))
            else:
                with outside_bars():
                    self.log(self.format(record))
        except Exception:  # logging's own contract: a handler does not raise
            self.handleError(record)


@contextlib.contextmanager
def lines_through_bars(log: Callable[[str], None] | None = None) -> Iterator[None]:
    """faithbench's log records (warnings and above) written by :func:`write_line` inside the block,
    as Python's last-resort handler would (the message alone), unless the application configured
    logging (a root handler, or one of faithbench's logger): then nothing changes.

    With ``log`` (a run's ``log`` callable), each record's message goes to it instead of stderr, and an
    enclosing block's handler is set aside (a review: "model at chance" went to stderr past
    ``faithbench.run(log=lines.append)``); an application that configured logging still gets the record
    through its own handlers too, so it can show twice there.

    Where stderr is not a terminal, lines written to it inside the block after a bar's frames start on a
    line of their own (:func:`bar_lines`): the run's log, warnings and the CLI's closing lines."""
    with bar_lines():
        yield from _lines_through_bars(log)


def _lines_through_bars(log: Callable[[str], None] | None) -> Iterator[None]:
    package = logging.getLogger("faithbench")
    if log is None and (logging.getLogger().handlers or package.handlers):
        yield
        return
    aside = [h for h in package.handlers if isinstance(h, _BarSafeHandler)] if log is not None else []
    for other in aside:
        package.removeHandler(other)
    handler = _BarSafeHandler(log)
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)
        for other in aside:
            package.addHandler(other)


_GLYPH = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.+)\.$")
_glyphs: list[dict[str, set[str]]] = []  # the open blocks' {character: fonts}: the outermost one says it


@contextlib.contextmanager
def missing_glyphs_noted(limit: int = 20) -> Iterator[None]:
    """matplotlib's ``Glyph … missing from font(s) …`` warnings inside the block (one per character, figure
    and drawing: a review counted 57 under ``--quiet`` for a CJK and emoji name) become one logged line after
    it, naming the characters (at most ``limit``) the plot font cannot draw; other warnings pass as before.
    A block inside another (a run's report) leaves the line to the outer one: one line per run."""
    if _glyphs:
        yield
        return
    found: dict[str, set[str]] = {}
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        match = _GLYPH.match(str(message))
        if match is None:
            shown(message, category, filename, lineno, file, line)
        else:
            found.setdefault(chr(int(match[1])), set()).add(match[2])

    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        warnings.showwarning = show
        _glyphs.append(found)
        try:
            yield
        finally:
            _glyphs.pop()
    if found:
        chars = ", ".join(f"{ch} (U+{ord(ch):04X})" for ch in list(found)[:limit])
        chars += f" and {len(found) - limit} more" if len(found) > limit else ""
        fonts = ", ".join(sorted(set().union(*found.values())))
        logging.getLogger(__name__).warning(
            "plots: the plot font (%s) cannot draw %s, which show as empty boxes in the figures; the tables and "
            "index.html give the names whole", fonts, chars)
