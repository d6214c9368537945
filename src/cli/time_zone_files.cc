#include "cli/time_zone_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace acceptd {

namespace {

constexpr size_t kMaxNameLength = 255;

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '+' || c == '-' || c == '/';
}

// Names become paths under the zoneinfo directory: nothing may climb out.
bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name.front() == '/') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  size_t begin = 0;
  for (;;) {
    const size_t slash = name.find('/', begin);
    const std::string_view part = name.substr(
        begin, slash == std::string_view::npos ? std::string_view::npos : slash - begin);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    begin = slash + 1;
  }
}

}  // namespace

Result<TimeZone> LoadTimeZone(std::string_view name, const std::string& zoneinfo_dir) {
  if (!IsSafeName(name)) {
    return Error::InvalidArgument(fmt::format(
        "time zone \"{}\": not a zone name (expected e.g. \"Europe/Berlin\" or \"UTC\")", name));
  }
  if (name == "UTC" || name == "Etc/UTC") return TimeZone::Utc();
  const std::string path = fmt::format("{}/{}", zoneinfo_dir, name);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    Error error = Error::InvalidArgument(fmt::format("unknown time zone \"{}\"", name));
    error.message =
        fmt::format("unknown time zone \"{}\": open {}: {}", name, path, std::strerror(err));
    return error;
  }
  std::string bytes;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            static_cast<uint64_t>(st.st_size) <= kMaxTimeZoneFileSize;
  if (ok) {
    char buffer[8192];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ok = false;
        break;
      }
      if (n == 0) break;
      bytes.append(buffer, static_cast<size_t>(n));
      if (bytes.size() > kMaxTimeZoneFileSize) {
        ok = false;
        break;
      }
    }
  }
  ::close(fd);
  if (!ok) return Error::InvalidArgument(fmt::format("unknown time zone \"{}\"", name));
  return TimeZone::FromTzif(std::string(name), bytes);
}

}  // namespace acceptd
