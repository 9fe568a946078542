"""A SharePoint site in the emulator, a plain-Python SharePoint service for it, and an S3 store.

The S3 store is moto in server mode on 127.0.0.1: a real S3 HTTP API that s3fs (and so an
Airflow ``ObjectStoragePath``) talks to as it would to AWS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach
from airflow.sdk.io import store as airflow_store
from moto.server import ThreadedMotoServer
from sharepoint_kit import SITE_URL, sharepoint_for
from store_kit import BUCKET, S3_CONN_ID

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


@pytest.fixture
def sp_app(graph_emulator: GraphEmulator, rsa_cert: SelfSignedCertificate) -> App:
    tenant = graph_emulator.add_tenant()
    return graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])


@pytest.fixture
def sharepoint(graph_emulator: GraphEmulator, sp_app: App, pem_file: Path) -> Iterator[SharePoint]:
    service = sharepoint_for(graph_emulator, sp_app, pem_file)
    yield service
    service.client.close()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_fs(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> s3fs.S3FileSystem:
    """An s3fs client of the moto server, with its bucket created."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_endpoint, skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return fs


@pytest.fixture
def s3_landing(s3_fs: s3fs.S3FileSystem) -> ObjectStoragePath:
    """``s3://landing_store@landing/<test>``, as an Airflow AWS connection would give it (moto on 127.0.0.1)."""
    airflow_store._STORE_CACHE.pop(f"s3-{S3_CONN_ID}", None)  # attach() keeps the first fs per alias
    attach(protocol="s3", conn_id=S3_CONN_ID, fs=s3_fs)
    return ObjectStoragePath(f"s3://{S3_CONN_ID}@{BUCKET}/{os.urandom(4).hex()}")


__all__ = ["SITE_URL"]
