"""The bucket: a local folder by default, or gs:// through gcsfs, behind one fsspec interface."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from headrace.settings import resolve_local

# gcsfs 2026.x stalls ~60 s per bucket lookup on a gRPC call unless this is off (FACTS.md);
# it must be set before gcsfs is imported, and real GCS works without it too.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

# Per-request limits for gs://. gcsfs passes no timeout of its own to aiohttp (its default
# `requests_timeout=None` means none at all), so a stalled connection would hang a service until
# its watchdog. With these, a stall fails the request (a retriable aiohttp error) and gcsfs's own
# retries (6 attempts, exponential backoff) take over, as for a 503 or a reset. `sock_read`
# starts once the request body is sent, so it bounds the server's silence, never an upload's
# length; there is no total limit for the same reason. Every retried call is safe: uploads
# write a whole object under the same name with the same bytes, a retried delete that already
# happened reads 404 (ignored by `delete`), reads have no effect.
GCS_CONNECT_TIMEOUT_SECONDS = 10.0
GCS_READ_TIMEOUT_SECONDS = 10.0
# Metadata of this many write-once objects is remembered per process (see `_gcs_filesystem`).
IMMUTABLE_INFO_ENTRIES = 100_000
WRITE_ONCE_SUFFIXES = (".parquet", ".jsonl")


@functools.cache
def _gcs_filesystem() -> type[Any]:
    """gcsfs's filesystem, remembering the metadata of write-once objects once seen.

    DuckDB asks a registered filesystem for a file's metadata several times per file it reads
    (exists, size, last modified, open), and each gcsfs `info` is two requests or more (the
    object and a listing, in case it is a folder): measured on the emulator, 16 requests per
    Parquet file and 36 per JSON-lines file, so a summary refresh over 250 files took 14 s and
    counting 180 raw-zone files 20 s (more on real GCS). Two kinds of objects are never
    rewritten with other bytes, so their metadata is kept: DuckLake's data files (`.parquet`, a
    new UUID name for every write) and the zone files (`.jsonl`, named by writer and offset
    range, so a rewrite after a rewind holds the same lines). A zone file may be deleted (an
    uncommitted batch's); readers find zone files by listing, which is never cached, so a kept
    entry is only asked for while the object is listed. Our own deletes drop the entry.
    """
    import gcsfs

    class GcsFileSystem(gcsfs.GCSFileSystem):
        async def _info(self, path: str, generation: Any = None, **kwargs: Any) -> Any:
            key = self._strip_protocol(path)
            memo: OrderedDict[str, Any] = self.__dict__.setdefault("_immutable", OrderedDict())
            if generation is None and key in memo:
                return memo[key]
            out = await super()._info(path, generation=generation, **kwargs)
            if key.endswith(WRITE_ONCE_SUFFIXES) and out.get("type") == "file":
                memo[key] = out
                if len(memo) > IMMUTABLE_INFO_ENTRIES:
                    memo.popitem(last=False)
            return out

        def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
            # gcsfs 2026.x reads through its "adaptive" cache by default, whose background
            # prefetch tasks are left pending whenever DuckDB closes a file before its end
            # ("Task was destroyed but it is pending!", thousands per minute in the logs);
            # readahead, gcsfs's default before, prefetches nothing in the background.
            kwargs.setdefault("cache_type", "readahead")
            return super()._open(path, mode, **kwargs)

        async def _rm_file(self, path: str, **kwargs: Any) -> Any:
            self.__dict__.get("_immutable", {}).pop(self._strip_protocol(path), None)
            return await super()._rm_file(path, **kwargs)

    return GcsFileSystem


@dataclass
class Bucket:
    """A bucket root and the filesystem that reaches it. Paths below are relative to the root."""

    fs: Any
    root: str
    is_local: bool

    @classmethod
    def open(cls, url: str, gcs_endpoint: str | None = None) -> Bucket:
        if url.startswith("gs://"):
            from aiohttp import ClientTimeout

            options: dict[str, Any] = {
                "requests_timeout": ClientTimeout(
                    total=None,
                    sock_connect=GCS_CONNECT_TIMEOUT_SECONDS,
                    sock_read=GCS_READ_TIMEOUT_SECONDS,
                )
            }
            if gcs_endpoint:
                options |= {"endpoint_url": gcs_endpoint, "token": "anon"}
            return cls(_gcs_filesystem()(**options), url.rstrip("/"), is_local=False)
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
