#include "http/request_id.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace acceptd::http {

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-_.:/+=@").find(c) != std::string_view::npos;
  });
}

// A per-thread generator seeded once from the OS: no system call per request.
std::string NewRequestId() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }()};
  return fmt::format("{:016x}", gen());
}

std::string RequestIdFor(std::string_view given) {
  return IsValidRequestId(given) ? std::string(given) : NewRequestId();
}

}  // namespace acceptd::http
