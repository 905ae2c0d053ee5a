// Names for threads and the CPU time each has used, for benchmarks and
// profiles: which thread of a process is the critical path, and how many
// CPU microseconds it spends per unit of work (a figure that moves far less
// on a shared machine than a rate does, since time a thread waits for a core
// is not counted).
#pragma once

#include <pthread.h>

#include <map>
#include <string>

namespace vrec {

// Sets `thread`'s name as /proc and profilers show it (first 15 bytes).
void SetThreadName(pthread_t thread, const std::string& name);
inline void NameThisThread(const std::string& name) { SetThreadName(pthread_self(), name); }

// CPU seconds (user + system) used so far by this process's live threads,
// summed per thread name; {} where /proc is unavailable. Threads that have
// exited are not counted, so take differences over threads that live
// through the interval.
std::map<std::string, double> CpuSecondsByThreadName();

// CPU seconds the calling thread has used.
double ThisThreadCpuSeconds();

}  // namespace vrec
