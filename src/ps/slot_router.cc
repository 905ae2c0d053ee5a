#include "ps/slot_router.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/random.h"

namespace vrec::ps {
namespace {

constexpr uint32_t kRouterMagic = 0x52534c56;  // "VLSR"
constexpr uint32_t kRouterVersion = 1;

void PutU32(std::string* out, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(buf, 4);
}

bool GetU32(const std::string& in, size_t* pos, uint32_t* v) {
  if (in.size() < *pos + 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) {
    *v |= static_cast<uint32_t>(static_cast<unsigned char>(in[*pos + i])) << (8 * i);
  }
  *pos += 4;
  return true;
}

}  // namespace

uint64_t TableId(const std::string& table_name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : table_name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

StatusOr<SlotRouter> SlotRouter::Contiguous(uint32_t num_servers, uint32_t num_slots) {
  if (num_servers == 0 || num_slots == 0 || num_servers > num_slots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SlotRouter: need 0 < num_servers (", num_servers, ") <= num_slots (", num_slots, ")"));
  }
  std::vector<uint32_t> owner(num_slots);
  for (uint32_t s = 0; s < num_servers; ++s) {
    const uint64_t begin = static_cast<uint64_t>(s) * num_slots / num_servers;
    const uint64_t end = static_cast<uint64_t>(s + 1) * num_slots / num_servers;
    for (uint64_t i = begin; i < end; ++i) owner[i] = s;
  }
  return SlotRouter(num_servers, std::move(owner));
}

StatusOr<SlotRouter> SlotRouter::FromOwners(uint32_t num_servers,
                                            std::vector<uint32_t> slot_owner) {
  if (slot_owner.empty() || num_servers == 0) {
    return absl::InvalidArgumentError("SlotRouter: no slots or no servers");
  }
  std::vector<bool> has_slot(num_servers, false);
  for (size_t i = 0; i < slot_owner.size(); ++i) {
    if (slot_owner[i] >= num_servers) {
      return absl::InvalidArgumentError(absl::StrCat("SlotRouter: slot ", i, " owned by server ",
                                                     slot_owner[i], " but there are only ",
                                                     num_servers, " servers"));
    }
    has_slot[slot_owner[i]] = true;
  }
  for (uint32_t s = 0; s < num_servers; ++s) {
    if (!has_slot[s]) {
      return absl::InvalidArgumentError(absl::StrCat("SlotRouter: server ", s, " owns no slot"));
    }
  }
  return SlotRouter(num_servers, std::move(slot_owner));
}

std::string SlotRouter::Serialize() const {
  std::string out;
  out.reserve(16 + 4 * slot_owner_.size());
  PutU32(&out, kRouterMagic);
  PutU32(&out, kRouterVersion);
  PutU32(&out, num_servers_);
  PutU32(&out, num_slots());
  for (uint32_t o : slot_owner_) PutU32(&out, o);
  return out;
}

StatusOr<SlotRouter> SlotRouter::Deserialize(const std::string& bytes) {
  size_t pos = 0;
  uint32_t magic = 0, version = 0, servers = 0, slots = 0;
  if (!GetU32(bytes, &pos, &magic) || magic != kRouterMagic) {
    return absl::DataLossError("SlotRouter: bad magic at offset 0");
  }
  if (!GetU32(bytes, &pos, &version) || version != kRouterVersion) {
    return absl::DataLossError(
        absl::StrCat("SlotRouter: unsupported version ", version, " at offset 4"));
  }
  if (!GetU32(bytes, &pos, &servers) || !GetU32(bytes, &pos, &slots)) {
    return absl::DataLossError("SlotRouter: truncated header at offset 8");
  }
  if (bytes.size() != pos + 4ull * slots) {
    return absl::DataLossError(absl::StrCat("SlotRouter: expected ", pos + 4ull * slots,
                                            " bytes for ", slots, " slots, got ", bytes.size()));
  }
  std::vector<uint32_t> owner(slots);
  for (uint32_t i = 0; i < slots; ++i) GetU32(bytes, &pos, &owner[i]);
  auto router = FromOwners(servers, std::move(owner));
  if (!router.ok()) return absl::DataLossError(router.status().message());
  return router;
}

StatusOr<DenseBlocks> DenseBlocks::Create(uint64_t size, uint32_t block_floats) {
  if (size == 0 || block_floats == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DenseBlocks: size (", size, ") and block_floats (", block_floats, ") must be positive"));
  }
  return DenseBlocks(size, block_floats);
}

}  // namespace vrec::ps
