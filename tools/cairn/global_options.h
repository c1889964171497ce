// What every `cairn` command shares: the global flags, the dependencies main() wires,
// exit codes, and the helpers that turn a Status into one line on stderr.
//
// A command group registers itself on the root CLI11 app with a function of the form
// `void AddXCommand(CLI::App& app, GlobalOptions& global)`; its actions read the global
// flags (parsed before the action runs) and record their exit code with SetAction().
// Nothing here is global state: main() owns the GlobalOptions and everything it points to.
// Single-threaded, like the CLI itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/status.h"
#include "base/text_file.h"
#include "engine/core/engine.h"
#include "engine/tools/catalog.h"
#include "storage/store.h"
#include "tools/cairn/logging.h"

namespace CLI {
class App;
}  // namespace CLI

namespace cairn::cli {

// Exit codes, the same for every command.
inline constexpr int kExitOk = 0;
// The command ran and found a problem in the data (e.g. `log verify` found a broken chain).
inline constexpr int kExitFailed = 1;
// The command could not run: bad usage, a missing, locked or unreadable data directory,
// an unknown run.
inline constexpr int kExitError = 2;

enum class OutputFormat : uint8_t {
  kText,  // for people: aligned tables and sentences
  kJson,  // for programs: one JSON object per line
};

struct GlobalOptions {
  // --data DIR; else $CAIRN_DATA; else ./cairn-data.
  std::string data_dir = "cairn-data";
  // -o text|json.
  OutputFormat output = OutputFormat::kText;
  // --log-level trace|debug|info|warn|error|off and --log-format text|json (stderr).
  std::string log_level = "warn";
  LogFormat log_format = LogFormat::kText;
  // --tools FILE; else $CAIRN_TOOLS; else <data_dir>/tools.yaml if it exists; else none.
  std::string tools_file;
  // --agents FILE; else $CAIRN_AGENTS; else <data_dir>/agents.yaml if it exists; else none
  // (`call: agent` tasks then fault with unknown_agent).
  std::string agents_file;
  // --as NAME: who asks, as recorded in runs (started_by, signals, controls); else $USER;
  // else "cli". `actor_given`: --as was on the command line (remote mode checks it
  // against the token's owner).
  std::string actor;
  bool actor_given = false;

  // Remote mode (tools/cairn/remote.h): --address URL, else $CAIRN_ADDRESS; empty: the
  // commands open the data directory. `address_source` names where it came from
  // ("--address" or "$CAIRN_ADDRESS"); `address_flag`: it was on the command line, so a
  // command that does not talk to a server refuses it rather than ignore it.
  std::string address;
  std::string address_source;
  bool address_flag = false;
  // --token-file FILE: the file holding the bearer token; else $CAIRN_TOKEN.
  std::string token_file;

  // How the user invoked cairn (argv[0]), for the commands we suggest next.
  std::string program = "cairn";

  // Wired by main(); not owned; outlive every command.
  const Clock* clock = nullptr;
  Random* random = nullptr;
  std::istream* in = nullptr;   // `@-` arguments (--input @-)
  std::ostream* out = nullptr;  // data
  std::ostream* err = nullptr;  // errors and notes for people

