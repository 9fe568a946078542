"""Files land on S3 under their final key directly, and a store that fails mid-write leaves nothing there."""

from __future__ import annotations

from typing import Any

import pytest
import s3fs
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach
from airflow.sdk.io import store as airflow_store
from fsspec.asyn import sync_wrapper
from sharepoint_kit import SITE_URL, content_for
from store_kit import BUCKET

from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.landing import STORE_WRITE_BLOCK_BYTES
from airflow_provider_graphcert.sharepoint.manifest import MANIFEST_NAME
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph_state import Drive

FOLDER_URL = f"{SITE_URL}/Shared Documents/Exports"
BIG = 2 * STORE_WRITE_BLOCK_BYTES + 5  # three multipart parts


class S3ThatFailsOnPart(s3fs.S3FileSystem):  # type: ignore[misc]
    """s3fs whose connection drops on one multipart part: a store failing in the middle of a write."""

    fail_on_part = 2

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs.get("PartNumber") == self.fail_on_part:
            raise OSError("connection reset by the store")
        return await super()._call_s3(method, *args, **kwargs)

    call_s3 = sync_wrapper(_call_s3)


class S3ThatCountsCalls(s3fs.S3FileSystem):  # type: ignore[misc]
    """s3fs that remembers which S3 operations it called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: list[str] = []

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.methods.append(method)
        return await super()._call_s3(method, *args, **kwargs)

    call_s3 = sync_wrapper(_call_s3)


def _on(fs: s3fs.S3FileSystem, conn_id: str, prefix: str) -> ObjectStoragePath:
    airflow_store._STORE_CACHE.pop(f"s3-{conn_id}", None)
    attach(protocol="s3", conn_id=conn_id, fs=fs)
    return ObjectStoragePath(f"s3://{conn_id}@{BUCKET}/{prefix}")


def test_a_large_file_lands_on_s3_in_blocks_under_its_final_key_without_a_copy(
    sharepoint: SharePoint, documents: Drive, s3_fs: s3fs.S3FileSystem, tmp_path: Any
) -> None:
    data = content_for("big.bin", BIG)
    documents.put_file("Exports/big.bin", data)
    counting = S3ThatCountsCalls(
        key="testing", secret="testing", endpoint_url=s3_fs.endpoint_url, skip_instance_cache=True
    )
    target = _on(counting, "counting_store", tmp_path.name)
    assert sharepoint.download(target, url=FOLDER_URL)["downloaded"] == 1
    assert (target / "big.bin").read_bytes() == data
    assert sorted(p.name for p in target.iterdir()) == sorted(["big.bin", MANIFEST_NAME])
    assert counting.methods.count("upload_part") == 3
    assert "copy_object" not in counting.methods and "delete_object" not in counting.methods


def test_a_store_that_fails_mid_write_leaves_no_object_and_no_open_upload(
    sharepoint: SharePoint, documents: Drive, s3_fs: s3fs.S3FileSystem, tmp_path: Any
) -> None:
    documents.put_file("Exports/big.bin", content_for("big.bin", BIG))
    documents.put_file("Exports/small.csv", b"1,2\n")
    failing = S3ThatFailsOnPart(
        key="testing", secret="testing", endpoint_url=s3_fs.endpoint_url, skip_instance_cache=True
    )
    target = _on(failing, "failing_store", tmp_path.name)
    with pytest.raises(FolderDownloadError, match=r"big\.bin"):
        sharepoint.download(target, url=FOLDER_URL)
    prefix = f"{BUCKET}/{tmp_path.name}"
    assert not s3_fs.exists(f"{prefix}/big.bin")
    assert s3_fs.cat_file(f"{prefix}/small.csv") == b"1,2\n"
    uploads = s3_fs.call_s3("list_multipart_uploads", Bucket=BUCKET, Prefix=prefix)
    assert uploads.get("Uploads", []) == []  # aborted, not left to accrue storage
