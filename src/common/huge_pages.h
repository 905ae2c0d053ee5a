// Large, randomly accessed arrays on transparent huge pages.
//
// A parameter server's row index, per-slot metadata and frequency sketch are
// arrays of tens to hundreds of MiB probed at random, one cache line a key.
// On 4 KiB pages nearly every probe also misses the TLB (in a VM a two-level
// page walk); on 2 MiB pages a few hundred TLB entries cover them. The process
// cannot simply ask glibc for huge pages everywhere (GLIBC_TUNABLES
// glibc.malloc.hugetlb=1): that rounds every touched heap region up to 2 MiB
// and broke a 7 GB RSS limit (docs/benchmarks.md), so only these arrays ask.
//
// AllocateHuge(bytes) returns `bytes` of uninitialised (in fact zero-filled,
// fresh from the kernel) memory: blocks of at least kHugePageBytes are mapped
// on their own, 2 MiB aligned and advised MADV_HUGEPAGE (honoured where
// /sys/kernel/mm/transparent_hugepage/enabled is `always` or `madvise`); only
// the 2 MiB ranges the caller touches become resident, so nothing is rounded
// up beyond what is used. Smaller blocks come from malloc. Either way the
// block is 64-byte (cache line) aligned. Returns nullptr
// when out of memory. FreeHuge(p, bytes) takes the same size back.
// HugePageAllocator<T> is a stateless std allocator over them, for
// std::vector and absl::flat_hash_map.
//
// Each large block is a mapping of its own unless the kernel places it next
// to another one: a process has at most vm.max_map_count (65530 by default)
// mappings, i.e. at worst about 128 GiB in 2 MiB blocks.
//
// Thread safety: thread-safe (mmap, munmap and malloc are).
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace vrec {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

void* AllocateHuge(size_t bytes);
void FreeHuge(void* p, size_t bytes);

// An owned array of `n` T from AllocateHuge (uninitialised for small ones);
// throws std::bad_alloc when out of memory.
template <typename T>
struct HugeArrayDeleter {
  size_t bytes;
  void operator()(T* p) const { FreeHuge(p, bytes); }
};
template <typename T>
using HugeArray = std::unique_ptr<T[], HugeArrayDeleter<T>>;
template <typename T>
HugeArray<T> AllocateHugeArray(size_t n) {
  void* p = AllocateHuge(n * sizeof(T));
  if (p == nullptr) throw std::bad_alloc();
  return HugeArray<T>(static_cast<T*>(p), HugeArrayDeleter<T>{n * sizeof(T)});
}

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    void* p = AllocateHuge(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept { FreeHuge(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace vrec
