"""What the frame pipeline keeps on disk: masks already paid for, and finished outputs.

Under ``cache_dir/<job key>/``:

* ``masks/chunk-<first index>.npz``: one per :meth:`FrameMatter.matte` call,
  the frame indices and their masks (zlib-compressed), written atomically;
* ``request.json``: the job as submitted (a bytes source is kept as
  ``source.bin``), so any backend instance, in any process, can pick up a job
  it did not start: polling it resumes it from its kept masks;
* ``output.<ext>`` (or ``output/`` for PNG) and ``done.json``: the finished
  result and what it is, so any later process can poll and download it;
* ``ended.json``: a job that failed or was cancelled (a new submit clears it).

:func:`prune` keeps the folder from growing: finished outputs go a day after
they were made (long enough to download them after a crash), kept masks of
unfinished jobs after a week (long enough to resume without paying again).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmatte._models import OutputFormat

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FINISHED_TTL", "PARTIAL_TTL", "JobStore", "default_cache_dir", "prune"]

FINISHED_TTL = 24 * 3600.0
"""Seconds a finished output stays in the cache."""
PARTIAL_TTL = 7 * 24 * 3600.0
"""Seconds the kept masks of an unfinished job stay in the cache."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_SUFFIX = {
    OutputFormat.WEBM: ".webm",
    OutputFormat.MOV: ".mov",
    OutputFormat.MP4: ".mp4",
    OutputFormat.MATTE: ".mp4",
    OutputFormat.ZIP: ".zip",
    OutputFormat.PNG: "",
}


def default_cache_dir() -> Path:
    """The user cache folder for frame jobs (used when the context gives none)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vidmatte")) / "frames"


def _folder_name(key: str) -> str:
    safe = _SAFE.sub("_", key)[:80]
    # The hash keeps two keys that sanitise alike apart.
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class JobStore:
    """The on-disk state of one frame job."""

    def __init__(self, root: Path, key: str) -> None:
        self.dir = root / _folder_name(key)
        self.masks_dir = self.dir / "masks"
        self._chunks: dict[int, Path] = {}
        self._loaded: tuple[Path, dict[int, NDArray[np.uint8]]] | None = None

    # masks -------------------------------------------------------------------------------

    def open(self) -> int:
        """Create the folders and index the masks kept from an earlier run; returns how many."""
        import numpy as np

        self.masks_dir.mkdir(parents=True, exist_ok=True)
        for chunk in sorted(self.masks_dir.glob("chunk-*.npz")):
            try:
                with np.load(chunk) as data:
                    indices = data["indices"]
            except (OSError, ValueError, KeyError, zlib.error):
                chunk.unlink(missing_ok=True)  # a torn write from a crash: those frames are redone
                continue
            for index in indices.tolist():
                self._chunks[int(index)] = chunk
        return len(self._chunks)

    def has_mask(self, index: int) -> bool:
        """True when frame ``index``'s mask was kept."""
        return index in self._chunks

    def mask(self, index: int) -> NDArray[np.uint8]:
        """The kept mask of frame ``index`` (one chunk decoded at a time)."""
        import numpy as np

        chunk = self._chunks[index]
        if self._loaded is None or self._loaded[0] != chunk:
            with np.load(chunk) as data:
                indices = data["indices"].tolist()
                shapes = data["shapes"].tolist()
                raw = zlib.decompress(data["masks"].tobytes())
            masks: dict[int, NDArray[np.uint8]] = {}
            offset = 0
            for i, (h, w) in zip(indices, shapes, strict=True):
                masks[int(i)] = np.frombuffer(raw, np.uint8, h * w, offset).reshape(h, w)
                offset += h * w
            self._loaded = (chunk, masks)
        return self._loaded[1][index]

    def save_masks(self, indices: list[int], masks: list[NDArray[np.uint8]]) -> Path:
        """Keep the masks of one call (atomically: a crash leaves the old state or the new)."""
        import numpy as np

        path = self.masks_dir / f"chunk-{indices[0]:08d}.npz"
        tmp = path.with_suffix(".tmp.npz")
        packed = zlib.compress(b"".join(np.ascontiguousarray(m).tobytes() for m in masks), 1)
        with tmp.open("wb") as handle:
            np.savez(
                handle,
                indices=np.asarray(indices, np.int64),
                shapes=np.asarray([m.shape[:2] for m in masks], np.int64),
                masks=np.frombuffer(packed, np.uint8),
            )
        os.replace(tmp, path)
        for index in indices:
            self._chunks[index] = path
        return path

    @property
    def masks_kept(self) -> int:
        """How many frames have a kept mask."""
        return len(self._chunks)

    # outputs -----------------------------------------------------------------------------

    def output_path(self, format: OutputFormat) -> Path:
        """Where the finished output of ``format`` lives."""
        return self.dir / f"output{_SUFFIX[format]}"

    def mark_done(self, record: dict[str, Any]) -> None:
        """Record the finished output; the kept masks are no longer needed."""
        tmp = self.dir / "done.json.tmp"
        tmp.write_text(json.dumps(record, sort_keys=True))
        os.replace(tmp, self.dir / "done.json")
        shutil.rmtree(self.masks_dir, ignore_errors=True)
        self._chunks.clear()

    def _write_json(self, name: str, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        tmp.write_text(json.dumps(record, sort_keys=True))
        os.replace(tmp, self.dir / name)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def save_request(self, record: dict[str, Any]) -> None:
        """Keep the submitted job (so another instance can resume it); clears an earlier end."""
        self._write_json("request.json", record)
        (self.dir / "ended.json").unlink(missing_ok=True)

    def request(self) -> dict[str, Any] | None:
        """The submitted job, if any."""
        return self._read_json("request.json")

    def mark_ended(self, state: str, message: str | None = None, code: str | None = None) -> None:
        """Record that the job failed or was cancelled."""
        self._write_json("ended.json", {"state": state, "message": message, "code": code})

    def ended(self) -> dict[str, Any] | None:
        """How the job ended, when it failed or was cancelled."""
        return self._read_json("ended.json")

    def done(self) -> dict[str, Any] | None:
        """The finished-output record, when the output exists."""
        try:
            record = json.loads((self.dir / "done.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not Path(str(record.get("path", ""))).exists():
            return None
        return record


def prune(root: Path, *, now: float | None = None) -> int:
    """Delete job folders under ``root`` past their time (see the module docstring); returns how many."""
    import time

    now = time.time() if now is None else now
    removed = 0
    try:
        folders = [f for f in root.iterdir() if (f / "masks").is_dir() or (f / "done.json").is_file()]
    except OSError:
        return 0
    for folder in folders:
        done = folder / "done.json"
        try:
            if done.exists():
                expired = now - done.stat().st_mtime > FINISHED_TTL
            else:
                expired = now - folder.stat().st_mtime > PARTIAL_TTL
        except OSError:
            continue
        if expired:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
