#include "tests/support/store_audit.h"

#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "base/limits.h"
#include "base/sha256.h"

namespace cairn::testing {
namespace {

using storage::RunStatus;
using storage::RunSummary;
using storage::Store;
using storage::StoredEvent;

constexpr size_t kProblemsMax = 50;  // enough to diagnose; keeps a failure readable

class Auditor {
 public:
  explicit Auditor(const Store& store) : store_(store) {}

  StoreAudit Run() {
    CheckRuns();
    CheckTimers();
    CheckVerifyAll();
    CheckActiveSet();
    CheckStatusIndex();
    return std::move(audit_);
  }

 private:
  void Problem(std::string text) {
    if (audit_.problems.size() < kProblemsMax) {
      audit_.problems.push_back(std::move(text));
    } else if (audit_.problems.size() == kProblemsMax) {
      audit_.problems.push_back("... (more problems not shown)");
    }
  }

  // All pages of a listing; nullopt (and a problem) on error.
  template <typename List>
  std::optional<std::vector<RunSummary>> ListAll(const char* what, List list) {
    std::vector<RunSummary> all;
    std::string after;
    for (;;) {
      auto page = list(after);
      if (!page.ok()) {
        Problem(std::string(what) + " failed: " + page.status().ToString());
        return std::nullopt;
      }
      if (page->empty()) return all;
      after = page->back().run_id.str();
      for (auto& r : *page) all.push_back(std::move(r));
    }
  }

  void CheckRuns() {
    auto runs = ListAll("ListRuns", [&](const std::string& after) {
      return store_.ListRuns(std::nullopt, after, limits::list_runs_max);
    });
    if (!runs.has_value()) return;
    for (const RunSummary& summary : *runs) CheckRun(summary);
  }

  void CheckRun(const RunSummary& summary) {
    const RunId& id = summary.run_id;
    const std::string name = "run " + id.str();
    auto header = store_.GetRun(id);
    if (!header.ok()) {
      Problem(name + ": listed, but GetRun fails: " + header.status().ToString());
      return;
    }
    if (header->run_id != id) Problem(name + ": header names run " + header->run_id.str());
    if (header->status != summary.status) {
      Problem(name + ": ListRuns says " + std::string(Name(summary.status)) + ", the header says " +
              std::string(Name(header->status)));
    }
    uint64_t count = 0;
    Sha256 chain;
    bool last_is_stop = false;
    Status scan = store_.ScanHistory(id, 0, [&](const StoredEvent& e) {
      ReplayIndexes(id, e.event);
      const std::string at = name + ", event " + std::to_string(count);
      if (e.event.run_id != id || e.event.seq.value() != count) {
        Problem(at + ": read back as run " + e.event.run_id.str() + " seq " +
                std::to_string(e.event.seq.value()));
      }
      const bool is_start = std::holds_alternative<storage::RunStarted>(e.event.body);
      if (is_start != (count == 0)) {
        Problem(at + ": is " + std::string(storage::KindName(e.event.body)) +
                (count == 0 ? ", not run_started" : "; run_started may only come first"));
      }
      if (last_is_stop) Problem(at + ": follows run_stopped");
      last_is_stop = std::holds_alternative<storage::RunStopped>(e.event.body);
      if (e.event.prev_hash != chain) {
        Problem(at + ": prev_hash " + e.event.prev_hash.Hex() + ", expected " + chain.Hex());
      }
      chain = Sha256::Of(chain.view(), e.bytes);
      ++count;
      return true;
    });
    if (!scan.ok()) Problem(name + ": ScanHistory fails: " + scan.ToString());
    audit_.events += count;
    if (count != header->next_seq) {
      Problem(name + ": " + std::to_string(count) + " events, but the header's next_seq is " +
              std::to_string(header->next_seq));
    }
    if (count == 0) Problem(name + ": has a header but no events");
    if (header->chain_head != chain) {
      Problem(name + ": header chain head " + header->chain_head.Hex() + ", the events hash to " +
              chain.Hex());
    }
    if (storage::IsTerminal(header->status) != last_is_stop) {
      Problem(name + ": status " + std::string(Name(header->status)) +
              (last_is_stop ? " is not terminal, yet the history ends with run_stopped"
                            : " is terminal, yet the history does not end with run_stopped"));
    }
    audit_.runs[id] = AuditedRun{header->status, header->next_seq, last_is_stop};
  }

