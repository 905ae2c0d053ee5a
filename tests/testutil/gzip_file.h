// Writes a gzip file for tests of readers that take compressed input
// (data/byte_source.h). Header-only: only tests that read gzip include it
// (their module links zlib).
#pragma once

#include <zlib.h>

#include <string>

#include "gtest/gtest.h"

namespace vrec::testing {

inline void WriteGzip(const std::string& path, const std::string& contents) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr) << path;
  ASSERT_EQ(gzwrite(gz, contents.data(), static_cast<unsigned>(contents.size())),
            static_cast<int>(contents.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

}  // namespace vrec::testing
