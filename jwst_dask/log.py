"""Logging as the official pipeline does it: ``stpipe.*`` loggers and the stpipe log configuration file.

Steps and pipelines log to ``stpipe.<Pipeline>.<step>`` (``stpipe.<StepClass>`` when a step runs on
its own), so existing log filters keep working. Lines look like::

    2024-01-01 12:00:00,057 - stpipe.Detector1Pipeline.jump - INFO - Step jump running with args ...

The configuration file is the stpipe one: INI sections named after loggers (``[*]`` for all), each
with ``handler`` (``stderr``, ``stdout``, ``file:<path>``, comma separated), ``level``,
``break_level`` (a record at or above it raises :class:`LogBreakError`) and ``format``. It is looked
up in this order: the ``--logcfg`` option / ``logcfg=`` argument, ``./stpipe-log.cfg``,
``~/stpipe-log.cfg``. Without one: INFO and above to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
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
#: loggers configured by a ``[*]`` section: the stpipe tree and the package's own modules.
_ALL = (ROOT, "jwst_dask")
_MARK = "_jwst_dask_handler"
_configured = False


class LogBreakError(JwstDaskError):
    """A log record reached the configured ``break_level``."""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (so redirections and test captures work)."""

    def __init__(self, name: str = "stderr"):
        super().__init__()
        self._which = name

    @property
    def stream(self):
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; ignore
        pass


class _BreakFilter(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            raise LogBreakError(
                f"log message at {record.levelname} reached break_level: {record.getMessage()}"
            )
        return True


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
    for candidate in (Path.cwd() / "stpipe-log.cfg", Path.home() / "stpipe-log.cfg"):
        if candidate.is_file():
            return candidate
    return None


def _level(value: str, where: str) -> int:
    level = logging.getLevelName(str(value).strip().upper())
    if not isinstance(level, int):
        raise JwstDaskError(f"{where}: unknown log level {value!r}")
    return level


def _handlers(spec: str, fmt: str, where: str) -> list[logging.Handler]:
    out: list[logging.Handler] = []
    for item in (s.strip() for s in str(spec).split(",")):
        if not item:
            continue
        if item in ("stderr", "stdout"):
            handler: logging.Handler = _StderrHandler(item)
        elif item.startswith("file:"):
            handler = logging.FileHandler(item[len("file:") :].strip(), mode="a")
        else:
            raise JwstDaskError(f"{where}: unknown log handler {item!r} (stderr, stdout or file:<path>)")
        handler.setFormatter(logging.Formatter(fmt))
        setattr(handler, _MARK, True)
        out.append(handler)
    return out


def _reset(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if getattr(handler, _MARK, False):
            logger.removeHandler(handler)
            if isinstance(handler, logging.FileHandler):
                handler.close()


def configure(logcfg: str | os.PathLike | None = None, *, verbose: bool = False) -> Path | None:
    """Configure the ``stpipe`` loggers from a log configuration file (lookup order in the module
    docs), or the default (INFO to stderr; DEBUG when ``verbose``). Returns the file used, if any.

    Calling it again replaces the previous configuration.
    """
    global _configured
    from configobj import ConfigObj, ConfigObjError

    path = find_logcfg(logcfg)
    sections: dict[str, dict] = {"*": {}}
    if path is not None:
        try:
            cfg = ConfigObj(str(path), interpolation=False)
        except ConfigObjError as exc:
            raise InputFileError(f"log configuration file {str(path)!r} is not readable: {exc}") from None
        sections = {name: dict(cfg[name]) for name in cfg.sections} or {"*": {}}
    for name in _ALL:
        _reset(logging.getLogger(name))
    for section, opts in sections.items():
        where = f"log configuration [{section}]"
        names = _ALL if section == "*" else (section,)
        fmt = opts.get("format", DEFAULT_FORMAT)
        level = _level(opts.get("level", "DEBUG" if verbose else "INFO"), where)
        if verbose:
            level = min(level, logging.DEBUG)
        for name in names:
            logger = logging.getLogger(name)
            _reset(logger)
            logger.setLevel(level)
            logger.propagate = False
            for handler in _handlers(opts.get("handler", "stderr"), fmt, where):
                if "break_level" in opts:  # on the handler, so records from child loggers are seen
                    handler.addFilter(_BreakFilter(_level(opts["break_level"], where)))
                logger.addHandler(handler)
    _configured = True
    return path


def ensure_configured() -> None:
    """Apply the default configuration (or ./stpipe-log.cfg) once, unless already configured."""
    if not _configured:
        configure()
