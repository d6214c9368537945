#include "core/job.h"

#include <sys/random.h>

#include <cstring>
#include <stdexcept>

namespace acceptd {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is rejected on purpose: one spelling per id
}

}  // namespace

JobId JobId::Random() {
  JobId id;
  size_t filled = 0;
  while (filled < id.bytes_.size()) {
    ssize_t n = getrandom(id.bytes_.data() + filled, id.bytes_.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Without entropy we cannot mint capabilities; this is not recoverable.
      throw std::runtime_error("getrandom failed");
    }
    filled += static_cast<size_t>(n);
  }
  return id;
}

std::optional<JobId> JobId::Parse(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  JobId id;
  for (size_t i = 0; i < 16; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

JobId JobId::FromBytes(const void* data) {
  JobId id;
  std::memcpy(id.bytes_.data(), data, id.bytes_.size());
  return id;
}

std::string JobId::ToHex() const {
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[bytes_[i] >> 4];
    out[2 * i + 1] = kHex[bytes_[i] & 0xf];
  }
  return out;
}

size_t JobIdHash::operator()(const JobId& id) const {
  uint64_t v;
  std::memcpy(&v, id.bytes().data(), sizeof v);  // already uniformly random
  return static_cast<size_t>(v);
}

}  // namespace acceptd
