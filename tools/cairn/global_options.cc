#include "tools/cairn/global_options.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

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

// Makes an open error name the directory, whatever layer produced it.
Status DescribeOpenError(const GlobalOptions& global, const Status& status) {
  std::string message = status.message();
  if (message.find(global.data_dir) == std::string::npos) {
    message = "cannot open data directory " + global.data_dir + ": " + message;
  }
  if (status.code() == StatusCode::kNotFound) {
    message += "; pick another with --data DIR or CAIRN_DATA ('cairn log demo' writes one)";
  }
  return Status(status.code(), std::move(message));
}

storage::StoreOptions BaseOptions(const GlobalOptions& global) {
  storage::StoreOptions options;
  options.clock = global.clock;
  // The CLI reads little; a small cache keeps its footprint small beside an engine.
  options.block_cache_bytes = 8 << 20;
  return options;
}

}  // namespace

void SetAction(CLI::App* command, GlobalOptions& global, std::function<int()> action) {
  command->callback([&global, action = std::move(action)] { global.exit_code = action(); });
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

}  // namespace cairn::cli
