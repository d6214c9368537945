#include "cli/logging.h"

#include <time.h>

#include <fmt/format.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/utf8.h"

namespace acceptd {

namespace {

constexpr const char* kAccessLogger = "access";

void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  out += '"';
}

std::string Utc(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const time_t secs = static_cast<time_t>(ms.count() / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     ms.count() % 1000);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":\"" + Utc(msg.time) + "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += '"';
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (std::string_view(msg.logger_name.data(), msg.logger_name.size()) == kAccessLogger &&
        payload.size() >= 2 && payload.front() == '{') {
      // An access record: its fields (made by MakeAccessLog) join the object.
      line += ",\"log\":\"access\",";
      line.append(payload.substr(1));
    } else {
      line += ",\"message\":";
      AppendJsonString(payload, line);
      line += '}';
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string JsonString(std::string_view text) {
  std::string out;
  AppendJsonString(text, out);
  return out;
}

std::unique_ptr<spdlog::formatter> MakeJsonFormatter() { return std::make_unique<JsonFormatter>(); }

Status SetUpLogging(const LogConfig& log) {
  auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") {
    return Error::InvalidArgument(fmt::format(
        "invalid log level '{}' (trace, debug, info, warn, error, critical, off)", log.level));
  }
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!log.dir.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          log.dir + "/acceptd.log", log.max_size, static_cast<size_t>(log.max_files)));
    } catch (const spdlog::spdlog_ex& e) {
      return Error::InvalidArgument(fmt::format("cannot log to {}: {}", log.dir, e.what()));
    }
  }
  auto logger = std::make_shared<spdlog::logger>("acceptd", sinks.begin(), sinks.end());
  logger->set_level(level);
  if (log.format == "json") {
    logger->set_formatter(MakeJsonFormatter());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::drop(kAccessLogger);
  if (log.access) {
    // The same sinks (and so the same formatter, which tells access records
    // apart by this logger's name).
    auto access = std::make_shared<spdlog::logger>(kAccessLogger, sinks.begin(), sinks.end());
    access->set_level(level);
    access->flush_on(spdlog::level::info);
    spdlog::register_logger(access);
  }
  return {};
}

http::AccessLog MakeAccessLog(const LogConfig& log) {
  if (!log.access) return nullptr;
  auto logger = spdlog::get(kAccessLogger);
  if (!logger) return nullptr;
  const bool json = log.format == "json";
  return [logger, json](const http::AccessRecord& r) {
    if (!logger->should_log(spdlog::level::info)) return;
    const double ms = std::chrono::duration<double, std::milli>(r.duration).count();
    if (json) {
      std::string line = "{\"method\":";
      AppendJsonString(r.method, line);
      line += ",\"route\":";
      AppendJsonString(r.route, line);
      line += fmt::format(",\"status\":{},\"duration_ms\":{:.3f},\"bytes\":", r.status, ms);
      line += r.bytes ? std::to_string(*r.bytes) : "null";
      line += ",\"request_id\":";
      AppendJsonString(r.request_id, line);
      line += ",\"key\":";
      if (r.key.empty()) {
        line += "null";
      } else {
        AppendJsonString(r.key, line);
      }
      line += '}';
      logger->info(line);
    } else {
      logger->info(
          "access method={} route={} status={} duration_ms={:.3f} bytes={} "
          "request_id={} key={}",
          r.method, r.route, r.status, ms, r.bytes ? std::to_string(*r.bytes) : "-", r.request_id,
          r.key.empty() ? "-" : r.key);
    }
  };
}

}  // namespace acceptd
