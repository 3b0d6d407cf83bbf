"""What this CPU can do, read once from the kernel's view of it rather than assumed."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX-BF16: bf16 arithmetic in hardware, not emulated through fp32."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Emulated bf16 is no shortcut: without bf16 instructions every bf16 operation is fp32 work plus conversions,
# so training and inference run many times slower than in fp32 (BENCHMARKS.md, CPU kinds).
EMULATED_BF16 = (
    "bf16 needs a CPU with native bf16 (avx512_bf16 or AMX); this one would only emulate it, far slower than fp32"
)


def emulated_bf16_reason() -> str | None:
    """None where bf16 runs natively, else why bf16 should not be asked for on this CPU."""
    return None if cpu_has_native_bf16() else EMULATED_BF16


def cpu_has_vnni() -> bool:
    flags = cpu_flags()
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


@lru_cache(maxsize=1)
def cpu_model_name() -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) ..."), part of cache keys for CPU-tuned artifacts."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown-cpu"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine() or "unknown-cpu"


@lru_cache(maxsize=1)
def physical_core_count() -> int:
    """Cores without their SMT siblings: compute-bound kernels gain nothing from a second thread per core."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    for line in text.splitlines() + [""]:
        if line.startswith("physical id"):
            physical_id = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core_id = line.split(":", 1)[1].strip()
        elif not line.strip():  # a blank line ends one logical processor's block
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # A container may be pinned to fewer logical CPUs than the host has cores.
    return min(len(cores), allowed) if cores else allowed


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Has glibc's malloc keep freed memory for the next allocation instead of returning it to the kernel; False where it cannot (no glibc).

    By default glibc maps each block over its mmap threshold (at most 32 MB) afresh and unmaps it
    when freed, so every training step on a CPU faults in and zeroes its activations' pages again,
    which costs a large share of a step. The cost of keeping them is memory that stays with the
    process at its peak, which a training run reaches anyway.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
