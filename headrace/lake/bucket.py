"""The bucket: a local folder by default, or gs:// through gcsfs, behind one fsspec interface."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from headrace.runtime.errors import (
    URL_SCHEME,
    OperatorError,
    folder_problem,
    one_line,
    os_reason,
)
from headrace.runtime.settings import resolve_local

# gcsfs 2026.x stalls ~60 s per bucket lookup on a gRPC call unless this is off (measured
# against the GCS emulator); it must be set before gcsfs is imported, and real GCS works
# without it too.
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

SUPPORTED_FORMS = "a local folder (/data/bucket, ./bucket) or gs://bucket/prefix"
# GCS bucket names: 3 to 63 lowercase letters, digits, '-', '_' and '.' (up to 222 with dots),
# beginning and ending with a letter or a digit.
GCS_BUCKET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{1,220})[a-z0-9]")
REAL_GCS = "https://storage.googleapis.com"
# How long the start-up check of a gs:// bucket keeps trying while GCS cannot be reached (an
# emulator or a network still coming up), like the wait for the broker (kafka_clients).
GCS_CHECK_SECONDS = 10.0
GCS_CHECK_PAUSE_SECONDS = 0.5
# The object a writer's start-up check writes and deletes at the bucket root.
WRITE_PROBE_PREFIX = ".headrace-write-check-"
# Buckets whose root this process has already listed (see `Bucket.check_readable`).
_READABLE: set[tuple[str, str | None]] = set()


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

    class GcsFileSystem(gcsfs.GCSFileSystem):  # type: ignore[misc]  # gcsfs is untyped (Any)
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


@functools.cache
def _gcs_check_filesystem() -> type[Any]:
    """gcsfs's filesystem making one attempt per request, for the start-up checks.

    gcsfs retries a failed request 6 times over about 30 s and logs a traceback when it gives
    up; a start-up check retries on its own, for GCS_CHECK_SECONDS, and reports the last error
    in one line.
    """
    import gcsfs

    request = gcsfs.GCSFileSystem._request
    single_attempt = getattr(request, "__wrapped__", request)

    class GcsCheckFileSystem(gcsfs.GCSFileSystem):  # type: ignore[misc]  # gcsfs is untyped
        _request = single_attempt

    return GcsCheckFileSystem


def _gcs_retriable(exc: BaseException) -> bool:
    """Whether a failed check request may succeed if tried again (unreachable, 5xx, timeout)."""
    from gcsfs.retry import is_retriable

    return isinstance(exc, TimeoutError) or bool(is_retriable(exc))


def _gcs_refused(exc: BaseException) -> bool:
    """Whether GCS (or the credentials) refused the request: fix the credentials."""
    import google.auth.exceptions

    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return True
    return getattr(exc, "code", None) in (401, 403) or str(exc).startswith("Forbidden")


@dataclass
class Bucket:
    """A bucket root and the filesystem that reaches it. Paths below are relative to the root."""

    fs: Any
    root: str
    is_local: bool
    gcs_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, url: str, gcs_endpoint: str | None = None) -> Bucket:
        """The bucket at `url`; an OperatorError names what to fix when it is unusable.

        The URL must be one of the supported forms, and a local root must exist or be created.
        The first open of a bucket in a process also lists its root (`check_readable`: for
        gs://, a request that finds bad credentials or an unreachable endpoint at start, not at
        the first read). Writing services also call `check_writable` at start.
        """
        bucket = cls._open_gcs(url, gcs_endpoint) if url.startswith("gs:") else cls._open_local(url)
        bucket.check_readable()
        return bucket

    @classmethod
    def _open_gcs(cls, url: str, gcs_endpoint: str | None) -> Bucket:
        name = url[len("gs://") :].split("/", 1)[0] if url.startswith("gs://") else ""
        if not GCS_BUCKET_NAME.fullmatch(name) or (len(name) > 63 and "." not in name):
            raise OperatorError(
                f"HEADRACE_BUCKET_URL={url!r} is not a valid bucket URL: "
                f"use {SUPPORTED_FORMS} (a GCS bucket name is 3-63 lowercase letters, digits, "
                "'-', '_' or '.')"
            )
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
        fs = _gcs_filesystem()(**options)
        return cls(fs, url.rstrip("/"), is_local=False, gcs_options=options)

    @classmethod
    def _open_local(cls, url: str) -> Bucket:
        if not url.strip():
            raise OperatorError(f"HEADRACE_BUCKET_URL is empty; set it to {SUPPORTED_FORMS}")
        if URL_SCHEME.match(url):
            raise OperatorError(
                f"HEADRACE_BUCKET_URL={url!r} is not supported: use {SUPPORTED_FORMS}"
            )
        root = resolve_local(url)
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OperatorError(
                f"the bucket folder {root} (HEADRACE_BUCKET_URL) cannot be created: "
                f"{folder_problem(Path(root), exc)}; set HEADRACE_BUCKET_URL to a folder this "
                "user can create and write, or to gs://bucket/prefix"
            ) from None
        return cls(fsspec.filesystem("file"), root, is_local=True)

    @property
    def gcs_bucket(self) -> str:
        return self.root[len("gs://") :].split("/", 1)[0]

    @property
    def gcs_endpoint(self) -> str:
        return str(self.gcs_options.get("endpoint_url") or REAL_GCS)

    def check_readable(self) -> None:
        """List the root (once per process and bucket): it must exist and be readable.

        Once per process, so a reconnect at run time (warehouse.Session) never turns a bucket
        outage into an operator error: failures at run time stay the retriable errors they are.
        """
        key = (self.root, self.gcs_options.get("endpoint_url"))
        if key in _READABLE:
            return
        if self.is_local:
            try:
                with os.scandir(self.root):
                    pass
            except OSError as exc:
                raise OperatorError(
                    f"the bucket folder {self.root} (HEADRACE_BUCKET_URL) cannot be read: "
                    f"{os_reason(exc)}; give this user access to it or set HEADRACE_BUCKET_URL "
                    "to another folder"
                ) from None
        else:
            bucket, _, prefix = self.root[len("gs://") :].partition("/")
            prefix = f"{prefix}/" if prefix else ""
            self._gcs_check(
                "list",
                lambda fs: fs.call(
                    "GET", "b/{}/o", bucket, prefix=prefix, maxResults=1, json_out=True
                ),
            )
        _READABLE.add(key)

    def check_writable(self) -> None:
        """Write and delete a small object at the root: a writing service finds out at start.

        A local probe goes the way every local write goes (`write_atomic`: a temporary file,
        fsync, rename), so a read-only folder, a missing permission or a full disk shows here.
        """
        self.check_readable()
        name = f"{WRITE_PROBE_PREFIX}{uuid.uuid4().hex}"
        target = self.url(name)
        if not self.is_local:

            def write_and_delete(fs: Any) -> None:
                fs.pipe_file(target, b"")
                with contextlib.suppress(FileNotFoundError):  # a retried delete that happened
                    fs.rm_file(target)

            self._gcs_check("write", write_and_delete)
            return
        try:
            self.write_atomic(name, b"")
            os.remove(target)
        except OSError as exc:
            raise OperatorError(
                f"the bucket folder {self.root} (HEADRACE_BUCKET_URL) is not writable: "
                f"{os_reason(exc)}; make it writable by this user or set HEADRACE_BUCKET_URL "
                "to another folder or to gs://bucket/prefix"
            ) from None

    def _gcs_check(self, action: str, request: Callable[[Any], object]) -> None:
        """Run `request` on a single-attempt filesystem, retrying only what may pass soon."""
        # Its own instance: a request timeout that bounds each attempt, the same credentials.
        checker = _gcs_check_filesystem()(
            **{**self.gcs_options, "token": "anon", "timeout": GCS_CHECK_SECONDS},
            skip_instance_cache=True,
        )
        checker.credentials = self.fs.credentials
        deadline = time.monotonic() + GCS_CHECK_SECONDS
        while True:
            try:
                request(checker)
                return
            except Exception as exc:  # any failure of the check is reported, in one line
                if _gcs_retriable(exc) and time.monotonic() < deadline:
                    time.sleep(GCS_CHECK_PAUSE_SECONDS)
                    continue
                raise OperatorError(self._gcs_problem(action, exc)) from None

    def _gcs_problem(self, action: str, exc: BaseException) -> str:
        reason = one_line(exc) if str(exc).strip() else f"no answer ({type(exc).__name__})"
        emulated = "endpoint_url" in self.gcs_options
        at = f"HEADRACE_GCS_ENDPOINT={self.gcs_endpoint}" if emulated else f"GCS, {REAL_GCS}"
        where = f"HEADRACE_BUCKET_URL={self.root}, {at}"
        if isinstance(exc, FileNotFoundError) and action == "list":
            return (
                f"the GCS bucket {self.gcs_bucket} does not exist ({where}); "
                "create it or fix HEADRACE_BUCKET_URL"
            )
        if _gcs_refused(exc):
            rights = "list" if action == "list" else "create and delete"
            fix = (
                "check HEADRACE_GCS_ENDPOINT (unset it for real GCS)"
                if emulated
                else "set GOOGLE_APPLICATION_CREDENTIALS (or the workload identity)"
            )
            return (
                f"GCS refused to {action} objects ({where}): {reason}; {fix} so that this "
                f"service may {rights} objects in bucket {self.gcs_bucket}"
            )
        if _gcs_retriable(exc):
            fix = (
                "check HEADRACE_GCS_ENDPOINT (unset it for real GCS)"
                if emulated
                else "check the network (HEADRACE_GCS_ENDPOINT is for an emulator)"
            )
            return f"cannot reach GCS within {GCS_CHECK_SECONDS:.0f}s ({where}): {reason}; {fix}"
        return (
            f"GCS rejected the {action} check ({where}): {reason}; check HEADRACE_BUCKET_URL "
            "and HEADRACE_GCS_ENDPOINT"
        )

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
