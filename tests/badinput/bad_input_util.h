// Shared fixture of the bad-input tests: an Engine on a fresh data directory, and the
// checks that "nothing already recorded is lost" -- histories compared event by event,
// hash chains verified, and the whole database compared key by key.
//
// Each test owns its engine (a real store, buffered durability, the real executors);
// nothing is shared between tests. Not thread-safe: one test, one thread driving it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/json.h"
#include "engine/core/engine.h"
#include "storage/event.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine::badinput {

using namespace std::chrono_literals;

// Every key and value of every column family of a closed (or live) store's database:
// family name -> (key -> value). Read through a read-only RocksDB handle.
using DatabaseContents = std::map<std::string, std::map<std::string, std::string>>;
DatabaseContents ReadDatabase(const std::string& data_dir);

// What differs between two snapshots, one line per family and key ("" if equal). Keys are
// shown in hex, values by size only: enough to point at the record that changed.
std::string DescribeDifference(const DatabaseContents& before, const DatabaseContents& after);

// True once no process `pid` exists (a zombie still counts as existing), polling up to
// `timeout`.
bool ProcessGone(int pid, std::chrono::milliseconds timeout);

// The first line of a file as an integer (a pid a command wrote), or -1.
int ReadPid(const std::string& path, std::chrono::milliseconds timeout);

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override { OpenEngine(); }
  void TearDown() override {
    if (engine_) cairn::testing::Must(engine_->Close());
  }

  void OpenEngine();
  void CloseEngine();
  // Closes the engine, reads the database, opens the engine again.
  DatabaseContents SnapshotDatabase();

  WorkflowRef Apply(std::string_view yaml, std::string_view source = "test.yaml");
  StartResult Start(const std::string& workflow, Json input = Json::object(),
                    std::optional<RunId> id = std::nullopt);
  // Waits for the run to stop or park; fails the test (throws) on a Wait error.
  RunInfo WaitFor(const RunId& id, std::chrono::milliseconds timeout = 30s);
  RunInfo RunToEnd(const std::string& workflow, Json input = Json::object());

  std::vector<storage::Event> History(const RunId& id);
  std::vector<std::string> Kinds(const RunId& id);
  // The run's chain verifies (contiguous, linked, ending at the header's head).
  void ExpectVerifies(const RunId& id);
  // Every run in the store verifies.
  void ExpectAllVerify();
  // `before` is a prefix of the run's history now, event for event.
  void ExpectHistoryStartsWith(const RunId& id, const std::vector<storage::Event>& before);

  cairn::testing::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Engine> engine_;
};

// The kind names of `events`, in order.
std::vector<std::string> KindsOf(const std::vector<storage::Event>& events);

// A one-line summary of a run's outcome for failure messages.
std::string Show(const RunInfo& info);

}  // namespace cairn::engine::badinput
