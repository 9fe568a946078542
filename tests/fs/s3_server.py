"""moto's S3 server on 127.0.0.1, and ObjectStoragePath's s3:// scheme pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import s3fs
from airflow.sdk.io import attach
from airflow.sdk.io import store as airflow_store
from moto.server import ThreadedMotoServer

S3_CONN_ID = "object_store"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            key="testing", secret="testing", endpoint_url=self.endpoint_url, skip_instance_cache=True
        )


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


def attach_s3(server: S3Server) -> s3fs.S3FileSystem:
    """``s3://object_store@bucket/key`` paths use this S3 server (as an Airflow AWS connection would)."""
    fs = server.filesystem()
    airflow_store._STORE_CACHE.pop(f"s3-{S3_CONN_ID}", None)  # attach() keeps the first fs per alias
    attach(protocol="s3", conn_id=S3_CONN_ID, fs=fs)
    return fs
