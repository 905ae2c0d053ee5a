#include "ps/ps_wire.h"

#include <string>

namespace vrec::ps {

net::Message MessageWithHeader(const PsHeader& header) {
  net::Message m;
  m.header = header.SerializeAsString();
  return m;
}

net::Message StatusReply(const Status& status) {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_status_code(static_cast<int32_t>(status.code()));
  h.set_error(std::string(status.message()));
  return MessageWithHeader(h);
}

Status StatusFromHeader(const PsHeader& header) {
  if (header.status_code() == 0) return absl::OkStatus();
  return Status(static_cast<absl::StatusCode>(header.status_code()), header.error());
}

}  // namespace vrec::ps
