// Heap settings for a process that moves tens of MB per step through
// short-lived buffers (pulled rows, gradients, messages, batch matrices).
//
// glibc gives each thread's arena 64 MiB heaps and unmaps a heap once its
// last block is freed, so buffers of 15-30 MB are mapped afresh and
// page-faulted 4 KiB at a time on every training step (~20k faults a step
// in `vrec bench train`, a third of its time in the kernel zeroing pages).
// glibc's `glibc.malloc.hugetlb=1` tunable advises transparent huge pages
// on the memory malloc maps: 512x fewer faults, fewer TLB misses on row
// gathers, and `vrec bench train` runs twice as fast (docs/benchmarks.md).
// glibc reads tunables only when a process starts, so the setting is made
// by re-executing the binary once with GLIBC_TUNABLES extended.
#pragma once

#include <optional>
#include <string>

namespace vrec {

// The GLIBC_TUNABLES value to re-execute with, given the current value
// (nullptr: unset) and the contents of
// /sys/kernel/mm/transparent_hugepage/enabled; nullopt when nothing is to
// be done: the caller already set glibc.malloc.hugetlb (its choice stands),
// or the kernel has transparent huge pages off ("[never]") or lacks them
// (empty).
std::optional<std::string> TunablesWithHugePages(const char* current, const std::string& thp_mode);

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
