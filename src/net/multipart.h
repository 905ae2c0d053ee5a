// Multipart messages on a ZeroMQ socket, without blocking: the pieces the
// transport (transport.h), its authentication (curve_auth.h) and the fault
// proxy (fault_proxy.h) all receive and send with.
//
// Thread safety: as the socket (one thread at a time).
#pragma once

#include <vector>

#include "zmq.hpp"

namespace vrec::net {

// Receives one multipart message into *parts: the first part with `flags`
// (dontwait: false at once when none is waiting), the rest as they come.
bool RecvMultipart(zmq::socket_t& socket, std::vector<zmq::message_t>* parts,
                   zmq::recv_flags flags = zmq::recv_flags::dontwait);

// Sends parts without blocking; the last one without SNDMORE. Returns false
// (nothing sent) when the socket cannot take the message now: its queue is
// full, or a DEALER has no connection (a peer that is down, unreachable or
// refused the handshake), where a blocking send would wait for ever. Once
// the first part is taken, ZeroMQ takes the rest (a message is atomic).
bool SendMultipart(zmq::socket_t& socket, std::vector<zmq::message_t>& parts);

}  // namespace vrec::net
