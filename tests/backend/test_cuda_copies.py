"""Host-side parts of the cuda device's copies: the threaded memmove that fills and drains the
pinned staging buffers, and staged round trips through the fake driver with several copy threads
and staging buffers (no GPU needed)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egpu_array.backend import cuda, host_copy

from .test_cuda_driver import fake_device, fake_libcuda  # noqa: F401  (fixtures)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 1 << 16), st.integers(1, 6), st.sampled_from([1, 64, 1000, 4096]),
       st.integers(0, 63), st.integers(0, 63))
def test_host_copy_moves_every_byte_once(size, threads, piece, src_off, dst_off):
    """Split among threads or not, with unaligned ends: the destination equals the source and
    nothing around it changes."""
    src = np.random.default_rng(size).integers(0, 256, size + 64, dtype=np.uint8)
    dst = np.full(size + 128, 7, dtype=np.uint8)
    old = (host_copy.COPY_THREADS, host_copy.COPY_PIECE)
    host_copy.COPY_THREADS, host_copy.COPY_PIECE = threads, piece
    try:
        host_copy.host_copy(dst.ctypes.data + dst_off, src.ctypes.data + src_off, size)
    finally:
        host_copy.COPY_THREADS, host_copy.COPY_PIECE = old
    assert np.array_equal(dst[dst_off:dst_off + size], src[src_off:src_off + size])
    assert (dst[:dst_off] == 7).all() and (dst[dst_off + size:] == 7).all()


@pytest.mark.parametrize("buffers", [2, 3])
@pytest.mark.parametrize("nbytes", [1, 4097, 5 * 4096 + 3, 40000])
def test_staged_copies_with_copy_threads(fake_device, monkeypatch, buffers, nbytes):  # noqa: F811
    """Chunks through 2 or 3 staging buffers, each filled/drained by 4 threads in 512-byte pieces."""
    dev, lib = fake_device
    monkeypatch.setattr(cuda, "STAGING_BUFFERS", buffers)
    monkeypatch.setattr(host_copy, "COPY_THREADS", 4)
    monkeypatch.setattr(host_copy, "COPY_PIECE", 512)
    host = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
    buf = dev.allocator.alloc(nbytes)
    dev.copy_in(buf, 0, host)
    back = np.zeros_like(host)
    dev.copy_out(buf, 0, back)
    assert np.array_equal(back, host)
    assert dev._stage().count == buffers
