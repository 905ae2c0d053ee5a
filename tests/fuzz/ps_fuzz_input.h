// The input format of the parameter-server fuzz target (ps_fuzz.cc): a
// sequence of requests as the transport hands them to PsService::Handle,
// each its header frame and data frames:
//
//   request := u16 header_bytes, header, u8 num_frames, (u16 frame_bytes, frame) x num_frames
//
// (little-endian lengths). A length that runs past the end takes what is
// left. A request of more than 16 data frames is dropped: the transport
// refuses it before the handler sees it. The seed writer
// (fuzz_seeds.cc) encodes requests built with the real encoders.
//
// Thread safety: free functions without state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "net/transport.h"

namespace vrec::fuzz {

// ServerOptions::max_frames: the most data frames a request reaches a handler with.
inline constexpr size_t kMaxFrames = 16;

inline std::string EncodeRequests(const std::vector<net::Message>& requests) {
  std::string out;
  auto put = [&](const void* data, size_t n, int length_bytes) {
    for (int i = 0; i < length_bytes; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    out.append(static_cast<const char*>(data), n);
  };
  for (const net::Message& m : requests) {
    put(m.header.data(), m.header.size(), 2);
    out.push_back(static_cast<char>(m.frames.size()));
    for (const auto& f : m.frames) put(f.data(), f.size(), 2);
  }
  return out;
}

inline std::vector<net::Message> DecodeRequests(const uint8_t* data, size_t size) {
  std::vector<net::Message> out;
  size_t pos = 0;
  auto take = [&](size_t length_bytes) {
    size_t n = 0;
    for (size_t i = 0; i < length_bytes && pos < size; ++i) n |= size_t{data[pos++]} << (8 * i);
    n = std::min(n, size - pos);
    const uint8_t* p = data + pos;
    pos += n;
    return std::string(reinterpret_cast<const char*>(p), n);
  };
  while (pos < size) {
    net::Message m;
    m.header = take(2);
    const size_t frames = pos < size ? data[pos++] : 0;
    for (size_t i = 0; i < frames && pos < size; ++i) {
      const std::string f = take(2);
      m.frames.push_back(net::FrameFromBytes(f.data(), f.size()));
    }
    if (m.frames.size() <= kMaxFrames) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace vrec::fuzz
