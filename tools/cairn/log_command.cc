#include "tools/cairn/log_command.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/limits.h"
#include "storage/event_json.h"
#include "tools/cairn/demo_command.h"

namespace cairn::cli {
namespace {

constexpr size_t kListLimitDefault = 1000;

// ---- log list ----

struct ListOptions {
  std::string status;
  size_t limit = kListLimitDefault;
  std::string after;
};

// RFC 3339 to the second: the nanoseconds are in the JSON output.
std::string TimeToSeconds(int64_t ns) {
  std::string text = storage::FormatTimeRfc3339(ns);
  const size_t dot = text.find('.');
  if (dot != std::string::npos && text.back() == 'Z') text.erase(dot, text.size() - 1 - dot);
  return text;
}

void PrintRunsText(const GlobalOptions& global, const std::vector<storage::RunHeader>& runs) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(runs.size());
  for (const auto& h : runs) {
    rows.push_back({h.run_id.str(), StatusLabel(h), WorkflowLabel(h, '@'),
                    std::to_string(h.next_seq), TimeToSeconds(h.updated_at_ns)});
  }
  PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW", "EVENTS", "UPDATED"}, rows);
}

Result<std::optional<storage::RunStatus>> ParseStatusFilter(const std::string& text) {
  if (text.empty()) return std::optional<storage::RunStatus>();
  auto status = storage::ParseRunStatus(text);
  if (!status.ok()) return status.status().WithContext("--status");
  return std::optional<storage::RunStatus>(*status);
}

struct RunPage {
  std::vector<storage::RunHeader> runs;
  bool more = false;  // runs follow the last one
};

Result<RunPage> ReadRunPage(const storage::Store& store,
                            const std::optional<storage::RunStatus>& status,
                            const ListOptions& options) {
  // One more than asked tells whether there is a next page.
  CAIRN_ASSIGN_OR_RETURN(
      auto summaries,
      store.ListRuns(status, options.after, std::min(options.limit + 1, limits::list_runs_max)));
  RunPage page;
  page.more = summaries.size() > options.limit;
  if (page.more) summaries.resize(options.limit);
  page.runs.reserve(summaries.size());
  for (const auto& summary : summaries) {
    CAIRN_ASSIGN_OR_RETURN(auto header, store.GetRun(summary.run_id));
    page.runs.push_back(std::move(header));
  }
  return page;
}

int RunList(const GlobalOptions& global, const ListOptions& options) {
  auto status = ParseStatusFilter(options.status);
  if (!status.ok()) return Fail(global, status.status());
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto page = ReadRunPage(**store, *status, options);
  if (!page.ok()) {
    return Fail(global, page.status().WithContext("reading runs in " + global.data_dir));
  }
  if (global.output == OutputFormat::kJson) {
    for (const auto& h : page->runs) {
      *global.out << JsonLine(storage::RunHeaderToJson(h)) << '\n';
    }
  } else if (page->runs.empty()) {
    *global.err << "no runs" << (options.status.empty() ? "" : " with status " + options.status)
                << " in " << global.data_dir << '\n';
  } else {
    PrintRunsText(global, page->runs);
  }
  if (page->more) {
    global.out->flush();
    *global.err << "more runs follow: add --after " << page->runs.back().run_id.str() << '\n';
  }
  return kExitOk;
}

void AddList(CLI::App& log, GlobalOptions& global) {
  auto options = std::make_shared<ListOptions>();
  CLI::App* list =
      log.add_subcommand("list", "List runs: id, status, workflow, events, last update");
  list->add_option("--status", options->status,
                   "Only runs with this status (running, waiting, blocked, completed, failed, "
                   "cancelled, killed)")
      ->type_name("STATUS");
  list->add_option("--limit", options->limit, "At most N runs")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, limits::list_runs_max));
  list->add_option("--after", options->after, "Start after this run id (runs are in id order)")
      ->type_name("RUN");
  SetAction(list, global, [&global, options] { return RunList(global, *options); });
}

