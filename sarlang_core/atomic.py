"""Files written whole or not at all: the data goes to a temporary file in the target's folder,
is flushed to disk, and is renamed over the target in one step, so a crash or a kill leaves
either the old file or the new one, never a half-written one.

Temporaries are named ``.<target name>.sarlang-tmp-<host>-<pid>-<token>`` (plus whatever
suffix a writer adds, e.g. GDAL's ``.aux.xml``): a run removes its own on any error, and
:func:`clean_stale_temps` removes those left by runs of this host that were killed (their PID
is gone). They are created like a plain ``open()`` would create the target (0666 minus the
umask), so the renamed output is as readable as any other file the user writes; mkstemp's
owner-only 0600 would lock colleagues on a shared drive out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Iterator, List, Union

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

TEMP_MARK = ".sarlang-tmp-"
_TEMP_RE = re.compile(r"^\..+\.sarlang-tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}(\..*)?$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname() or "host")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def clean_stale_temps(folder: PathLike) -> List[str]:
    """Remove temporaries in ``folder`` left by killed runs on this host; return what was removed.
    Temporaries of live processes and of other hosts (a shared drive) are left alone."""
    removed: List[str] = []
    host = _host()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if not m or m["host"] != host or pid_alive(int(m["pid"])):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the stale temporary file %s: %s", name, exc)
    if removed:
        log.info("removed %d temporary file(s) left by killed runs in %s", len(removed), folder)
    return removed


def create_temp(target: PathLike, suffix: str = "") -> Path:
    """Create (exclusively) an empty temporary file beside ``target`` with plain-open()
    permissions, after cleaning stale ones. ``suffix`` (e.g. ``.png``) is for writers that pick
    the format from the name."""
    target = Path(target)
    clean_stale_temps(target.parent)
    for _ in range(100):
        token = secrets.token_hex(4)
        tmp = target.with_name(f".{target.name}{TEMP_MARK}{_host()}-{os.getpid()}-{token}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot find a free temporary name beside {target}")


def plain_permissions(folder: PathLike) -> None:
    """Give every file under ``folder`` the permissions a plain open() would (0666 minus the
    umask): some writers (safetensors) create theirs owner-only, which locks colleagues on a
    shared drive out of an adapter or a model."""
    folder = Path(folder)
    probe = create_temp(folder / "permissions")
    try:
        mode = probe.stat().st_mode & 0o777
    finally:
        remove_temp(probe)
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.stat().st_mode & 0o777 != mode:
            try:
                os.chmod(p, mode)
            except OSError as exc:
                log.warning("cannot set the permissions of %s: %s", p, exc)


def remove_temp(tmp: PathLike) -> None:
    """Remove a temporary file and what writers add beside it (GDAL's .aux.xml and .ovr)."""
    for p in (Path(tmp), Path(f"{tmp}.aux.xml"), Path(f"{tmp}.ovr")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the temporary file %s: %s", p, exc)


def fsync_path(path: PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(target: PathLike) -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` write ``tmp`` whole; on a clean exit it is flushed
    to disk and renamed to ``path``; on any error (or KeyboardInterrupt) it is removed."""
    target = Path(target)
    tmp = create_temp(target)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        remove_temp(tmp)
        raise


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
    return path


def write_text_atomic(path: PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


_STAGED_RE = re.compile(r"^\..+\.sarlang-(?P<kind>[a-z]+)-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _clean_stale_folders(parent: Path, kind: str) -> None:
    """Remove half-built folders of ``kind`` left in ``parent`` by killed runs of this host."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = _STAGED_RE.match(name)
        if m and m["kind"] == kind and m["host"] == _host() and not pid_alive(int(m["pid"])):
            shutil.rmtree(parent / name, ignore_errors=True)


def check_new_folder(out: Path) -> None:
    """FileExistsError unless ``out`` is missing or an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else "a folder that is not empty"
        raise FileExistsError(f"{out}: is {what}; choose a new folder (nothing was written)")


@contextlib.contextmanager
def staged_folder(out: PathLike, kind: str) -> Iterator[Path]:
    """``with staged_folder(out, "export") as tmp:`` build a whole folder in ``tmp`` (a hidden
    sibling of ``out``); on a clean exit its files get plain permissions and it is renamed to
    ``out`` (which must be missing or empty, before and after); on any error it is removed.
    FileExistsError when ``out`` is taken, OSError when its parent cannot be made."""
    out = Path(out).expanduser().absolute()
    check_new_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_folders(out.parent, kind)
    tmp = out.parent / f".{out.name}.sarlang-{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        plain_permissions(tmp)
        check_new_folder(out)      # taken while we worked? then keep it as it is
        os.replace(tmp, out)       # an empty ``out`` is replaced whole, in one step
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
