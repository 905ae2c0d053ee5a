#include "ps/slot_router.h"

#include <cmath>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

TEST(TableIdTest, StableAndDistinct) {
  EXPECT_EQ(TableId("video"), TableId("video"));
  EXPECT_NE(TableId("video"), TableId("token"));
  EXPECT_NE(TableId(""), TableId("a"));
}

TEST(SlotRouterTest, SlotOccupancyIsUniform) {
  ASSERT_OK_AND_ASSIGN(SlotRouter r, SlotRouter::Contiguous(4, 256));
  const uint64_t table = TableId("video");
  std::vector<int> count(256, 0);
  const int n = 256 * 400;
  // Sequential keys are the adversarial case for a poor hash.
  for (int k = 0; k < n; ++k) ++count[r.Slot(table, k)];
  const double mean = 400, sd = std::sqrt(400.0);
  double chi2 = 0;
  for (int c : count) {
    EXPECT_NEAR(c, mean, 6 * sd);
    chi2 += (c - mean) * (c - mean) / mean;
  }
  // 255 degrees of freedom: mean 255, sd ~22.6.
  EXPECT_LT(chi2, 255 + 6 * 22.6);
}

TEST(SlotRouterTest, DeterministicAndTableSalted) {
  ASSERT_OK_AND_ASSIGN(SlotRouter a, SlotRouter::Contiguous(3));
  ASSERT_OK_AND_ASSIGN(SlotRouter b, SlotRouter::Contiguous(3));
  int same_slot_other_table = 0;
  for (uint64_t k = 0; k < 1000; ++k) {
    EXPECT_EQ(a.Slot(1, k), b.Slot(1, k));
    EXPECT_EQ(a.Server(1, k), a.ServerOfSlot(a.Slot(1, k)));
    same_slot_other_table += a.Slot(1, k) == a.Slot(2, k);
  }
  EXPECT_LT(same_slot_other_table, 10);  // ~1000/4096 expected
}

TEST(SlotRouterTest, ContiguousRangesCoverAllServersEvenly) {
  ASSERT_OK_AND_ASSIGN(SlotRouter r, SlotRouter::Contiguous(3, 4096));
  std::vector<int> owned(3, 0);
  uint32_t prev = 0;
  for (uint32_t s = 0; s < r.num_slots(); ++s) {
    const uint32_t o = r.ServerOfSlot(s);
    EXPECT_GE(o, prev);  // contiguous, non-decreasing
    prev = o;
    ++owned[o];
  }
  for (int c : owned) EXPECT_NEAR(c, 4096 / 3.0, 1.0);
}

TEST(SlotRouterTest, RemapFromTwoToThreeServersMovesWholeSlots) {
  ASSERT_OK_AND_ASSIGN(SlotRouter two, SlotRouter::Contiguous(2));
  ASSERT_OK_AND_ASSIGN(SlotRouter three, SlotRouter::Contiguous(3));
  Rng rng(testing::TestSeed(11));
  // Every key of a slot moves together: the slot of a key does not depend on
  // the number of servers, only its owner does.
  std::vector<int> slot_dest(two.num_slots(), -1);
  for (int i = 0; i < 50000; ++i) {
    const uint64_t k = rng();
    const uint32_t slot = two.Slot(7, k);
    ASSERT_EQ(slot, three.Slot(7, k));
    const int dest = static_cast<int>(three.Server(7, k));
    if (slot_dest[slot] < 0) slot_dest[slot] = dest;
    EXPECT_EQ(slot_dest[slot], dest);
  }
  // Contiguous ranges move about a third of the slots... and at most 2/3.
  int moved = 0;
  for (uint32_t s = 0; s < two.num_slots(); ++s)
    moved += two.ServerOfSlot(s) != three.ServerOfSlot(s);
  EXPECT_GT(moved, 0);
  EXPECT_LT(moved, static_cast<int>(two.num_slots()));
}

TEST(SlotRouterTest, SerializeRoundTripAndCorruption) {
  std::vector<uint32_t> owners = {0, 1, 1, 0, 2};
  ASSERT_OK_AND_ASSIGN(SlotRouter r, SlotRouter::FromOwners(3, owners));
  ASSERT_OK_AND_ASSIGN(SlotRouter back, SlotRouter::Deserialize(r.Serialize()));
  EXPECT_EQ(back.slot_owner(), owners);
  EXPECT_EQ(back.num_servers(), 3u);
  std::string bytes = r.Serialize();
  EXPECT_THAT(SlotRouter::Deserialize(bytes.substr(0, bytes.size() - 1)),
              StatusIs(absl::StatusCode::kDataLoss, "expected"));
  bytes[0] ^= 1;
  EXPECT_THAT(SlotRouter::Deserialize(bytes), StatusIs(absl::StatusCode::kDataLoss, "offset 0"));
}

TEST(SlotRouterTest, RejectsBadOwners) {
  EXPECT_THAT(SlotRouter::FromOwners(2, {0, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, "slot 1"));
  EXPECT_THAT(SlotRouter::FromOwners(3, {0, 1, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, "server 2 owns no slot"));
  EXPECT_THAT(SlotRouter::Contiguous(0), StatusIs(absl::StatusCode::kInvalidArgument, ""));
  EXPECT_THAT(SlotRouter::Contiguous(5, 4), StatusIs(absl::StatusCode::kInvalidArgument, ""));
}

TEST(DenseBlocksTest, CoversEveryElementOnce) {
  ASSERT_OK_AND_ASSIGN(DenseBlocks b, DenseBlocks::Create(1000, 128));
  EXPECT_EQ(b.num_blocks(), 8u);
  uint64_t covered = 0;
  for (uint64_t i = 0; i < b.num_blocks(); ++i) {
    EXPECT_EQ(b.BlockBegin(i), covered);
    covered += b.BlockLength(i);
    EXPECT_EQ(b.BlockOf(b.BlockBegin(i)), i);
  }
  EXPECT_EQ(covered, 1000u);
  EXPECT_EQ(b.BlockLength(7), 1000u - 7 * 128);
  EXPECT_THAT(DenseBlocks::Create(0, 4), StatusIs(absl::StatusCode::kInvalidArgument, "size"));
}

}  // namespace
}  // namespace vrec::ps