// ---- log dump ----

struct DumpOptions {
  std::string run;
  uint64_t from = 0;
  uint64_t limit = 0;  // 0: all
};

int RunDump(const GlobalOptions& global, const DumpOptions& options) {
  auto run_id = RunId::Parse(options.run);
  if (!run_id.ok()) {
    return Fail(global, run_id.status().WithContext("run id '" + options.run + "'"));
  }
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());

  uint64_t printed = 0;
  Status scanned = (*store)->ScanHistory(*run_id, options.from, [&](const storage::StoredEvent& e) {
    *global.out << JsonLine(storage::EventToJson(e.event)) << '\n';
    ++printed;
    return options.limit == 0 || printed < options.limit;
  });
  global.out->flush();
  if (!scanned.ok()) return Fail(global, scanned);
  if (printed == 0 && options.from > 0) {
    // Past the end of an existing run is an empty dump; an unknown run is an error.
    auto header = (*store)->GetRun(*run_id);
    if (!header.ok()) return Fail(global, header.status());
  }
  return kExitOk;
}

void AddDump(CLI::App& log, GlobalOptions& global) {
  auto options = std::make_shared<DumpOptions>();
  CLI::App* dump = log.add_subcommand(
      "dump", "Print a run's events as JSON lines (always JSON, whatever -o says)");
  dump->add_option("run", options->run, "Run id")->type_name("RUN")->required();
  dump->add_option("--from", options->from, "First sequence number")
      ->type_name("SEQ")
      ->capture_default_str();
  dump->add_option("--limit", options->limit, "At most N events (default: all)")->type_name("N");
  SetAction(dump, global, [&global, options] { return RunDump(global, *options); });
}

// ---- log verify ----

struct VerifyOptions {
  std::vector<std::string> runs;
};

struct VerifyTally {
  uint64_t runs = 0;
  uint64_t failed = 0;
  uint64_t events = 0;
};

nlohmann::json ReportToJson(const storage::VerifyReport& r) {
  nlohmann::json j = {{"run_id", r.run_id.str()},
                      {"ok", r.ok},
                      {"events_checked", r.events_checked},
                      {"first_bad_seq", nullptr},
                      {"problem", r.problem}};
  if (r.first_bad_seq.has_value()) j["first_bad_seq"] = *r.first_bad_seq;
  return j;
}

void PrintReport(const GlobalOptions& global, const storage::VerifyReport& r) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine(ReportToJson(r)) << '\n';
    return;
  }
  if (r.ok) return;
  *global.out << (r.run_id.empty() ? "(malformed run id)" : r.run_id.str()) << ": ";
  if (r.first_bad_seq.has_value()) *global.out << "first bad seq " << *r.first_bad_seq << ": ";
  *global.out << r.problem << '\n';
}

void PrintSummary(const GlobalOptions& global, const VerifyTally& tally) {
  if (global.output == OutputFormat::kJson) return;
  if (tally.failed == 0) {
    *global.out << "verified " << tally.runs << (tally.runs == 1 ? " run, " : " runs, ")
                << tally.events << " events: all chains intact\n";
  } else {
    *global.out << tally.failed << " of " << tally.runs << " runs failed verification\n";
  }
}

// Verifies the named runs; an unknown one is reported and makes the exit code kExitError.
int VerifyNamed(const GlobalOptions& global, const storage::Store& store,
                const std::vector<RunId>& runs,
                const std::function<void(const storage::VerifyReport&)>& on_report) {
  int code = kExitOk;
  for (const RunId& run : runs) {
    auto report = store.VerifyRun(run);
    if (report.ok()) {
      on_report(*report);
    } else if (report.status().code() == StatusCode::kNotFound) {
      code = Fail(global, report.status());
    } else {
      return Fail(global, report.status().WithContext("verifying run " + run.str()));
    }
  }
  return code;
}

}  // namespace

