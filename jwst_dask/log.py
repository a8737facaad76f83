"""Logging as the official pipeline does it: ``stpipe.*`` loggers and the stpipe log configuration file.

Steps and pipelines log to ``stpipe.<Pipeline>.<step>`` (``stpipe.<StepClass>`` when a step runs on
its own), so existing log filters keep working. Lines look like::

    2024-01-01 12:00:00,057 - stpipe.Detector1Pipeline.jump - INFO - Step jump running with args ...

The configuration file is the stpipe one: INI sections whose names are glob patterns matched against
the logger name without its ``stpipe.`` prefix (``[*]`` all, ``[*.jump]`` the jump step of any
pipeline, ``[Detector1Pipeline.*]`` its sub-steps), each with ``handler`` (``stderr``, ``stdout``,
``file:<path>`` (rewritten), ``append:<path>``; several separated by commas), ``level``,
``break_level`` (a record at or above it raises :class:`LogBreakError`) and ``format``. A logger
matched by several sections follows the last of them (so ``[*]`` first, then the exceptions). The file is
looked up in this order: the ``--logcfg`` option / ``logcfg=`` argument, ``./stpipe-log.cfg``,
``~/stpipe-log.cfg``, ``/etc/stpipe-log.cfg``; the first found is used in its entirety. Without
one: INFO and above to stderr. The package's own module loggers (``jwst_dask.*``) follow ``[*]``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jwst_dask.errors import InputFileError, JwstDaskError

__all__ = [
    "DEFAULT_FORMAT",
    "LogBreakError",
    "configure",
    "ensure_configured",
    "find_logcfg",
    "get_logger",
]

DEFAULT_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
ROOT = "stpipe"
#: the logger trees the configuration applies to: the stpipe tree and the package's modules.
_TREES = (ROOT, "jwst_dask")
_SEARCH = ("./stpipe-log.cfg", "~/stpipe-log.cfg", "/etc/stpipe-log.cfg")
_configured = False


class LogBreakError(JwstDaskError):
    """A log record reached the configured ``break_level``."""


class _StreamHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` / ``sys.stdout`` is at emit time (redirections, captures)."""

    def __init__(self, which: str = "stderr"):
        super().__init__()
        self._which = which

    @property
    def stream(self):
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; ignore
        pass


@dataclass
class _Section:
    pattern: str
    level: int
    break_level: int | None
    handlers: list[logging.Handler] = field(default_factory=list)

    def matches(self, logger_name: str) -> bool:
        short = logger_name[len(ROOT) + 1 :] if logger_name.startswith(ROOT + ".") else logger_name
        return fnmatch.fnmatchcase(short, self.pattern) or (self.pattern == "*" and logger_name in _TREES)


class _Dispatcher(logging.Handler):
    """The one handler on each configured tree: routes a record by the sections matching its logger."""

    def __init__(self, sections: list[_Section]):
        super().__init__(logging.NOTSET)
        self.sections = sections
        self._cache: dict[str, tuple[int, int | None, list[logging.Handler]]] = {}

    def _route(self, name: str) -> tuple[int, int | None, list[logging.Handler]]:
        if name not in self._cache:
            route: tuple[int, int | None, list[logging.Handler]] = (logging.CRITICAL + 1, None, [])
            for section in self.sections:  # the last matching section applies
                if section.matches(name):
                    route = (section.level, section.break_level, section.handlers)
            self._cache[name] = route
        return self._cache[name]

    def handle(self, record: logging.LogRecord) -> bool:
        level, brk, handlers = self._route(record.name)
        if record.levelno >= level:
            for handler in handlers:
                handler.handle(record)
        if brk is not None and record.levelno >= brk:
            raise LogBreakError(
                f"log message at {record.levelname} reached break_level: {record.getMessage()}"
            )
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does the work
        self.handle(record)

    def close(self) -> None:
        for section in self.sections:
            for handler in section.handlers:
                handler.close()
        super().close()


def get_logger(*parts: str) -> logging.Logger:
    """The ``stpipe.<part>.<part>`` logger (``get_logger("Detector1Pipeline", "jump")``)."""
    return logging.getLogger(".".join((ROOT, *[p for p in parts if p])))


def find_logcfg(logcfg: str | os.PathLike | None = None) -> Path | None:
    """The log configuration file to use, following the stpipe lookup order, or None."""
    if logcfg:
        path = Path(logcfg)
        if not path.is_file():
            raise InputFileError(f"log configuration file {str(path)!r} not found")
        return path
    for candidate in _SEARCH:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path.absolute()
    return None


def _level(value: str, where: str) -> int:
    level = logging.getLevelName(str(value).strip().upper())
    if not isinstance(level, int):
        raise JwstDaskError(f"{where}: unknown log level {value!r}")
    return level


def _handlers(spec: str | list, fmt: str, where: str) -> list[logging.Handler]:
    items = spec if isinstance(spec, list) else str(spec).split(",")
    out: list[logging.Handler] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        if item in ("stderr", "stdout"):
            handler: logging.Handler = _StreamHandler(item)
        elif item.startswith(("file:", "append:")):
            kind, _, name = item.partition(":")
            try:
                handler = logging.FileHandler(name.strip(), mode="w" if kind == "file" else "a")
            except OSError as exc:
                raise InputFileError(f"{where}: cannot open log file {name.strip()!r}: {exc}") from None
        else:
            raise JwstDaskError(
                f"{where}: unknown log handler {item!r} (stderr, stdout, file:<path> or append:<path>)"
            )
        handler.setFormatter(logging.Formatter(fmt))
        out.append(handler)
    return out


def _remove_dispatchers() -> None:
    old: list[_Dispatcher] = []
    for name in _TREES:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, _Dispatcher):
                logger.removeHandler(handler)
                if handler not in old:
                    old.append(handler)
    for handler in old:
        handler.close()


def configure(logcfg: str | os.PathLike | None = None, *, verbose: bool = False) -> Path | None:
    """Configure the ``stpipe`` loggers from a log configuration file (lookup order in the module
    docs), or the default (INFO to stderr). ``verbose`` lowers every level to DEBUG. Returns the
    file used, if any. Calling it again replaces the previous configuration.
    """
    global _configured
    from configobj import ConfigObj, ConfigObjError

    path = find_logcfg(logcfg)
    raw: dict[str, dict] = {"*": {}}
    if path is not None:
        try:
            cfg = ConfigObj(str(path), interpolation=False)
        except ConfigObjError as exc:
            raise InputFileError(f"log configuration file {str(path)!r} is not readable: {exc}") from None
        raw = {name: dict(cfg[name]) for name in cfg.sections} or {"*": {}}
    sections = []
    for pattern, opts in raw.items():
        where = f"log configuration [{pattern}]"
        level = _level(opts.get("level", "INFO"), where)
        brk = _level(opts["break_level"], where) if "break_level" in opts else None
        fmt = opts.get("format", DEFAULT_FORMAT)
        handlers = _handlers(opts.get("handler", "stderr"), fmt, where)
        sections.append(_Section(pattern, logging.DEBUG if verbose else level, brk, handlers))
    _remove_dispatchers()
    dispatcher = _Dispatcher(sections)
    lowest = min(s.level for s in sections)
    for name in _TREES:
        logger = logging.getLogger(name)
        logger.setLevel(lowest)
        logger.propagate = False
        logger.addHandler(dispatcher)
    _configured = True
    return path


def ensure_configured() -> None:
    """Apply the default configuration (or a stpipe-log.cfg found) once, unless already configured."""
    if not _configured:
        configure()
