#include "tools/cairn/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "storage/event_json.h"

namespace cairn::cli {
namespace {

// Our names: "warn", not spdlog's "warning"; the same as --log-level takes.
std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

int64_t Nanos(const spdlog::details::log_msg& msg) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(msg.time.time_since_epoch()).count();
}

std::string_view View(spdlog::string_view_t text) { return {text.data(), text.size()}; }

// "2026-11-21T08:05:00.123Z warn cairn: message"
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string time = storage::FormatTimeRfc3339(Nanos(msg));  // nine fractional digits
    if (time.size() > 7) time.erase(time.size() - 7, 6);        // to milliseconds
    std::string line = time + " " + std::string(LevelName(msg.level)) + " " +
                       std::string(View(msg.logger_name)) + ": " + std::string(View(msg.payload));
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

// One JSON object per message: {"time", "level", "logger", "message"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const nlohmann::json line = {{"time", storage::FormatTimeRfc3339(Nanos(msg))},
                                 {"level", LevelName(msg.level)},
                                 {"logger", View(msg.logger_name)},
                                 {"message", View(msg.payload)}};
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

Result<spdlog::level::level_enum> ParseLevel(std::string_view name) {
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                     spdlog::level::warn, spdlog::level::err, spdlog::level::off}) {
    if (LevelName(level) == name) return level;
  }
  return Status::InvalidArgument("--log-level: unknown level '" + std::string(name) +
                                 "' (expected trace, debug, info, warn, error or off)");
}

}  // namespace

Result<std::shared_ptr<spdlog::logger>> MakeLogger(std::string_view name, std::string_view level,
                                                   LogFormat format, std::ostream& err) {
  CAIRN_ASSIGN_OR_RETURN(const spdlog::level::level_enum parsed, ParseLevel(level));
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(err, /*force_flush=*/true);
  if (format == LogFormat::kJson) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_formatter(std::make_unique<TextFormatter>());
  }
  auto logger = std::make_shared<spdlog::logger>(std::string(name), std::move(sink));
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void InstallDefaultLogger(std::shared_ptr<spdlog::logger> logger) {
  const spdlog::level::level_enum level = logger->level();
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(level);
}

}  // namespace cairn::cli
