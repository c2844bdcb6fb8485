"""Random bytes for ``jti`` values, read from the OS CSPRNG in blocks.

``os.urandom`` costs a system call per use; reading 4 KiB at a time and
handing out 16-byte slices removes that from the minting path. The slices
sit in a list and are taken with ``list.pop()``, which is atomic, so threads
never share a slice. The buffer is dropped in a forked child
(:mod:`jwtmint._forksafe`): parent and child must never hand out the same jti.
"""

from __future__ import annotations

import os

from ._forksafe import reset_in_child

__all__ = ["JTI_BYTES", "EntropyPool", "default_entropy"]

#: 128 bits: RFC 7519 §4.1.7 asks for a negligible collision chance.
JTI_BYTES = 16
_BLOCK = 256  # jti values per read from the OS


class EntropyPool:
    """Hands out ``JTI_BYTES`` fresh random bytes per call; safe across threads and fork."""

    __slots__ = ("__weakref__", "_chunks")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        reset_in_child(self, EntropyPool.reset)

    def __call__(self) -> bytes:
        try:
            return self._chunks.pop()
        except IndexError:
            return self._refill()

    def _refill(self) -> bytes:
        block = os.urandom(JTI_BYTES * _BLOCK)
        chunks = [block[i : i + JTI_BYTES] for i in range(0, len(block), JTI_BYTES)]
        # A new list, never an append: a thread still popping the old list
        # cannot receive a slice that this thread also returns.
        mine = chunks.pop()
        self._chunks = chunks
        return mine

    def reset(self) -> None:
        """Forget buffered bytes (called in a forked child)."""
        self._chunks = []


#: The process-wide pool that signers use unless given ``entropy=``.
default_entropy = EntropyPool()
