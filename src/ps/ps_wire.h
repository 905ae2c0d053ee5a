// The parameter server's wire format, shared by the client (ps_client.h) and
// the server (ps_server.h): a request or reply is a PsHeader
// (proto/ps.proto) in the message header, then raw data frames (keys as
// uint64, values as float, both in host byte order). A reply's header
// carries a Status: status_code 0 is OK; otherwise the request failed with
// that canonical code and `error` says why.
//
// Thread safety: free functions without state.
#pragma once

#include <cstdint>

#include "net/transport.h"
#include "proto/ps.pb.h"
#include "vrec/status.h"

namespace vrec::ps {

// PsHeader.version of every request and reply; a server refuses another.
inline constexpr uint32_t kPsWireVersion = 1;

// A message whose header is `header`, serialized, and no data frames.
net::Message MessageWithHeader(const PsHeader& header);

// A reply that carries `status` (and no data).
net::Message StatusReply(const Status& status);

// The status a reply header carries (OK when status_code is 0).
Status StatusFromHeader(const PsHeader& header);

}  // namespace vrec::ps
