// LoadTimeZone: a TimeZone by IANA name ("Europe/Berlin"), read from the
// system's zoneinfo directory (Debian's tzdata: /usr/share/zoneinfo).
//
// The name is checked before it touches the file system: 1-255 characters of
// [A-Za-z0-9_+-/], no empty, "." or ".." component, not absolute. "UTC" and
// "Etc/UTC" need no file (they work without tzdata). Reads one small file per
// call (no cache: zones are loaded once, when the configuration is).
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/time_zone.h"

namespace acceptd {

inline constexpr char kDefaultZoneinfoDir[] = "/usr/share/zoneinfo";
// Zone files are a few KiB; anything larger is not one.
inline constexpr size_t kMaxTimeZoneFileSize = 1 << 20;

// kInvalidArgument for a malformed name, an unknown zone (no such file, or a
// directory), a file that is not a valid TZif file; the detail names the zone.
// `zoneinfo_dir` is for tests.
Result<TimeZone> LoadTimeZone(std::string_view name,
                              const std::string& zoneinfo_dir = kDefaultZoneinfoDir);

}  // namespace acceptd
