"""Each bucket fault of the proxy, met by the real gs:// client (gcsfs against the emulator).

What the fault suite relies on: a 503, a reset, a stall and a lost upload response each end in
one whole object with the right bytes, through gcsfs's retries and the bucket's read timeout,
and a lost response really is an upload that took effect.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.lake.bucket import GCS_READ_TIMEOUT_SECONDS, Bucket
from tests.faults.gcs_bucket import GcsBucket
from tests.faults.gcs_fault_proxy import MODES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsBucket]:
    bucket = GcsBucket(tmp_path_factory.mktemp("gcs-faults"), seed=7)
    bucket.start()
    yield bucket
    bucket.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_fault_ends_in_one_whole_object(gcs: GcsBucket, mode: str, tmp_path: Path) -> None:
    via_proxy = Bucket.open(gcs.url(tmp_path.name), gcs.service_endpoint)
    direct = Bucket.open(gcs.url(tmp_path.name), gcs.check_endpoint)
    data = mode.encode() * 1000
    before = gcs.stats()["counts"].get(mode, 0)

    gcs.fault(mode, fraction=1.0, seconds=2.0)  # every request fails until the retries outlast it
    started = time.monotonic()
    url = via_proxy.write_atomic(f"zone/{mode}.jsonl", data)
    took = time.monotonic() - started

    assert gcs.stats()["counts"].get(mode, 0) > before
    assert direct.read_bytes(url) == data
    assert direct.glob("zone/*.jsonl") == [url]
    if mode == "stall":  # the client gave up on the held request after its read timeout
        assert GCS_READ_TIMEOUT_SECONDS <= took < GCS_READ_TIMEOUT_SECONDS + 20
    via_proxy.delete(url)  # a delete after a lost response: the retry's 404 is fine
    assert direct.glob("zone/*.jsonl") == []


@pytest.mark.timeout(60)
def test_lost_response_upload_took_effect(gcs: GcsBucket, tmp_path: Path) -> None:
    """The proxy's lost response is an upload the emulator applied, answered by a reset."""
    key = f"{tmp_path.name}/zone/lost.jsonl"
    upload = urllib.request.Request(
        f"{gcs.service_endpoint}/upload/storage/v1/b/headrace/o?uploadType=media&"
        + urllib.parse.urlencode({"name": key}),
        data=b"it arrived",
        headers={"Content-Type": "application/octet-stream"},
    )
    gcs.fault("lost_response", fraction=1.0, seconds=30)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            urllib.request.urlopen(upload, timeout=10)
    finally:
        gcs.fault("pass", fraction=0.0, seconds=0)
    direct = Bucket.open(gcs.url(tmp_path.name), gcs.check_endpoint)
    assert direct.read_bytes(direct.url("zone/lost.jsonl")) == b"it arrived"
