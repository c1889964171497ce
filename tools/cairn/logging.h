// Diagnostics of the `cairn` process (the engine's and the CLI's own), on stderr through
// spdlog: `--log-level` and `--log-format`.
//
//   text: 2026-11-21T08:05:00.123Z warn cairn: message
//   json: {"time":"2026-11-21T08:05:00.123456Z","level":"warn","logger":"cairn","message":"..."}
//         one object per line (JSON lines), times in UTC.
//
// Logs are for people and log collectors, never data: data goes to stdout. The engine
// logs through spdlog's default logger, so main() installs the logger made here as the
// default (the one process-wide spdlog registry is the library's, not ours) before any
// command runs.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "base/status.h"

namespace spdlog {
class logger;
}  // namespace spdlog

namespace cairn::cli {

enum class LogFormat : uint8_t { kText, kJson };

// The level names --log-level accepts, most verbose first.
inline constexpr const char* kLogLevelNames[] = {"trace", "debug", "info", "warn", "error", "off"};

// A logger named `name` writing to `err` (not owned; must outlive the logger) at `level`
// (one of kLogLevelNames) in `format`. kInvalidArgument for an unknown level name.
// The logger is thread-safe, as spdlog loggers are.
Result<std::shared_ptr<spdlog::logger>> MakeLogger(std::string_view name, std::string_view level,
                                                   LogFormat format, std::ostream& err);

// Makes `logger` spdlog's default logger and its level the global one, so that code that
// logs with spdlog::warn(...) (the engine) writes through it.
void InstallDefaultLogger(std::shared_ptr<spdlog::logger> logger);

}  // namespace cairn::cli
