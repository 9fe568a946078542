"""QuickXorHash for the emulator: the real implementation lives where the client can import it too."""

from __future__ import annotations

from airflow_provider_graphcert.quickxorhash import (
    DIGEST_SIZE,
    QuickXorHash,
    quickxorhash,
    quickxorhash_file,
    quickxorhash_stream,
)

__all__ = ["DIGEST_SIZE", "QuickXorHash", "quickxorhash", "quickxorhash_file", "quickxorhash_stream"]
