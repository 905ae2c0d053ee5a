// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of TFRecord-framed record files (data/record_writer.h).
//
// Crc32c() picks, once per process, the SSE4.2 crc32 instruction when the CPU
// has it (detected at run time, so a binary built without -march=native still
// uses it) and a portable slicing-by-8 table otherwise. Both give identical
// results; crc32c_internal exposes each path so tests can compare them.
//
// Thread safety: all functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vrec {

// CRC32C of data[0, n).
uint32_t Crc32c(const void* data, size_t n);

// CRC32C of A + data[0, n) given crc = Crc32c(A): lets a checksum be computed
// piece by piece. Crc32cExtend(0, data, n) == Crc32c(data, n).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

// TFRecord's masking of a stored CRC. A CRC computed over bytes that
// themselves contain CRCs is weak; masking the stored value avoids that.
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

inline uint32_t UnmaskCrc(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

namespace crc32c_internal {

// Table-driven (slicing-by-8), any CPU. Same contract as Crc32cExtend.
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n);

// SSE4.2 crc32 instruction. REQUIRES: HardwareAvailable().
uint32_t Crc32cHardware(uint32_t crc, const void* data, size_t n);

// Whether this CPU has SSE4.2 (always false off x86-64).
bool HardwareAvailable();

}  // namespace crc32c_internal
}  // namespace vrec
