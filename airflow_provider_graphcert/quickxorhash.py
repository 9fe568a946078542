"""QuickXorHash, the one content hash OneDrive for Business and SharePoint guarantee (reference B10, C).

Pure Python and incremental, shared by the client (transfer verification) and the emulator (it
computes ``file.hashes.quickXorHash``), so it lives outside both.

Why it can be fast without a per-byte loop: byte ``i`` of the stream is XORed into the 160-bit
state at bit offset ``(11 * i) mod 160``. 11 and 160 are coprime, so the offset pattern repeats
every 160 bytes: all bytes at the same ``i mod 160`` land on the same bits. The hash is therefore
linear in the XOR of all 160-byte blocks of the stream (aligned to stream position). That XOR-fold
is done with a handful of big-integer shift/AND/XOR operations per chunk, which run in C at memory
speed; only the final spreading of 160 folded bytes into the state is a Python loop, once per
``digest()``.

With ``accelerated=True`` and numpy installed (it is optional: Airflow does not require it), long
aligned runs are XOR-folded by numpy instead: several times faster than the big integers, and with the GIL released,
so a download's hash no longer competes with the thread reading the socket (docs/benchmarks.md).
Both paths give the same digest; the tests cross-check them.
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any, BinaryIO, TypeAlias

# Algorithm parameters (reference C; rclone: Size=20, shift=11, widthInBits=160).
WIDTH_BITS = 160
SHIFT_BITS = 11
DIGEST_SIZE = WIDTH_BITS // 8
# Bytes whose positions share an offset in the state; equals WIDTH_BITS because gcd(11, 160) == 1.
PERIOD_BYTES = WIDTH_BITS
# The 64-bit little-endian total length is XORed into the last 8 bytes of the digest (reference C step 4).
LENGTH_OFFSET = DIGEST_SIZE - 8

_PERIOD_BITS = PERIOD_BYTES * 8
_STATE_MASK = (1 << WIDTH_BITS) - 1
# Aligned input is XORed in slices of this many bytes: a multiple of the period, and small enough
# (40 KiB) for the big-integer temporaries to stay in CPU cache (measured fastest on x86-64).
_SLICE_BYTES = PERIOD_BYTES * 256
_READ_CHUNK_BYTES = 4 * 1024 * 1024
# Aligned runs at least this long go to numpy when it is there; shorter ones are not worth the call.
_NUMPY_MIN_BYTES = 64 * 1024
# Importing numpy costs about 0.1-0.25 s and 14 MB once per process: a stream shorter than this
# does not pay for it (unless numpy is loaded already), so small files stay on the pure path.
_NUMPY_IMPORT_AFTER_BYTES = 16 * 1024 * 1024
# numpy folds rows of this many 64-bit words (64 periods, 10 KiB): long rows keep its inner loop
# vectorised, where rows of one period (20 words) run about 5x slower.
_NUMPY_ROW_WORDS = (PERIOD_BYTES // 8) * 64

# collections.abc.Buffer needs Python 3.12; these are the byte containers callers pass.
BytesLike: TypeAlias = bytes | bytearray | memoryview


def _fold(value: int, n_bytes: int) -> int:
    """XOR together the 160-byte blocks of a little-endian integer spanning ``n_bytes`` bytes."""
    blocks = -(-n_bytes // PERIOD_BYTES)
    while blocks > 1:
        # Keep the lower ceil(n/2) blocks and XOR the upper floor(n/2) onto them.
        low_blocks = (blocks + 1) // 2
        split = low_blocks * _PERIOD_BITS
        value = (value & ((1 << split) - 1)) ^ (value >> split)
        blocks = low_blocks
    return value


def _spread(folded: int) -> int:
    """Place folded byte ``k`` at bit offset ``11k mod 160`` of the state, wrapping past bit 159."""
    state = 0
    data = folded.to_bytes(PERIOD_BYTES, "little")
    for k, byte in enumerate(data):
        if byte:
            offset = (SHIFT_BITS * k) % WIDTH_BITS
            shifted = byte << offset
            state ^= (shifted & _STATE_MASK) | (shifted >> WIDTH_BITS)
    return state


_numpy: Any = None
_numpy_checked = False


def numpy_or_none() -> Any:
    """numpy if it can be imported (once per process), else None: the pure-Python path is used."""
    global _numpy, _numpy_checked
    if not _numpy_checked:
        try:
            import numpy as found
        except ImportError:
            found = None  # type: ignore[assignment]
        _numpy, _numpy_checked = found, True
    return _numpy


def _numpy_fold(numpy: Any, aligned: memoryview) -> int:
    """The XOR of the 160-byte blocks of ``aligned`` (a whole number of blocks), as an integer."""
    words = numpy.frombuffer(aligned, dtype="<u8")
    whole = len(words) // _NUMPY_ROW_WORDS * _NUMPY_ROW_WORDS
    folded = numpy.zeros(PERIOD_BYTES // 8, dtype="<u8")
    if whole:
        rows = numpy.bitwise_xor.reduce(words[:whole].reshape(-1, _NUMPY_ROW_WORDS), axis=0)
        folded ^= numpy.bitwise_xor.reduce(rows.reshape(-1, PERIOD_BYTES // 8), axis=0)
    if whole < len(words):
        folded ^= numpy.bitwise_xor.reduce(words[whole:].reshape(-1, PERIOD_BYTES // 8), axis=0)
    return int.from_bytes(folded.tobytes(), "little")


class QuickXorHash:
    """hashlib-style incremental QuickXorHash: ``update()``, ``digest()``, ``b64digest()``.

    ``accelerated=True`` uses numpy for long runs when it is installed. It is opt-in because
    loading numpy adds about 14 MB to the process: worth it where the hash is the bottleneck
    (a large download), not where memory is tight already (docs/benchmarks.md: 1 GiB upload).
    """

    name = "quickxorhash"
    digest_size = DIGEST_SIZE

    def __init__(self, data: BytesLike = b"", *, accelerated: bool = False) -> None:
        self._accelerated = accelerated
        # XOR of every 160-byte block of the stream; byte k sits at stream position k mod 160.
        self._folded = 0
        # XOR of whole aligned slices, folded only at digest time: one C-level XOR per slice.
        self._wide = 0
        self._length = 0
        if data:
            self.update(data)

    def update(self, data: BytesLike) -> None:
        view = memoryview(data).cast("B")
        size = len(view)
        start = 0
        phase = self._length % PERIOD_BYTES
        if phase and size:
            # Bring the stream back to a block boundary; phase + head <= 160 so no fold is needed.
            start = min(size, PERIOD_BYTES - phase)
            self._folded ^= int.from_bytes(view[:start], "little") << (8 * phase)
        if size - start >= _NUMPY_MIN_BYTES and (numpy := self._numpy_if_worth_it(size)) is not None:
            aligned_end = start + (size - start) // PERIOD_BYTES * PERIOD_BYTES
            self._folded ^= _numpy_fold(numpy, view[start:aligned_end])
            start = aligned_end
        whole_end = start + (size - start) // _SLICE_BYTES * _SLICE_BYTES
        for offset in range(start, whole_end, _SLICE_BYTES):
            self._wide ^= int.from_bytes(view[offset : offset + _SLICE_BYTES], "little")
        if whole_end < size:
            self._folded ^= _fold(int.from_bytes(view[whole_end:], "little"), size - whole_end)
        self._length += size

    def _numpy_if_worth_it(self, size: int) -> Any:
        if not self._accelerated:
            return None
        if _numpy_checked or "numpy" in sys.modules or self._length + size >= _NUMPY_IMPORT_AFTER_BYTES:
            return numpy_or_none()
        return None

    def digest(self) -> bytes:
        folded = self._folded ^ _fold(self._wide, _SLICE_BYTES)
        out = bytearray(_spread(folded).to_bytes(DIGEST_SIZE, "little"))
        for i, byte in enumerate(self._length.to_bytes(8, "little")):
            out[LENGTH_OFFSET + i] ^= byte
        return bytes(out)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def b64digest(self) -> str:
        """The form Graph puts in ``file.hashes.quickXorHash``: standard base64 with padding."""
        return base64.b64encode(self.digest()).decode("ascii")

    def copy(self) -> QuickXorHash:
        clone = QuickXorHash(accelerated=self._accelerated)
        clone._folded = self._folded
        clone._wide = self._wide
        clone._length = self._length
        return clone

    @property
    def length(self) -> int:
        """Bytes hashed so far."""
        return self._length


def quickxorhash(data: BytesLike) -> str:
    """Base64 QuickXorHash of a byte string."""
    return QuickXorHash(data).b64digest()


def quickxorhash_stream(stream: BinaryIO, chunk_size: int = _READ_CHUNK_BYTES) -> str:
    """Base64 QuickXorHash of everything left in a binary stream, read a chunk at a time."""
    hasher = QuickXorHash()
    while chunk := stream.read(chunk_size):
        hasher.update(chunk)
    return hasher.b64digest()


def quickxorhash_file(path: str | os.PathLike[str]) -> str:
    """Base64 QuickXorHash of a file, without holding it in memory."""
    with open(path, "rb") as stream:
        return quickxorhash_stream(stream)
