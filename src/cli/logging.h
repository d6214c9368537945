// The server's logs: spdlog's default logger, to stderr and optionally to a
// rotating file ([log] dir), as text lines or JSON objects ([log] format),
// and the access log ([log] access): one line per routed request.
//
// Text: "2026-12-05T09:12:01.123Z info message". JSON: one object per line,
// {"time": "...", "level": "info", "message": "..."}; an access line has
// its fields instead of a message: {"time", "level", "log": "access",
// "method", "route", "status", "duration_ms", "bytes", "request_id", "key"}.
#pragma once

#include <memory>
#include <string>

#include <spdlog/formatter.h>

#include "cli/server_config.h"
#include "core/error.h"
#include "http/router.h"

namespace acceptd {

// Installs the default logger as `log` says. kInvalidArgument for an unknown
// level, or a log directory that cannot be written.
Status SetUpLogging(const LogConfig& log);

// The access log for Router::SetAccessLog, writing through the loggers
// SetUpLogging installed; null when [log] access is off.
http::AccessLog MakeAccessLog(const LogConfig& log);

// The JSON line formatter (exposed for tests).
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

// `text` as a JSON string literal, quotes included; control characters
// escaped, invalid UTF-8 replaced by U+FFFD so that every line stays JSON.
std::string JsonString(std::string_view text);

}  // namespace acceptd
