// cairn: the command-line tool. main() builds the real dependencies (clock, randomness,
// streams), lets each command group register itself, parses, and runs the one command
// chosen. Every failure ends as one line on stderr and a non-zero exit code (see
// tools/README.md); no exception leaves main().
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "tools/cairn/audit_command.h"
#include "tools/cairn/global_options.h"
#include "tools/cairn/kill_command.h"
#include "tools/cairn/replay_command.h"
#include "tools/cairn/serve_command.h"
#include "tools/cairn/log_command.h"
#include "tools/cairn/logging.h"
#include "tools/cairn/policy_command.h"
#include "tools/cairn/run_command.h"
#include "tools/cairn/workflow_command.h"

namespace cairn::cli {
namespace {

void AddGlobalOptions(CLI::App& app, GlobalOptions& global) {
  app.add_option("--data", global.data_dir, "Data directory")
      ->type_name("DIR")
      ->envname("CAIRN_DATA")
      ->capture_default_str();
  // "jsonl" is accepted too: the JSON output is already one object per line.
  app.add_option_function<std::string>(
         "-o,--output",
         [&global](std::string name) {
           // The check below accepts any case; it has already rejected other names.
           std::transform(name.begin(), name.end(), name.begin(),
                          [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
           global.output = name == "text" ? OutputFormat::kText : OutputFormat::kJson;
         },
         "Output: text (for people) or json (one JSON object per line)")
      ->check(CLI::IsMember({"text", "json", "jsonl"}, CLI::ignore_case))
      ->default_str("text");
  app.add_option("--tools", global.tools_file,
                 "Tool catalog (YAML); default: DIR/tools.yaml if it exists")
      ->type_name("FILE")
      ->envname("CAIRN_TOOLS");
  app.add_option("--agents", global.agents_file,
                 "Agents file (YAML) for call: agent tasks; default: DIR/agents.yaml if it "
                 "exists")
      ->type_name("FILE")
      ->envname("CAIRN_AGENTS");
  app.add_option_function<std::string>(
         "--as",
         [&global](const std::string& name) {
           global.actor = name;
           global.actor_given = true;
         },
         "Who asks, as recorded in runs (default: $USER, else cli); with --address the "
         "server records the token's owner, and --as may only name that owner")
      ->type_name("NAME")
      ->default_str("$USER");
  app.add_option_function<std::string>(
         "--address",
         [&global](const std::string& url) {
           global.address = url;
           global.address_source = "--address";
           global.address_flag = true;
         },
         "Talk to a running 'cairn serve' at this URL (http://HOST:PORT) instead of opening the "
         "data directory (run, workflow apply/list, kill); default $CAIRN_ADDRESS")
      ->type_name("URL");
  app.add_option("--token-file", global.token_file,
                 "With --address: the file holding the bearer token (default: the token in "
                 "$CAIRN_TOKEN)")
      ->type_name("FILE");
  app.add_option("--log-level", global.log_level, "Diagnostics on stderr at this level and above")
      ->type_name("LEVEL")
      ->check(CLI::IsMember(
          std::vector<std::string>(std::begin(kLogLevelNames), std::end(kLogLevelNames))))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--log-format",
         [&global](const std::string& name) {
           global.log_format = name == "json" ? LogFormat::kJson : LogFormat::kText;
         },
         "Diagnostics as text lines or JSON lines {time, level, logger, message}")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_str("text");
  app.set_version_flag("--version", std::string("cairn ") + CAIRN_VERSION);
}

// "cairn log dump": the deepest command the parser got to, for the --help hint.
std::string CommandPath(const CLI::App& app) {
  std::string path = "cairn";
  const CLI::App* current = &app;
  while (!current->get_subcommands().empty()) {
    current = current->get_subcommands().front();
    path += " " + current->get_name();
  }
  return path;
}

int ReportParseError(const CLI::App& app, const CLI::ParseError& e, const GlobalOptions& global) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
    return app.exit(e);  // --help or --version: printed on stdout
  }
  return Fail(global, std::string(e.what()) + " (see '" + CommandPath(app) + " --help')",
              kExitError);
}

int Main(int argc, char** argv) {
  SystemClock clock;
  Random random(Random::SeedFromEntropy());
  GlobalOptions global;
  global.program = argc > 0 ? argv[0] : "cairn";
  global.clock = &clock;
  global.random = &random;
  global.in = &std::cin;
  global.out = &std::cout;
  global.err = &std::cerr;
  // Defaults that flags override (their callbacks run during the parse).
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') {
    global.actor = user;
  }
  if (const char* address = std::getenv("CAIRN_ADDRESS"); address != nullptr && *address != '\0') {
    global.address = address;
    global.address_source = "$CAIRN_ADDRESS";
  }

  CLI::App app(
      "cairn: a durable, event-sourced workflow engine for hybrid workflow + agent "
      "processes",
      "cairn");
  app.fallthrough();  // global options may follow the subcommand: `cairn log list -o json`
  app.require_subcommand(1);
  AddGlobalOptions(app, global);
  // Runs once every flag is parsed and before the command's action: the engine and the
  // commands then log through this logger.
  app.parse_complete_callback([&global] {
    auto logger = MakeLogger("cairn", global.log_level, global.log_format, *global.err);
    if (logger.ok()) InstallDefaultLogger(std::move(logger).value());
  });
  AddLogCommand(app, global);
  AddWorkflowCommand(app, global);
  AddRunCommand(app, global);
  AddPolicyCommand(app, global);
  AddKillCommand(app, global);
  AddAuditCommands(app, global);
  AddReplayCommand(app, global);
  AddServeCommand(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(app, e, global);
  }
  std::cout.flush();
  return global.exit_code;
}

}  // namespace
}  // namespace cairn::cli

int main(int argc, char** argv) {
  try {
    return cairn::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cairn: internal error: " << e.what() << '\n';
  } catch (...) {
    std::cerr << "cairn: internal error: unknown exception\n";
  }
  return cairn::cli::kExitError;
}