int VerifyCommand(const GlobalOptions& global, const std::vector<std::string>& run_texts,
                  bool check_headers) {
  std::vector<RunId> runs;
  for (const std::string& text : run_texts) {
    auto run = RunId::Parse(text);
    if (!run.ok()) return Fail(global, run.status().WithContext("run id '" + text + "'"));
    runs.push_back(std::move(run).value());
  }
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());

  VerifyTally tally;
  const storage::Store& reader = **store;
  auto on_report = [&](const storage::VerifyReport& checked) {
    storage::VerifyReport r = checked;
    if (check_headers) storage::CheckRunHeader(reader, r);
    ++tally.runs;
    tally.events += r.events_checked;
    if (!r.ok) ++tally.failed;
    PrintReport(global, r);
  };
  int code = kExitOk;
  if (runs.empty()) {
    auto failed = (*store)->VerifyAll(on_report);
    if (!failed.ok()) {
      // The walk itself hit unreadable data: the store did not verify.
      global.out->flush();
      return Fail(
          global,
          failed.status().WithContext("verification of " + global.data_dir + " stopped after " +
                                      std::to_string(tally.runs) + " runs"),
          failed.status().code() == StatusCode::kDataLoss ? kExitFailed : kExitError);
    }
  } else {
    code = VerifyNamed(global, **store, runs, on_report);
  }
  PrintSummary(global, tally);
  if (code != kExitOk) return code;
  return tally.failed == 0 ? kExitOk : kExitFailed;
}

namespace {

void AddVerify(CLI::App& log, GlobalOptions& global) {
  auto options = std::make_shared<VerifyOptions>();
  CLI::App* verify = log.add_subcommand(
      "verify",
      "Check the hash chains of the given runs, or of every run; exit 1 if one is broken");
  verify->add_option("runs", options->runs, "Run ids (default: every run)")->type_name("RUN...");
  SetAction(verify, global, [&global, options] {
    return VerifyCommand(global, options->runs, /*check_headers=*/false);
  });
}

// ---- log salvage ----

int RunSalvage(const GlobalOptions& global) {
  auto store = OpenStoreForWriting(global, storage::Durability::kSync, "cairn log salvage",
                                   /*salvage_wal=*/true);
  if (!store.ok()) return Fail(global, store.status());
  VerifyTally tally;
  auto failed = (*store)->VerifyAll([&](const storage::VerifyReport& r) {
    ++tally.runs;
    tally.events += r.events_checked;
    if (!r.ok) ++tally.failed;
    PrintReport(global, r);
  });
  Status closed = (*store)->Close();
  if (!failed.ok()) return Fail(global, failed.status().WithContext("after salvage"), kExitFailed);
  if (!closed.ok()) return Fail(global, closed.WithContext("closing after salvage"));
  *global.err << "cairn: " << global.data_dir
              << " opened with point-in-time recovery; anything after the damaged log record "
                 "was discarded\n";
  PrintSummary(global, tally);
  return tally.failed == 0 ? kExitOk : kExitFailed;
}

void AddSalvage(CLI::App& log, GlobalOptions& global) {
  CLI::App* salvage = log.add_subcommand(
      "salvage",
      "Open a store whose write-ahead log is damaged, keeping what precedes the damage and "
      "DISCARDING what follows; then verify every chain");
  SetAction(salvage, global, [&global] { return RunSalvage(global); });
}

}  // namespace

void AddLogCommand(CLI::App& app, GlobalOptions& global) {
  CLI::App* log = app.add_subcommand("log", "Inspect the event log (read-only) or write the demo");
  log->require_subcommand(1);
  AddList(*log, global);
  AddDump(*log, global);
  AddVerify(*log, global);
  AddSalvage(*log, global);
  AddDemoCommand(*log, global);
}

}  // namespace cairn::cli
