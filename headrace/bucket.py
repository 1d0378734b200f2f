"""The bucket: a local folder by default, or gs:// through gcsfs, behind one fsspec interface."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from headrace.settings import resolve_local

# gcsfs 2026.x stalls ~60 s per bucket lookup on a gRPC call unless this is off (FACTS.md);
# it must be set before gcsfs is imported, and real GCS works without it too.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


@dataclass
class Bucket:
    """A bucket root and the filesystem that reaches it. Paths below are relative to the root."""

    fs: Any
    root: str
    is_local: bool

    @classmethod
    def open(cls, url: str, gcs_endpoint: str | None = None) -> Bucket:
        if url.startswith("gs://"):
            import gcsfs

            options: dict[str, Any] = {}
            if gcs_endpoint:
                options = {"endpoint_url": gcs_endpoint, "token": "anon"}
            return cls(gcsfs.GCSFileSystem(**options), url.rstrip("/"), is_local=False)
        root = resolve_local(url)
        Path(root).mkdir(parents=True, exist_ok=True)
        return cls(fsspec.filesystem("file"), root, is_local=True)

    def url(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def write_atomic(self, relative: str, data: bytes) -> str:
        """Write a whole object so readers see all of it or none of it; return its URL.

        A GCS object appears only when its upload completes. A local file is written under a
        temporary name, fsynced, then renamed over the final name.
        """
        target = self.url(relative)
        if not self.is_local:
            self.fs.pipe_file(target, data)
            return target
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return target

    def glob(self, pattern: str) -> list[str]:
        found = self.fs.glob(self.url(pattern))
        prefix = "gs://" if not self.is_local else ""
        return sorted(f"{prefix}{p}" if not p.startswith(prefix) else p for p in found)

    def delete(self, url: str) -> None:
        """Remove an object or file; one already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(url)

    def read_bytes(self, url: str) -> bytes:
        data = self.fs.cat_file(url)
        assert isinstance(data, bytes)
        return data