  // What the timers and dedupe families must hold, replayed from the event.
  void ReplayIndexes(const RunId& id, const storage::Event& event) {
    if (const auto* started = std::get_if<storage::RunStarted>(&event.body);
        started != nullptr && !started->start_key.empty()) {
      auto owner = store_.FindStartKey(started->start_key);
      if (!owner.ok() || *owner != std::optional<RunId>(id)) {
        Problem("run " + id.str() + ": start key '" + started->start_key + "' maps to " +
                (!owner.ok()          ? owner.status().ToString()
                 : owner->has_value() ? "run " + (*owner)->str()
                                      : std::string("nothing")));
      }
    } else if (const auto* t = std::get_if<storage::TimerScheduled>(&event.body)) {
      timers_[{t->due_at_ns, id.str(), t->timer_id}] = t->purpose;
    } else if (const auto* f = std::get_if<storage::TimerFired>(&event.body)) {
      timers_.erase({f->due_at_ns, id.str(), f->timer_id});
    } else if (const auto* c = std::get_if<storage::TimerCancelled>(&event.body)) {
      timers_.erase({c->due_at_ns, id.str(), c->timer_id});
    } else if (std::holds_alternative<storage::RunStopped>(event.body)) {
      // A stopped run's timers never fire: the store drops them with the run.
      std::erase_if(timers_, [&](const auto& entry) { return std::get<1>(entry.first) == id.str(); });
    }
  }

  // The timers family holds exactly the timers the histories leave scheduled, and
  // DueTimers() returns them earliest first.
  void CheckTimers() {
    constexpr size_t kTimersMax = 1 << 20;
    auto due = store_.DueTimers(std::numeric_limits<int64_t>::max(), kTimersMax);
    if (!due.ok()) {
      Problem("DueTimers fails: " + due.status().ToString());
      return;
    }
    std::map<TimerKey, storage::TimerPurpose> listed;
    for (size_t i = 0; i < due->size(); ++i) {
      const storage::DueTimer& t = (*due)[i];
      if (i > 0 && (*due)[i - 1].due_at_ns > t.due_at_ns) {
        Problem("DueTimers is not ordered by due time at entry " + std::to_string(i));
      }
      listed[{t.due_at_ns, t.run_id.str(), t.timer_id}] = t.purpose;
    }
    if (listed == timers_) return;
    size_t shown = 0;
    for (const auto& [key, purpose] : timers_) {
      auto it = listed.find(key);
      if ((it == listed.end() || it->second != purpose) && shown++ < 5) {
        Problem("run " + std::get<1>(key) + ": timer '" + std::get<2>(key) + "' due " +
                std::to_string(std::get<0>(key)) + " is scheduled by its history but " +
                (it == listed.end() ? "missing from" : "has another purpose in") +
                " the timers family");
      }
    }
    for (const auto& [key, purpose] : listed) {
      if (timers_.count(key) == 0 && shown++ < 10) {
        Problem("run " + std::get<1>(key) + ": timer '" + std::get<2>(key) + "' due " +
                std::to_string(std::get<0>(key)) +
                " is in the timers family but not scheduled by its history");
      }
    }
  }

