#include "tools/cairn/global_options.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "agent/config.h"
#include "engine/definition/duration.h"

namespace cairn::cli {
namespace {

// Store errors are already one sentence; a few come from RocksDB with line breaks.
std::string OneLine(std::string_view text) {
  std::string line(text);
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::replace(line.begin(), line.end(), '\r', ' ');
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

storage::StoreOptions BaseOptions(const GlobalOptions& global) {
  storage::StoreOptions options;
  options.clock = global.clock;
  // The CLI reads little; a small cache keeps its footprint small beside an engine.
  options.block_cache_bytes = 8 << 20;
  return options;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDurationFlag(std::string_view text, std::string_view flag) {
  auto invalid = [&] {
    return Status::InvalidArgument(std::string(flag) + ": '" + std::string(text) +
                                   "' is not a duration (expected e.g. 500ms, 10s, 2m, 1h, "
                                   "1m30s or PT1M30S)");
  };
  if (text == "0") return std::chrono::milliseconds(0);
  if (!text.empty() && (text[0] == 'P' || text[0] == 'p')) {
    std::string upper(text);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    auto ms = engine::ParseIsoDuration(upper, static_cast<uint64_t>(kWaitForever.count()));
    if (!ms.ok()) return ms.status().WithContext(flag);
    return std::chrono::milliseconds(static_cast<int64_t>(*ms));
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
      ++digits;
    }
    size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    if (digits == i || digits - i > 9) return invalid();
    const int64_t number = std::stoll(std::string(text.substr(i, digits - i)));
    const std::string_view unit = text.substr(digits, unit_end - digits);
    if (unit == "ms")
      total += number;
    else if (unit == "s")
      total += number * 1000;
    else if (unit == "m")
      total += number * 60'000;
    else if (unit == "h")
      total += number * 3'600'000;
    else
      return invalid();
    i = unit_end;
  }
  if (text.empty()) return invalid();
  if (total > kWaitForever.count()) {
    return Status::InvalidArgument(std::string(flag) + ": '" + std::string(text) +
                                   "' is longer than the limit of 365 days");
  }
  return std::chrono::milliseconds(total);
}

Status DescribeOpenError(const GlobalOptions& global, const Status& status) {
  std::string message = status.message();
  if (message.find(global.data_dir) == std::string::npos) {
    message = "cannot open data directory " + global.data_dir + ": " + message;
  }
  if (status.code() == StatusCode::kNotFound) {
    message +=
        "; pick another with --data DIR or CAIRN_DATA ('cairn workflow apply' or 'cairn log "
        "demo' writes one)";
  }
  return Status(status.code(), std::move(message));
}

Result<LoadedCatalog> LoadToolCatalog(const GlobalOptions& global) {
  LoadedCatalog loaded;
  if (!global.tools_file.empty()) {
    loaded.source = global.tools_file;
  } else {
    const std::string implicit = global.data_dir + "/tools.yaml";
    std::error_code error;
    if (!std::filesystem::exists(implicit, error)) return loaded;
    loaded.source = implicit;
  }
  CAIRN_RETURN_IF_ERROR(loaded.catalog.LoadFile(loaded.source));
  return loaded;
}

Result<std::shared_ptr<agent::AgentRegistry>> LoadAgents(const GlobalOptions& global) {
  std::string path = global.agents_file;
  if (path.empty()) {
    const std::string implicit = global.data_dir + "/agents.yaml";
    std::error_code error;
    if (!std::filesystem::exists(implicit, error)) return std::shared_ptr<agent::AgentRegistry>();
    path = implicit;
  }
  auto agents = agent::AgentRegistry::LoadFile(path);
  if (!agents.ok()) {
    std::string message = agents.status().message();
    std::replace(message.begin(), message.end(), '\n', ';');
    return Status(agents.status().code(), "agents file: " + message);
  }
  spdlog::info("{} agents from {}", (*agents)->size(), path);
  return agents;
}

Result<std::unique_ptr<engine::Engine>> OpenEngine(
    const GlobalOptions& global, const LoadedCatalog& tools, EngineUse use, bool must_exist,
    std::string owner_description,
    std::function<void(const engine::TransitionRecord&)> on_transition) {
  std::error_code error;
  if (must_exist && !std::filesystem::exists(global.data_dir, error)) {
    return DescribeOpenError(
        global, Status::NotFound("data directory " + global.data_dir + " does not exist"));
  }
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<agent::AgentRegistry> agents, LoadAgents(global));
  engine::EngineOptions options;
  options.agents = std::move(agents);
  options.data_dir = global.data_dir;
  options.clock = global.clock;
  options.owner_description = std::move(owner_description);
  // Registered before Open resumes any run (kDriveAll): a resumed run must find its tools.
  options.tools = tools.catalog;
  options.resume_on_open = use == EngineUse::kDriveAll;
  options.on_transition = std::move(on_transition);
  auto engine = engine::Engine::Open(std::move(options));
  if (!engine.ok()) return DescribeOpenError(global, engine.status());
  spdlog::info("engine open on {} ({} tools{}{})", global.data_dir, (*engine)->catalog().size(),
               tools.source.empty() ? "" : " from ", tools.source);
  return engine;
}

// Opens the engine, runs `body`, closes the engine; a close error wins over success.
int WithEngine(const GlobalOptions& global, EngineUse use, const std::string& owner,
               const std::function<int(engine::Engine&)>& body) {
  auto tools = LoadToolCatalog(global);
  if (!tools.ok()) {
    std::string message = tools.status().message();
    std::replace(message.begin(), message.end(), '\n', ';');
    return Fail(global, "tool catalog: " + message);
  }
  auto engine = OpenEngine(global, *tools, use, /*must_exist=*/true, owner);
  if (!engine.ok()) return Fail(global, engine.status());
  const int code = body(**engine);
  global.out->flush();
  Status closed = (*engine)->Close();
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));
  return code;
}

