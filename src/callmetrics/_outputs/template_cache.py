"""The report templates' compiled code, kept between processes in a per-user cache.

Jinja2 compiles a template from its source to Python code each process: a tenth of
a second or more for the report's, most of the cost of a report written at a
program's exit.  ``TemplateCache`` keeps that code (Jinja2's own bytecode cache
interface) in ``callmetrics/templates`` under the user's cache directory
(``$XDG_CACHE_HOME``, else ``~/.cache``; ``%LOCALAPPDATA%`` on Windows).

What it reads is checked before it is used: an entry's name covers the template's
name and file, the versions of Python, Jinja2 and callmetrics and the environment's
syntax options; Jinja2 checks the entry's magic (its format and Python version) and
the template source's checksum; and the cache checks a SHA-256 of the whole entry
first, so a truncated or damaged file is compiled afresh (and rewritten).  The cache
is used only in a directory the user owns that nobody else can write to.  A cache
that cannot be read or written is skipped: the report is then compiled as without
it, never failed.  Cached code is the very code compiled from the source, so the
report is the same byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path

import jinja2
from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket

from callmetrics._version import __version__

__all__ = ["TemplateCache", "user_cache_dir"]

_logger = logging.getLogger("callmetrics")

_DIGEST = hashlib.sha256().digest_size
# Names of entries: <key>.j2c; temporary files being written start with a dot.
_SUFFIX = ".j2c"


def user_cache_dir() -> Path | None:
    """The directory for the compiled templates (None when there is no home to put it in)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "")
        root = Path(base) if base and Path(base).is_absolute() else None
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        root = Path(xdg) if xdg and Path(xdg).is_absolute() else None  # XDG: relative = unset
        if root is None:
            try:
                root = Path.home() / ".cache"
            except (RuntimeError, KeyError):  # no home directory to be found
                return None
    if root is None:
        return None
    return root / "callmetrics" / "templates"


def _jinja_version() -> str:
    found = getattr(jinja2, "__version__", None)
    if isinstance(found, str):
        return found
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415  # rare

    try:
        return version("jinja2")
    except PackageNotFoundError:  # pragma: no cover  # jinja2 is imported, so installed
        return "unknown"


def _settings(environment: Environment) -> str:
    """What of ``environment`` shapes the compiled code besides the source."""
    return repr((
        environment.block_start_string, environment.block_end_string,
        environment.variable_start_string, environment.variable_end_string,
        environment.comment_start_string, environment.comment_end_string,
        environment.line_statement_prefix, environment.line_comment_prefix,
        environment.trim_blocks, environment.lstrip_blocks, environment.newline_sequence,
        environment.keep_trailing_newline, environment.optimized, environment.autoescape,
        environment.is_async, sorted(environment.extensions),
    ))


class TemplateCache(BytecodeCache):
    """Jinja2's bytecode cache in ``directory``, checked on read, never failing the caller."""

    def __init__(self, directory: Path | None) -> None:
        """Cache in ``directory`` (created when missing); None caches nothing."""
        self.directory = directory
        self._usable: bool | None = None  # decided at first use
        self._prefix = "|".join((sys.version, sys.implementation.cache_tag or "",
                                 _jinja_version(), __version__))

    def get_bucket(self, environment: Environment, name: str, filename: str | None,
                   source: str) -> Bucket:
        """Jinja2's bucket, under a key that also covers the versions and ``environment``.

        Anything going wrong gives an empty bucket (the template is compiled) that is
        not written back.
        """
        try:
            key = hashlib.sha256("|".join((
                self._prefix, _settings(environment), name, filename or "")).encode(
                    "utf-8", "backslashreplace")).hexdigest()
            bucket = Bucket(environment, key, self.get_source_checksum(source))
        except Exception as exc:  # noqa: BLE001  # the cache must never fail the report
            _logger.debug("callmetrics: template cache skipped: %s", exc)
            return Bucket(environment, "", "")
        self.load_bytecode(bucket)
        return bucket

    def _ready(self) -> Path | None:
        """The directory, if it is ours alone (made private when missing), else None."""
        if self._usable is None:
            self._usable = self._check()
        return self.directory if self._usable else None

    def _check(self) -> bool:
        if self.directory is None:
            return False
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.lstat()
        except OSError as exc:
            _logger.debug("callmetrics: no template cache in %s: %s", self.directory, exc)
            return False
        if not stat.S_ISDIR(info.st_mode):
            return False
        getuid = getattr(os, "getuid", None)
        if getuid is not None and (info.st_uid != getuid() or info.st_mode & 0o022):
            _logger.debug("callmetrics: no template cache in %s: not the user's alone",
                          self.directory)
            return False
        return True

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill ``bucket`` from its entry when the entry is whole and matches; else leave it."""
        directory = self._ready()
        if directory is None or not bucket.key:
            return
        try:
            data = (directory / f"{bucket.key}{_SUFFIX}").read_bytes()
        except OSError:  # not cached yet (or unreadable): compile
            return
        digest, payload = data[:_DIGEST], data[_DIGEST:]
        if len(data) <= _DIGEST or hashlib.sha256(payload).digest() != digest:
            return  # damaged: compiled afresh and written again
        try:
            bucket.bytecode_from_string(payload)  # checks Jinja2's magic and the source checksum
        except Exception:  # noqa: BLE001  # whatever a bad entry raises, compile instead
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Write ``bucket``'s code to its entry (atomically); skip quietly when that fails."""
        directory = self._ready()
        if directory is None or not bucket.key:
            return
        try:
            payload = bucket.bytecode_to_string()
            fd, temp = tempfile.mkstemp(prefix=".", suffix=_SUFFIX, dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(hashlib.sha256(payload).digest() + payload)
                Path(temp).replace(directory / f"{bucket.key}{_SUFFIX}")
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except Exception as exc:  # noqa: BLE001  # a cache that cannot be written is skipped
            _logger.debug("callmetrics: template cache not written in %s: %s", directory, exc)

    def clear(self) -> None:
        """Remove every entry of the cache."""
        directory = self._ready()
        if directory is None:
            return
        for entry in directory.glob(f"*{_SUFFIX}"):
            entry.unlink(missing_ok=True)
