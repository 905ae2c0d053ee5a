// Heap settings for a process that moves tens of MB per step through
// short-lived buffers (pulled rows, gradients, messages, batch matrices).
//
// glibc gives each thread's arena 64 MiB heaps and unmaps a heap once its
// last block is freed (and trims a heap's free top), and it maps buffers
// above a moving threshold afresh on every allocation; so buffers of 15-30
// MB were mapped and page-faulted again on every training step (~20k faults
// a step in `vrec bench train`, a third of its time in the kernel zeroing
// pages). Two settings end that:
//   * glibc.malloc.hugetlb=1: transparent huge pages advised on the memory
//     malloc maps (512x fewer faults, fewer TLB misses on row gathers);
//   * glibc.malloc.trim_threshold=1 GiB and glibc.malloc.mmap_threshold=32
//     MiB (glibc's maximum): blocks up to 32 MiB come from the arenas, and
//     an arena keeps the memory freed to it (a heap is unmapped or trimmed
//     only when 1 GiB would be returned), so a step's buffers reuse the last
//     step's pages: a process holds its peak heap instead of faulting it in
//     again (16k page faults in 8 s of `vrec bench train --workers=2`
//     became 237; docs/benchmarks.md).
// glibc reads tunables only when a process starts, so the settings are made
// by re-executing the binary once with GLIBC_TUNABLES extended.
#pragma once

#include <optional>
#include <string>

namespace vrec {

// The GLIBC_TUNABLES value to re-execute with, given the current value
// (nullptr: unset) and the contents of
// /sys/kernel/mm/transparent_hugepage/enabled: the current value with each
// of the settings above appended that it does not make itself (a setting
// the caller made stands); glibc.malloc.hugetlb only where the kernel has
// transparent huge pages ("[always]" or "[madvise]"). nullopt when nothing
// is to be added.
std::optional<std::string> TrainingHeapTunables(const char* current, const std::string& thp_mode);

// The settings above as one GLIBC_TUNABLES value (for peers measured under
// the same heap, benchmarks/scaling.sh).
inline constexpr char kTrainingHeapTunables[] =
    "glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=1073741824:"
    "glibc.malloc.mmap_threshold=33554432";

// Whether argv sets a memory budget: a non-zero --budget_mb or
// --server_memory_mb (as --flag=N, -flag=N or --flag N). Such a process is
// held to a resident-set size, and huge pages round every touched 2 MiB of
// heap up: the 8M-row scale run's peak RSS went from 6.3 to 8.2 GiB with
// them (docs/benchmarks.md), so it keeps glibc's default.
bool SetsMemoryBudget(int argc, char** argv);

// Re-executes this binary (/proc/self/exe, same argv) with the tunables
// above unless they are in effect already, argv sets a memory budget, or
// VREC_MALLOC_TUNING=0. Call first thing in main, before threads or MPI
// start. Returns only when no re-execution happened (not needed, disabled,
// or exec failed: the process then runs on with glibc's defaults, which are
// slower but correct).
void ReexecWithMallocTuning(int argc, char** argv);

// What GLIBC_TUNABLES holds in this process ("" when unset), for benchmark
// lines.
std::string MallocTunables();

}  // namespace vrec
