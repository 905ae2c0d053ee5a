#include "net/multipart.h"

namespace vrec::net {

bool RecvMultipart(zmq::socket_t& socket, std::vector<zmq::message_t>* parts,
                   zmq::recv_flags flags) {
  parts->clear();
  while (true) {
    zmq::message_t part;
    auto got = socket.recv(part, parts->empty() ? flags : zmq::recv_flags::none);
    if (!got) return false;
    const bool more = part.more();
    parts->push_back(std::move(part));
    if (!more) return true;
  }
}

bool SendMultipart(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    auto sent = socket.send(parts[i], last ? zmq::send_flags::dontwait
                                           : zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!sent) return false;
  }
  return true;
}

}  // namespace vrec::net
