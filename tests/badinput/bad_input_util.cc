#include "tests/badinput/bad_input_util.h"

#include <rocksdb/db.h>
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/policies.h"

namespace cairn::engine::badinput {
namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes.substr(0, 48)) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  if (bytes.size() > 48) out += "...";
  return out;
}

}  // namespace

DatabaseContents ReadDatabase(const std::string& data_dir) {
  const std::string db_dir = data_dir + "/db";
  std::vector<std::string> names;
  rocksdb::Status st = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db_dir, &names);
  if (!st.ok()) throw std::runtime_error("list column families: " + st.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  st = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), db_dir, families, &handles, &db);
  if (!st.ok()) throw std::runtime_error("open read-only: " + st.ToString());
  DatabaseContents contents;
  for (size_t i = 0; i < handles.size(); ++i) {
    auto& family = contents[names[i]];
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      family.emplace(it->key().ToString(), it->value().ToString());
    }
    if (!it->status().ok()) throw std::runtime_error("iterate: " + it->status().ToString());
  }
  for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  db->Close().PermitUncheckedError();
  delete db;
  return contents;
}

std::string DescribeDifference(const DatabaseContents& before, const DatabaseContents& after) {
  std::ostringstream out;
  auto empty = std::map<std::string, std::string>();
  std::map<std::string, bool> names;
  for (const auto& [name, family] : before) names[name] = true;
  for (const auto& [name, family] : after) names[name] = true;
  for (const auto& [name, unused] : names) {
    const auto& a = before.count(name) ? before.at(name) : empty;
    const auto& b = after.count(name) ? after.at(name) : empty;
    for (const auto& [key, value] : a) {
      auto found = b.find(key);
      if (found == b.end()) {
        out << name << ": removed " << Hex(key) << "\n";
      } else if (found->second != value) {
        out << name << ": changed " << Hex(key) << " (" << value.size() << " -> "
            << found->second.size() << " bytes)\n";
      }
    }
    for (const auto& [key, value] : b) {
      if (a.count(key) == 0) {
        out << name << ": added " << Hex(key) << " (" << value.size() << " bytes)\n";
      }
    }
  }
  return out.str();
}

bool ProcessGone(int pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

int ReadPid(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream in(path);
    int pid = -1;
    if (in >> pid && pid > 0) return pid;
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
}

void EngineFixture::OpenEngine() {
  EngineOptions options;
  options.policy = cairn::testing::AllowAllPolicy();
  options.data_dir = dir_.Sub("data");
  options.durability = storage::Durability::kBuffered;
  options.clock = &clock_;
  options.threads = 2;
  options.timer_poll = 20ms;
  engine_ = cairn::testing::Must(Engine::Open(std::move(options)));
}

void EngineFixture::CloseEngine() {
  cairn::testing::Must(engine_->Close());
  engine_.reset();
}

DatabaseContents EngineFixture::SnapshotDatabase() {
  CloseEngine();
  DatabaseContents contents = ReadDatabase(dir_.Sub("data"));
  OpenEngine();
  return contents;
}

WorkflowRef EngineFixture::Apply(std::string_view yaml, std::string_view source) {
  return cairn::testing::Must(engine_->ApplyDefinition(yaml, source));
}

StartResult EngineFixture::Start(const std::string& workflow, Json input, std::optional<RunId> id) {
  StartRequest request;
  request.workflow = workflow;
  request.input = std::move(input);
  request.run_id = std::move(id);
  request.started_by = {"bad-input-test", "operator"};
  return cairn::testing::Must(engine_->Start(std::move(request)));
}

RunInfo EngineFixture::WaitFor(const RunId& id, std::chrono::milliseconds timeout) {
  return cairn::testing::Must(engine_->Wait(id, timeout));
}

RunInfo EngineFixture::RunToEnd(const std::string& workflow, Json input) {
  return WaitFor(Start(workflow, std::move(input)).run_id);
}

std::vector<storage::Event> EngineFixture::History(const RunId& id) {
  return cairn::testing::Must(engine_->store().ReadHistory(id, 0, 100'000));
}

std::vector<std::string> EngineFixture::Kinds(const RunId& id) { return KindsOf(History(id)); }

void EngineFixture::ExpectVerifies(const RunId& id) {
  storage::VerifyReport report = cairn::testing::Must(engine_->store().VerifyRun(id));
  EXPECT_TRUE(report.ok) << id.str() << ": " << report.problem;
  EXPECT_EQ(report.events_checked, cairn::testing::Must(engine_->store().GetRun(id)).next_seq);
}

void EngineFixture::ExpectAllVerify() {
  uint64_t failed =
      cairn::testing::Must(engine_->store().VerifyAll([](const storage::VerifyReport& r) {
        EXPECT_TRUE(r.ok) << r.run_id.str() << ": " << r.problem;
      }));
  EXPECT_EQ(failed, 0u);
}

void EngineFixture::ExpectHistoryStartsWith(const RunId& id,
                                            const std::vector<storage::Event>& before) {
  std::vector<storage::Event> now = History(id);
  ASSERT_GE(now.size(), before.size()) << "the run lost events";
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(now[i] == before[i])
        << "event " << i << " (" << storage::KindName(before[i].body) << ") changed";
  }
}

std::vector<std::string> KindsOf(const std::vector<storage::Event>& events) {
  std::vector<std::string> kinds;
  for (const storage::Event& e : events) kinds.emplace_back(storage::KindName(e.body));
  return kinds;
}

std::string Show(const RunInfo& info) {
  return std::string(storage::Name(info.header.status)) + "/" +
         std::string(storage::Name(info.header.stop_reason)) + " waiting_on='" + info.waiting_on +
         "' error={" + info.error.type + ", " + std::to_string(info.error.status) + ", '" +
         info.error.title + "', '" + info.error.detail + "', " + info.error.instance + "}" +
         (info.output ? " output=" + DumpJson(*info.output).substr(0, 300) : "");
}

}  // namespace cairn::engine::badinput
