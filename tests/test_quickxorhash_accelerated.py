"""A large download is hashed by numpy when it is installed: the digest is the same, byte for byte."""

from __future__ import annotations

import random

import pytest

from airflow_provider_graphcert.quickxorhash import QuickXorHash

pytest.importorskip("numpy")


def per_byte_reference(data: bytes) -> str:
    import base64

    state = 0
    for i, byte in enumerate(data):
        shifted = byte << ((11 * i) % 160)
        state ^= (shifted & ((1 << 160) - 1)) | (shifted >> 160)
    out = bytearray(state.to_bytes(20, "little"))
    for i, byte in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= byte
    return base64.b64encode(bytes(out)).decode()


def test_a_body_just_over_the_numpy_threshold_hashes_as_the_algorithm_states() -> None:
    import numpy  # noqa: F401 - loaded, so even a short stream takes the numpy path

    data = random.Random(7).randbytes(64 * 1024 + 161)
    assert QuickXorHash(data, accelerated=True).b64digest() == per_byte_reference(data)


@pytest.mark.parametrize("size", [65_536, 65_536 + 159, 1_048_576, 3 * 1_048_576 + 77, 10_241 * 160])
def test_numpy_and_pure_python_agree_however_the_stream_is_cut(size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    accelerated, pure = QuickXorHash(accelerated=True), QuickXorHash()
    position = 0
    while position < size:
        step = rng.choice([1, 159, 160, 161, 65_536, 65_536 + 3, 1_048_576])
        piece = memoryview(data)[position : position + step]
        accelerated.update(piece)
        pure.update(bytes(piece))
        position += step
    assert accelerated.b64digest() == pure.b64digest() == QuickXorHash(data).b64digest()
    assert accelerated.length == pure.length == size


def test_a_copy_keeps_the_path_it_was_made_with() -> None:
    hasher = QuickXorHash(b"x" * 100_000, accelerated=True)
    clone = hasher.copy()
    clone.update(b"y" * 100_000)
    hasher.update(b"y" * 100_000)
    assert clone.b64digest() == hasher.b64digest()
