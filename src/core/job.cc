#include "core/job.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
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

void FillRandom(uint8_t* data, size_t size) {
  size_t filled = 0;
  while (filled < size) {
    ssize_t n = getrandom(data + filled, size - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Without entropy we cannot mint capabilities; this is not recoverable.
      throw std::runtime_error("getrandom failed");
    }
    filled += static_cast<size_t>(n);
  }
}

constexpr size_t kTimeBytes = 6;  // 48 bits of milliseconds: until the year 10889
std::atomic<uint64_t> last_prefix{0};

}  // namespace

JobId JobId::New(UnixMillis now) {
  uint64_t prefix = static_cast<uint64_t>(std::max<UnixMillis>(now, 0)) & ((1ULL << 48) - 1);
  // Never below an earlier prefix: a clock stepping back must not make new
  // ids land in the middle of the index again.
  uint64_t last = last_prefix.load(std::memory_order_relaxed);
  while (prefix > last &&
         !last_prefix.compare_exchange_weak(last, prefix, std::memory_order_relaxed)) {
  }
  prefix = std::max(prefix, last);
  JobId id;
  for (size_t i = 0; i < kTimeBytes; ++i) {
    id.bytes_[i] = static_cast<uint8_t>(prefix >> (8 * (kTimeBytes - 1 - i)));
  }
  FillRandom(id.bytes_.data() + kTimeBytes, id.bytes_.size() - kTimeBytes);
  return id;
}

JobId JobId::Random() {
  JobId id;
  FillRandom(id.bytes_.data(), id.bytes_.size());
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
  // The last 8 bytes: uniformly random in every id (JobId::New's first six
  // are a clock).
  uint64_t v;
  std::memcpy(&v, id.bytes().data() + 8, sizeof v);
  return static_cast<size_t>(v);
}

}  // namespace acceptd
