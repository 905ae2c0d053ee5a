#!/usr/bin/env python3
"""Where a training step's CPU goes, by thread and phase, from a perf profile.

    perf record -e cpu-clock -F 250 --call-graph dwarf,16384 -o P.data -p PID -- sleep S
    perf script -i P.data -F comm,tid,period,ip,sym,dso | benchmarks/step_profile.py \
        --steps=N [--json=FILE]

benchmarks/step_profile.sh runs both around `vrec bench train` and finds N
(the steps trained while perf sampled). Every sample is one thread's CPU for
one period; it is charged to one phase by its call chain: a page fault
anywhere under it (the kernel zeroing or mapping memory) first, then the
allocator, then the innermost frame that names a phase below. Prints a
Markdown table: CPU milliseconds per step, per thread group and phase.
"""
import argparse
import collections
import json
import re
import sys

# (phase, regex on a frame's symbol), tried innermost frame first.
PHASES = [
    ("server optimizer", r"Adagrad::Apply|Optimizer::Apply|Adam::Apply|Sgd::Apply|Ftrl::Apply|ApplyGradients"),
    ("server row create", r"EmbeddingStore::CreateRow|EmbeddingStore::InitialRow|Initializer::InitRow"),
    ("server push (locate, sum)", r"EmbeddingStore::Push"),
    ("server gather (pull)", r"EmbeddingStore::Pull"),
    ("server request (validate, reply)", r"PsService::"),
    ("worker: reply copy", r"PsRequest::Wait|PsRequest::Finish"),
    ("worker: push (split, copy)", r"PsClient::Push|PushBuffers"),
    ("worker: pull request", r"PsClient::Pull"),
    ("worker: dense exchange", r"DenseExchange::"),
    ("model: gradient scatter", r"EmbeddingBagBackward"),
    ("model: embedding bags", r"EmbeddingBagForward"),
    ("model: dense (tower, softmax)", r"CandidateModel<float>::TrainStep|gebp_kernel|gemm_pack|SampledSoftmax|DenseLayer"),
    ("worker: batch build, dedupe, negatives", r"CandidateWorker::Read|CandidateInputs::Build|BuildOutputCandidates|NegativeSampler|IdDeduplicator|MaskWatched"),
    ("transport (zmq, queues)", r"zmq::|net::Client|net::Server|^zmq_|libzmq"),
    ("spill store (rocksdb)", r"rocksdb::"),
]
FAULT = re.compile(r"exc_page_fault|clear_page|do_huge_pmd_anonymous_page|handle_mm_fault")
ALLOC = re.compile(r"^(malloc|free|cfree|_int_malloc|_int_free|malloc_consolidate|unlink_chunk|"
                   r"sysmalloc|_int_memalign|aligned_alloc|posix_memalign|tcache_|arena_get|"
                   r"alloc_new_heap|new_heap|shrink_heap|heap_trim|__munmap|__mmap|munmap|mmap64|"
                   r"__madvise|madvise|operator new|operator delete)")
ALLOC_KERNEL = re.compile(r"__x64_sys_munmap|__x64_sys_mmap|__x64_sys_madvise|__vm_munmap|do_vmi_munmap")
SCHED = re.compile(r"futex|schedule|finish_task_switch|__x64_sys_futex|do_futex|nanosleep|"
                   r"__x64_sys_poll|do_poll|ep_poll|__x64_sys_epoll")


def thread_group(comm):
    # bench train's worker threads (named worker-N; unnamed ones before that
    # show the process's name, like its main thread, which only sleeps)
    if comm.startswith("worker") or comm.startswith("vrec"):
        return "worker"
    if comm == "net-handler":
        return "server request"
    if comm.startswith("spill"):
        return "spill writer"
    return "transport/other"


def app_phase(frames):
    for f in frames:
        for phase, rx in COMPILED:
            if rx.search(f):
                return phase
    if frames and SCHED.search(frames[0]):
        return "scheduling, waits"
    return "other"


def classify(frames):
    """frames: symbols innermost first. Returns (phase, the phase it is
    under for page faults and the allocator, else None)."""
    if any(FAULT.search(f) for f in frames):
        return "page faults (kernel)", app_phase(frames)
    if any(ALLOC_KERNEL.search(f) for f in frames):
        return "allocator (mmap, munmap)", app_phase(frames)
    for f in frames[:4]:
        if ALLOC.search(f):
            return "allocator (malloc, free)", app_phase(frames)
    return app_phase(frames), None


COMPILED = [(p, re.compile(r)) for p, r in PHASES]


def samples(stream):
    head = None
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if head is not None:
                yield head, frames
            head, frames = None, []
            continue
        if head is None:
            parts = line.split()
            # comm may contain spaces: the tid is the first all-digit field
            i = next(k for k, p in enumerate(parts) if p.isdigit())
            comm = " ".join(parts[:i])
            period = int(parts[i + 1]) if len(parts) > i + 1 and parts[i + 1].isdigit() else 1
            head = (comm, int(parts[i]), period)
            # perf prints the first frame on the header line without callchains
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            sym, dso = m.group(1), m.group(2)
            if "kernel.kallsyms" in dso:
                sym = "[k]" + sym
            frames.append(sym)
    if head is not None:
        yield head, frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=float, required=True, help="steps trained while sampling")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    cpu = collections.defaultdict(float)  # (group, phase) -> period units
    under = collections.defaultdict(float)  # (phase, app phase) for faults, allocator
    for (comm, tid, period), frames in samples(sys.stdin):
        frames = [f[3:] if f.startswith("[k]") else f for f in frames]
        phase, app = classify(frames)
        cpu[(thread_group(comm), phase)] += period
        if app is not None:
            under[(phase, app)] += period
    # cpu-clock periods are nanoseconds
    ms = {k: v / 1e6 / args.steps for k, v in cpu.items()}
    groups = sorted({g for g, _ in ms}, key=lambda g: -sum(v for (gg, _), v in ms.items() if gg == g))
    phases = sorted({p for _, p in ms}, key=lambda p: -sum(v for (_, pp), v in ms.items() if pp == p))
    print("| phase | " + " | ".join(groups) + " | all threads | share |")
    print("|---|" + "---|" * (len(groups) + 2))
    all_ms = sum(ms.values())
    for p in phases:
        row = [ms.get((g, p), 0.0) for g in groups]
        print("| %s | %s | %.1f | %.0f%% |" % (p, " | ".join("%.1f" % r for r in row), sum(row),
                                             100 * sum(row) / all_ms))
    print("| **all** | %s | **%.1f** | 100%% |" % (
        " | ".join("%.1f" % sum(v for (gg, _), v in ms.items() if gg == g) for g in groups), all_ms))
    if under:
        print()
        print("| page faults and allocator, under | CPU ms / step |")
        print("|---|---|")
        for (phase, app), v in sorted(under.items(), key=lambda kv: -kv[1]):
            if v / 1e6 / args.steps >= 0.1:
                print("| %s, under %s | %.1f |" % (phase, app, v / 1e6 / args.steps))
    if args.json:
        json.dump({"steps": args.steps, "cpu_ms_per_step": {f"{g}/{p}": v for (g, p), v in ms.items()}},
                  open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
