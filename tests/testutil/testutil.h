// Helpers shared by the unit tests: status matchers, scratch folders, seeds.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "vrec/status.h"

namespace vrec::testing {

// A fresh, empty folder under $TEST_TMPDIR or /tmp, unique per call; removed
// when the returned object is destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The seed a randomized test should use: $VREC_TEST_SEED if set, else
// `fallback`. Recorded as a test property so a failure prints it.
uint64_t TestSeed(uint64_t fallback);

}  // namespace vrec::testing

// EXPECT_OK(status_or_statusor) / ASSERT_OK(...)
#define VREC_TESTING_STATUS_OF_(x) ::vrec::testing::internal::StatusOf(x)
#define EXPECT_OK(x) EXPECT_TRUE(VREC_TESTING_STATUS_OF_(x).ok()) << VREC_TESTING_STATUS_OF_(x)
#define ASSERT_OK(x) ASSERT_TRUE(VREC_TESTING_STATUS_OF_(x).ok()) << VREC_TESTING_STATUS_OF_(x)
// ASSERT_OK_AND_ASSIGN(auto v, StatusOrExpr());
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                             \
  ASSERT_OK_AND_ASSIGN_IMPL_(VREC_STATUS_CONCAT_(vrec_test_statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(var, lhs, expr) \
  auto var = (expr);                               \
  ASSERT_TRUE(var.ok()) << var.status();           \
  lhs = std::move(var).value()

namespace vrec::testing::internal {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace vrec::testing::internal

// Matches a Status (or StatusOr) with the given code whose message contains
// `substr`: EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "offset 12"));
MATCHER_P2(StatusIs, code, substr, "") {
  const absl::Status& s = ::vrec::testing::internal::StatusOf(arg);
  *result_listener << "status is " << s;
  return s.code() == code && std::string(s.message()).find(substr) != std::string::npos;
}
