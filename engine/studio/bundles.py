"""Bundle files in and out: which names a bundle may hold, reading a folder or a .zip safely,
and writing a .zip.

A bundle is `{name: text}` with names like `processes/case_review.bpmn`,
`processes/threshold.dmn`, `processes/letters/closure.txt` and `forms/follow_up.json`.
Archives come from process owners' machines, so reading one refuses absolute paths, `..`,
symlinks, anything outside processes/ and forms/, too many files and too many bytes
(compressed size is not trusted: members are read in bounded chunks).
"""
from __future__ import annotations

import io
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InvalidData

NAME_PATTERNS = (
    re.compile(r"processes/[A-Za-z0-9][A-Za-z0-9_.-]*\.(?:bpmn|dmn)"),
    re.compile(r"processes/letters/[a-z0-9_]+\.txt"),  # template names as scripts write them
    re.compile(r"forms/[A-Za-z0-9][A-Za-z0-9_.-]*\.json"),
)
FOLDERS = ("processes/", "processes/letters/", "forms/")
MAX_FILES = 200
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a bundle file, or None."""
    if not isinstance(name, str) or not name:
        return "a file needs a name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or "\\" in name:
        return f"{name}: absolute or Windows paths are not allowed"
    if ".." in PurePosixPath(name).parts:
        return f"{name}: '..' is not allowed in a path"
    if not any(pattern.fullmatch(name) for pattern in NAME_PATTERNS):
        return (f"{name}: not a bundle file; allowed are processes/*.bpmn, processes/*.dmn, "
                "processes/letters/*.txt (lower-case names) and forms/*.json")
    return None


def check_files(files: dict[str, str]) -> None:
    """Raise InvalidData unless every name is allowed and the sizes are within limits."""
    problems = [{"field": name, "message": message} for name in files if (message := name_problem(name))]
    if len(files) > MAX_FILES:
        problems.append({"field": "(bundle)", "message": f"{len(files)} files; at most {MAX_FILES}"})
    total = 0
    for name, text in files.items():
        if not isinstance(text, str):
            problems.append({"field": name, "message": "must be text"})
            continue
        size = len(text.encode("utf-8"))
        total += size
        if size > MAX_FILE_BYTES:
            problems.append({"field": name, "message": f"{size:,} bytes; at most {MAX_FILE_BYTES:,} a file"})
    if total > MAX_TOTAL_BYTES:
        problems.append({"field": "(bundle)", "message": f"{total:,} bytes in all; at most {MAX_TOTAL_BYTES:,}"})
    if not any(name.endswith(".bpmn") for name in files):
        problems.append({"field": "(bundle)", "message": "no BPMN file in processes/"})
    if problems:
        raise InvalidData(problems, "The bundle cannot be used")


def read_bundle(path: str | Path) -> dict[str, str]:
    """A folder laid out like processes/ + forms/, or a .zip of one."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if path.is_file():
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise _refused(str(path), f"the archive is larger than {MAX_ARCHIVE_BYTES:,} bytes")
        return read_zip(path.read_bytes())
    from ..errors import NotFound

    raise NotFound(f"there is no folder or .zip at {path}")


def read_folder(root: Path) -> dict[str, str]:
    """The bundle files under root/processes and root/forms (other files of the folder, such as
    Python package markers, are not part of a bundle and are left alone). Symlinks are refused."""
    files: dict[str, str] = {}
    problems = []
    for folder in ("processes", "forms"):
        base = root / folder
        if base.is_symlink():
            problems.append({"field": folder, "message": "a symlink is not allowed"})
            continue
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_symlink():
                problems.append({"field": name, "message": "a symlink is not allowed"})
            elif path.is_file() and any(p.fullmatch(name) for p in NAME_PATTERNS):
                if path.stat().st_size > MAX_FILE_BYTES:
                    problems.append({"field": name, "message": f"larger than {MAX_FILE_BYTES:,} bytes"})
                    continue
                files[name] = _decode(name, path.read_bytes(), problems)
    if problems:
        raise InvalidData(problems, "The bundle cannot be used")
    check_files(files)
    return files


def read_zip(data: bytes) -> dict[str, str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _refused("(archive)", f"not a zip file: {exc}") from None
    problems: list[dict] = []
    files: dict[str, str] = {}
    members = archive.infolist()
    if len(members) > MAX_FILES + len(FOLDERS):
        raise _refused("(archive)", f"{len(members)} entries; at most {MAX_FILES}")
    total = 0
    with archive:
        for member in members:
            name = member.filename
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                problems.append({"field": name, "message": "a symlink is not allowed"})
                continue
            if member.is_dir():
                if name.rstrip("/") + "/" not in FOLDERS:
                    problems.append({"field": name, "message": "folders other than processes/, "
                                                               "processes/letters/ and forms/ are not allowed"})
                continue
            message = name_problem(name)
            if message:
                problems.append({"field": name, "message": message})
                continue
            if name in files:
                problems.append({"field": name, "message": "appears twice in the archive"})
                continue
            if member.file_size > MAX_FILE_BYTES:
                problems.append({"field": name, "message": f"{member.file_size:,} bytes; at most {MAX_FILE_BYTES:,}"})
                continue
            content = _read_member(archive, member, min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - total))
            if content is None:
                problems.append({"field": name, "message": "expands beyond the size limit (a zip bomb?)"})
                break
            total += len(content)
            files[name] = _decode(name, content, problems)
    if problems:
        raise InvalidData(problems, "The archive cannot be used")
    check_files(files)
    return files


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes | None:
    """The member's bytes, or None once more than `limit` come out (whatever its header says)."""
    chunks, size = [], 0
    with archive.open(member) as stream:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)


def _decode(name: str, data: bytes, problems: list[dict]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append({"field": name, "message": "not UTF-8 text"})
        return ""


def _refused(field: str, message: str) -> InvalidData:
    return InvalidData([{"field": field, "message": message}], "The archive cannot be used")


def write_zip(files: dict[str, str]) -> bytes:
    """The bundle as a .zip laid out like the project (processes/, forms/), readable by read_zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # same bytes for the same bundle
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, files[name].encode("utf-8"))
    return buffer.getvalue()