// 2500000 -> "2.50", 1 -> "0.000001": at least two decimals, trailing zeros dropped.
std::string FormatMoney(int64_t micros) {
  const bool negative = micros < 0;
  const uint64_t magnitude =
      negative ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  std::string fraction = std::to_string(magnitude % 1'000'000);
  fraction.insert(0, 6 - fraction.size(), '0');
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return (negative ? "-" : "") + std::to_string(magnitude / 1'000'000) + "." + fraction;
}

std::string JsonText(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string TruncateUtf8(std::string text, size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  text.resize(bytes_max);
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
  if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0x80) != 0) text.pop_back();
  return text;
}

void SetAction(CLI::App* command, GlobalOptions& global, std::function<int()> action, Reach reach) {
  command->callback([&global, command, reach, action = std::move(action)] {
    // (A group's action runs after its subcommand's, which has answered already.)
    if (reach == Reach::kLocal && global.address_flag && command->get_subcommands().empty()) {
      std::string path;
      for (const CLI::App* at = command; at != nullptr; at = at->get_parent()) {
        path.insert(0, at->get_parent() == nullptr ? "cairn" : " " + at->get_name());
      }
      global.exit_code = Fail(global, "--address " + global.address + ": '" + path +
                                          "' does not talk to a server; it works on the data "
                                          "directory (--data DIR). --address applies to 'cairn "
                                          "run', 'cairn workflow' and 'cairn kill'");
      return;
    }
    global.exit_code = action();
  });
}

int Fail(const GlobalOptions& global, std::string_view message, int code) {
  *global.err << "cairn: " << OneLine(message) << '\n' << std::flush;
  return code;
}

int Fail(const GlobalOptions& global, const Status& status, int code) {
  return Fail(global, std::string_view(status.message()), code);
}

Result<std::unique_ptr<storage::Store>> OpenStoreReadOnly(const GlobalOptions& global) {
  storage::StoreOptions options = BaseOptions(global);
  options.read_only = true;
  auto store = storage::Store::Open(global.data_dir, std::move(options));
  if (!store.ok()) return DescribeOpenError(global, store.status());
  return store;
}

Result<std::unique_ptr<storage::Store>> OpenStoreForWriting(const GlobalOptions& global,
                                                            storage::Durability durability,
                                                            std::string owner_description,
                                                            bool salvage_wal) {
  storage::StoreOptions options = BaseOptions(global);
  options.durability = durability;
  options.salvage_wal = salvage_wal;
  options.owner_description = std::move(owner_description);
  auto store = storage::Store::Open(global.data_dir, std::move(options));
  if (!store.ok()) return DescribeOpenError(global, store.status());
  return store;
}

std::string JsonLine(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void PrintTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) widths[i] = headers[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line.append(widths[i] - cells[i].size() + 2, ' ');
    }
    out << line << '\n';
  };
  print_row(headers);
  for (const auto& row : rows) print_row(row);
}

std::string WorkflowLabel(const storage::RunHeader& h, char version_separator) {
  std::string label =
      h.workflow_namespace.empty() ? h.workflow_name : h.workflow_namespace + "/" + h.workflow_name;
  if (!h.workflow_version.empty()) label += version_separator + h.workflow_version;
  return label.empty() ? "-" : label;
}

std::string StatusLabel(const storage::RunHeader& h) {
  std::string label(storage::Name(h.status));
  // "failed (approval_denied)" says more than "failed"; "completed (completed)" does not.
  if (h.stop_reason != storage::StopReason::kNone &&
      storage::Name(h.stop_reason) != storage::Name(h.status)) {
    label += " (" + std::string(storage::Name(h.stop_reason)) + ")";
  }
  return label;
}

}  // namespace cairn::cli