  // The exit code of the command that ran (set through SetAction()).
  int exit_code = kExitOk;
};

// Whether a command talks to a server when an address is given (remote mode), or works
// on the data directory only.
enum class Reach : uint8_t { kLocal, kRemoteToo };

// Makes `action` the command's action: it runs after all flags are parsed, and its
// return value becomes the process's exit code. A kLocal command refuses an --address
// given on its command line (one from $CAIRN_ADDRESS is not its business: it ignores it).
void SetAction(CLI::App* command, GlobalOptions& global, std::function<int()> action,
               Reach reach = Reach::kLocal);

// "No limit" for a --timeout or --wait: long enough for any run a person waits on, short
// enough that adding it to a clock cannot overflow.
inline constexpr std::chrono::milliseconds kWaitForever = std::chrono::hours(24 * 365);

// A duration flag: "500ms", "10s", "2m", "1h", "1m30s", "0", or ISO 8601 ("PT1M30S"), at
// most kWaitForever. kInvalidArgument names `flag` and the expected forms.
Result<std::chrono::milliseconds> ParseDurationFlag(std::string_view text, std::string_view flag);

// Prints "cairn: <message>" as one line on stderr and returns kExitError (or `code`).
int Fail(const GlobalOptions& global, std::string_view message, int code = kExitError);
int Fail(const GlobalOptions& global, const Status& status, int code = kExitError);

// Opens the data directory read-only, without the owner lock, so that it works beside a
// running owner. On failure returns a Status whose message names the directory and what
// is wrong (missing, not a cairn store, damaged), ready for Fail().
Result<std::unique_ptr<storage::Store>> OpenStoreReadOnly(const GlobalOptions& global);
// Opens (creating if missing) the data directory as its owner, taking the lock.
// kFailedPrecondition names the process that holds it. `salvage_wal`: see StoreOptions.
Result<std::unique_ptr<storage::Store>> OpenStoreForWriting(const GlobalOptions& global,
                                                            storage::Durability durability,
                                                            std::string owner_description,
                                                            bool salvage_wal = false);

// Makes a Status from opening the data directory name the directory, whatever layer
// produced it, with a hint when it does not exist.
Status DescribeOpenError(const GlobalOptions& global, const Status& status);

// The tool catalog the commands use, and the file it came from ("" when there is none):
// --tools / $CAIRN_TOOLS if given (which must exist), else <data_dir>/tools.yaml if it
// exists, else an empty catalog. Errors: the catalog's (file:line:col: tool '...': ...).
struct LoadedCatalog {
  engine::ToolCatalog catalog;
  std::string source;
};
Result<LoadedCatalog> LoadToolCatalog(const GlobalOptions& global);

// The agents file of --agents / $CAIRN_AGENTS (which must exist), else
// <data_dir>/agents.yaml if it exists; null when there is none. Errors: the file's
// (FILE:LINE:COL: agent '...': ...), on one line, prefixed "agents file: ".
Result<std::shared_ptr<agent::AgentRegistry>> LoadAgents(const GlobalOptions& global);

// How a command uses the engine it opens.
enum class EngineUse : uint8_t {
  // Record only (applying definitions, `run start` without --wait, which defers its
  // start): nothing is resumed on open, nothing is driven.
  kRecord,
  // Drive the runs the command touches (`run start --wait`, signal, cancel, ...): nothing
  // else is resumed on open.
  kDriveTouched,
  // Resume every non-terminal run on open and drive them (`run resume`).
  kDriveAll,
};

// Opens the data directory as the owner with an embedded engine (synced writes, the
// clock of `global`), with the tools of `tools` registered and the agents of the agents
// file (--agents / $CAIRN_AGENTS, which must exist, else <data_dir>/agents.yaml if it
// exists; its errors are the file's, FILE:LINE:COL: agent '...': ...). `must_exist`: refuse a
// missing directory (kNotFound) instead of creating it. The lock error (kFailedPrecondition) names
// the holding process. The caller closes the engine.
Result<std::unique_ptr<engine::Engine>> OpenEngine(
    const GlobalOptions& global, const LoadedCatalog& tools, EngineUse use, bool must_exist,
    std::string owner_description,
    std::function<void(const engine::TransitionRecord&)> on_transition = nullptr);

// Opens the engine as OpenEngine does (the directory must exist; the catalog of
// LoadToolCatalog), runs `body`, closes the engine, and returns `body`'s exit code; a
// failure to open or close is a Fail() line, exit 2 (a close error wins over success).
int WithEngine(const GlobalOptions& global, EngineUse use, const std::string& owner,
               const std::function<int(engine::Engine&)>& body);

// Money in decimal units from millionths: 2500000 -> "2.50", 1 -> "0.000001" (at least two
// decimals, trailing zeros dropped).
std::string FormatMoney(int64_t micros);

// `object[key]` as text: a string as is, other values as JSON, "" when absent or null.
std::string JsonText(const nlohmann::json& object, const char* key);
// `text` cut to at most `bytes_max` bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string text, size_t bytes_max);

// One JSON value as one line, never throwing on invalid UTF-8 (replaced by U+FFFD).
std::string JsonLine(const nlohmann::json& value);

// Prints `rows` under `headers` as left-aligned columns separated by two spaces.
void PrintTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows);

// "namespace/name:version" of a run's workflow ("-" when unknown); `version_separator`
// ':' as workflow references are written, '@' as `cairn log list` shows them.
std::string WorkflowLabel(const storage::RunHeader& header, char version_separator = ':');
// "failed (approval_denied)": the status, and the stop reason when it says more.
std::string StatusLabel(const storage::RunHeader& header);

}  // namespace cairn::cli