  void CheckVerifyAll() {
    std::set<std::string> reported;
    auto failures = store_.VerifyAll([&](const storage::VerifyReport& r) {
      if (!reported.insert(r.run_id.str()).second) {
        Problem("VerifyAll reported run " + r.run_id.str() + " twice");
      }
      if (!r.ok) {
        Problem("VerifyAll: run " + r.run_id.str() + " fails at seq " +
                (r.first_bad_seq ? std::to_string(*r.first_bad_seq) : std::string("?")) + ": " +
                r.problem);
      } else if (auto it = audit_.runs.find(r.run_id);
                 it != audit_.runs.end() && r.events_checked != it->second.next_seq) {
        Problem("VerifyAll: run " + r.run_id.str() + " checked " +
                std::to_string(r.events_checked) + " events of " +
                std::to_string(it->second.next_seq));
      }
    });
    if (!failures.ok()) {
      Problem("VerifyAll fails: " + failures.status().ToString());
      return;
    }
    if (*failures != 0) Problem("VerifyAll counts " + std::to_string(*failures) + " failures");
    for (const auto& [id, run] : audit_.runs) {
      if (reported.count(id.str()) == 0) Problem("VerifyAll did not report run " + id.str());
    }
    if (reported.size() != audit_.runs.size()) {
      Problem("VerifyAll reported " + std::to_string(reported.size()) + " runs; " +
              std::to_string(audit_.runs.size()) + " have headers (events without a header?)");
    }
  }

  void CheckActiveSet() {
    auto active = ListAll("ListActiveRuns", [&](const std::string& after) {
      return store_.ListActiveRuns(after, limits::list_runs_max);
    });
    if (!active.has_value()) return;
    std::map<RunId, RunStatus> listed;
    for (const RunSummary& r : *active) listed[r.run_id] = r.status;
    for (const auto& [id, run] : audit_.runs) {
      auto it = listed.find(id);
      const bool terminal = storage::IsTerminal(run.status);
      if (terminal && it != listed.end()) {
        Problem("run " + id.str() + " is " + std::string(Name(run.status)) +
                " but listed as active");
      } else if (!terminal && it == listed.end()) {
        Problem("run " + id.str() + " is " + std::string(Name(run.status)) +
                " but missing from the active set");
      } else if (!terminal && it->second != run.status) {
        Problem("run " + id.str() + " is " + std::string(Name(run.status)) + " but active as " +
                std::string(Name(it->second)));
      }
    }
    for (const auto& [id, status] : listed) {
      if (audit_.runs.count(id) == 0) Problem("active set lists unknown run " + id.str());
    }
  }

  void CheckStatusIndex() {
    std::map<RunId, RunStatus> indexed;
    for (uint8_t s = 1; s <= static_cast<uint8_t>(RunStatus::kKilled); ++s) {
      const auto status = static_cast<RunStatus>(s);
      auto listed = ListAll("ListRuns by status", [&](const std::string& after) {
        return store_.ListRuns(status, after, limits::list_runs_max);
      });
      if (!listed.has_value()) return;
      for (const RunSummary& r : *listed) {
        if (!indexed.emplace(r.run_id, status).second) {
          Problem("run " + r.run_id.str() + " is indexed under two statuses");
        }
      }
    }
    for (const auto& [id, run] : audit_.runs) {
      auto it = indexed.find(id);
      if (it == indexed.end() || it->second != run.status) {
        Problem("run " + id.str() + " is " + std::string(Name(run.status)) +
                " but the status index says " +
                (it == indexed.end() ? std::string("nothing") : std::string(Name(it->second))));
      }
    }
    if (indexed.size() != audit_.runs.size()) {
      Problem("status index holds " + std::to_string(indexed.size()) + " runs; " +
              std::to_string(audit_.runs.size()) + " have headers");
    }
  }

  using TimerKey = std::tuple<int64_t, std::string, std::string>;  // due, run, timer id

  const Store& store_;
  StoreAudit audit_;
  std::map<TimerKey, storage::TimerPurpose> timers_;  // replayed from the histories
};

}  // namespace

StoreAudit AuditStore(const Store& store) { return Auditor(store).Run(); }

std::string Describe(const StoreAudit& audit) {
  std::string out;
  for (const std::string& p : audit.problems) out += "  " + p + "\n";
  return out;
}

}  // namespace cairn::testing
