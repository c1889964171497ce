// Tamper evidence: runs are written through the store, the store is closed, the database
// is edited behind its back with a raw rocksdb::DB, and after reopening VerifyRun() and
// VerifyAll() must point at the first sequence number where the chain no longer holds
// (the table in storage/FORMAT.md), while untouched runs still verify clean.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <functional>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "storage/codec.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/support/assertions.h"
#include "tests/support/raw_db.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {
using cairn::testing::RawDb;

using testing::HasSubstr;
using testing::IsError;
using testing::Must;

RunId Id(std::string_view text) { return RunId::FromTrusted(text); }

// The task path of every event carries a marker ("MARK-<seq>") so that a test can flip a
// byte inside a text field and keep the event decodable.
std::string Marker(uint64_t seq) { return "MARK-" + std::to_string(seq); }

// Direct access to the database of a closed store, with every column family.

// Replaces one character of `marker` inside `bytes` (the text stays valid).
std::string FlipInText(std::string bytes, const std::string& marker) {
  const size_t at = bytes.find(marker);
  if (at == std::string::npos) throw std::runtime_error("marker " + marker + " not in event");
  bytes[at] = 'N';  // "MARK-k" becomes "NARK-k"
  return bytes;
}

// ---- the runs every test starts from ----

constexpr uint64_t kVictimEvents = 6;     // seq 0..5
constexpr uint64_t kBystanderEvents = 4;  // seq 0..3
constexpr uint64_t kLastEvents = 3;
const RunId kBystander = Id("bystander");  // sorts before the victim
const RunId kVictim = Id("victim");
const RunId kLast = Id("zulu");  // sorts after: VerifyAll must go on past the victim

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Open();
    Build(kBystander, kBystanderEvents);
    Build(kVictim, kVictimEvents);
    Build(kLast, kLastEvents);
  }

  std::unique_ptr<Store> Open() {
    StoreOptions options;
    options.clock = &clock_;
    options.durability = Durability::kBuffered;
    return Must(Store::Open(dir_.path() + "/data", options));
  }

  // A run of `events` events in transitions of one and two events; the last stops it
  // when `events` is odd, so that terminal and non-terminal runs are both covered.
  void Build(const RunId& run, uint64_t events) {
    Transition create;
    create.run_id = run;
    RunStarted started;
    started.workflow_name = "verify";
    create.events.push_back({"/" + Marker(0), std::move(started)});
    create.header.status = RunStatus::kRunning;
    Must(store_->Append(std::move(create)));
    for (uint64_t seq = 1; seq < events;) {
      Transition t;
      t.run_id = run;
      t.expected_next_seq = seq;
      t.header.status = RunStatus::kRunning;
      const uint64_t count = (seq % 2 == 1 && seq + 1 < events) ? 2 : 1;
      for (uint64_t i = 0; i < count; ++i, ++seq) {
        const bool last = seq + 1 == events;
        if (last && events % 2 == 1) {
          RunStopped stopped;
          stopped.reason = StopReason::kCompleted;
          t.events.push_back({"/" + Marker(seq), std::move(stopped)});
          t.header.status = RunStatus::kCompleted;
        } else {
          clock_.Advance(1000);
          t.events.push_back(
              {"/do/" + Marker(seq),
               ValueRecorded{"value", Payload::Json("\"text of " + run.str() + "\"")}});
        }
      }
      Must(store_->Append(std::move(t)));
    }
  }

  // Closes the store, lets `edit` change the database, and reopens it.
  void Tamper(const std::function<void(RawDb&)>& edit) {
    Must(store_->Close());
    store_.reset();
    {
      RawDb raw(dir_.path() + "/data");
      edit(raw);
    }
    store_ = Open();
  }

  VerifyReport Verify(const RunId& run) { return Must(store_->VerifyRun(run)); }

  // VerifyAll's reports, which must come once per run in id order.
  std::vector<VerifyReport> VerifyAll(uint64_t* failures) {
    std::vector<VerifyReport> reports;
    *failures = Must(store_->VerifyAll([&](const VerifyReport& r) { reports.push_back(r); }));
    for (size_t i = 1; i < reports.size(); ++i) {
      EXPECT_LT(reports[i - 1].run_id, reports[i].run_id) << "reports out of order";
    }
    return reports;
  }

  void ExpectClean(const RunId& run, uint64_t events) {
    const VerifyReport report = Verify(run);
    EXPECT_TRUE(report.ok) << run.str() << ": " << report.problem;
    EXPECT_EQ(report.events_checked, events) << run.str();
    EXPECT_EQ(report.first_bad_seq, std::nullopt) << run.str();
    EXPECT_EQ(report.problem, "") << run.str();
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(VerifyTest, UntouchedStoreVerifiesClean) {
  ExpectClean(kBystander, kBystanderEvents);
  ExpectClean(kVictim, kVictimEvents);
  ExpectClean(kLast, kLastEvents);
  uint64_t failures = 99;
  const auto reports = VerifyAll(&failures);
  EXPECT_EQ(failures, 0u);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].run_id, kBystander);
  EXPECT_EQ(reports[0].events_checked, kBystanderEvents);
  EXPECT_EQ(reports[1].run_id, kVictim);
  EXPECT_EQ(reports[1].events_checked, kVictimEvents);
  EXPECT_EQ(reports[2].run_id, kLast);
  EXPECT_EQ(reports[2].events_checked, kLastEvents);
  for (const auto& r : reports) EXPECT_TRUE(r.ok) << r.run_id.str() << ": " << r.problem;

  // A reopened store, and a rewrite of a value with the very same bytes, change nothing.
  Tamper([](RawDb& raw) { raw.PutEvent(kVictim, 2, raw.GetEvent(kVictim, 2)); });
  VerifyAll(&failures);
  EXPECT_EQ(failures, 0u);
  EXPECT_TRUE(IsError(store_->VerifyRun(Id("ghost")).status(), StatusCode::kNotFound));
}

// One way of tampering with the victim, and where verification must catch it.
struct TamperCase {
  const char* name;
  std::function<void(RawDb&)> edit;
  std::optional<uint64_t> first_bad_seq;  // nullopt: the report names no sequence number
  const char* problem;                    // a part of the report's problem text
  uint64_t events_checked;                // events found linked before the problem
};

void PrintTo(const TamperCase& c, std::ostream* os) { *os << c.name; }

Event DecodedEvent(const RawDb& raw, const RunId& run, uint64_t seq) {
  return Must(DecodeEvent(raw.GetEvent(run, seq)));
}

const TamperCase kCases[] = {
    {"FlipTextByteInTheMiddle",
     [](RawDb& raw) {
       const std::string bytes = FlipInText(raw.GetEvent(kVictim, 2), Marker(2));
       ASSERT_TRUE(DecodeEvent(bytes).ok()) << "the flip was meant to keep event 2 decodable";
       raw.PutEvent(kVictim, 2, bytes);
     },
     2, "chain broken between events 2 and 3", 3},
    {"FlipTextByteInTheFirstEvent",
     [](RawDb& raw) {
       const std::string bytes = FlipInText(raw.GetEvent(kVictim, 0), Marker(0));
       ASSERT_TRUE(DecodeEvent(bytes).ok());
       raw.PutEvent(kVictim, 0, bytes);
     },
     0, "chain broken between events 0 and 1", 1},
    {"FlipTextByteInTheLastEvent",
     [](RawDb& raw) {
       const std::string bytes = FlipInText(raw.GetEvent(kVictim, 5), Marker(5));
       ASSERT_TRUE(DecodeEvent(bytes).ok());
       raw.PutEvent(kVictim, 5, bytes);
     },
     5, "chain head", 6},
    {"FlipByteThatBreaksDecoding",
     [](RawDb& raw) {
       std::string bytes = raw.GetEvent(kVictim, 3);
       bytes[0] = static_cast<char>(bytes[0] ^ 0x7f);  // the segment count
       ASSERT_FALSE(DecodeEvent(bytes).ok()) << "the flip was meant to break decoding";
       raw.PutEvent(kVictim, 3, bytes);
     },
     3, "event 3 cannot be decoded", 3},
    {"TruncatedValue",
     [](RawDb& raw) {
       const std::string bytes = raw.GetEvent(kVictim, 3);
       raw.PutEvent(kVictim, 3, bytes.substr(0, bytes.size() / 2));
     },
     3, "event 3 cannot be decoded", 3},
    {"ReencodedWithADifferentBody",
     [](RawDb& raw) {
       Event e = DecodedEvent(raw, kVictim, 2);
       std::get<ValueRecorded>(e.body).value = Payload::Json("\"forged\"");
       raw.PutEvent(kVictim, 2, Must(EncodeEvent(e)));
     },
     2, "chain broken between events 2 and 3", 3},
    {"ReencodedWithADifferentPrevHash",
     [](RawDb& raw) {
       Event e = DecodedEvent(raw, kVictim, 3);
       e.prev_hash = Sha256::Of("forged");
       raw.PutEvent(kVictim, 3, Must(EncodeEvent(e)));
     },
     2, "chain broken between events 2 and 3", 3},
    {"DeleteAMiddleEvent", [](RawDb& raw) { raw.DeleteEvent(kVictim, 2); }, 2, "event 2 is missing",
     2},
    {"DeleteTheFirstEvent", [](RawDb& raw) { raw.DeleteEvent(kVictim, 0); }, 0,
     "event 0 is missing", 0},
    {"DeleteTheLastEvent", [](RawDb& raw) { raw.DeleteEvent(kVictim, 5); }, 5, "truncated", 5},
    {"SwapTwoEvents",
     [](RawDb& raw) {
       const std::string two = raw.GetEvent(kVictim, 2);
       const std::string three = raw.GetEvent(kVictim, 3);
       raw.PutEvent(kVictim, 2, three);
       raw.PutEvent(kVictim, 3, two);
     },
     2, "claims to be run victim seq 3", 2},
    {"SpliceAnEventFromAnotherRun",
     [](RawDb& raw) { raw.PutEvent(kVictim, 2, raw.GetEvent(kBystander, 2)); }, 2,
     "claims to be run bystander seq 2", 2},
    {"TruncateTheTailKeepingTheHeader",
     [](RawDb& raw) {
       for (uint64_t seq = 3; seq < kVictimEvents; ++seq) raw.DeleteEvent(kVictim, seq);
     },
     3, "history ends after 3 events but the header records 6", 3},
    {"DeleteEveryEventKeepingTheHeader",
     [](RawDb& raw) {
       for (uint64_t seq = 0; seq < kVictimEvents; ++seq) raw.DeleteEvent(kVictim, seq);
     },
     0, "truncated", 0},
    {"RewriteTheHeadersChainHead",
     [](RawDb& raw) {
       RunHeader header = raw.GetHeader(kVictim);
       header.chain_head = Sha256::Of("forged");
       raw.PutHeader(header);
     },
     5, "but the header's chain head is", 6},
    {"RollTheHeaderBackOneEvent",
     [](RawDb& raw) {
       // A consistent-looking header for a 5-event history: next_seq 5 and the hash of
       // event 4 (which event 5 records as its prev_hash).
       RunHeader header = raw.GetHeader(kVictim);
       header.next_seq = 5;
       header.chain_head = DecodedEvent(raw, kVictim, 5).prev_hash;
       raw.PutHeader(header);
     },
     5, "beyond the header's end", 6},
    {"DeleteTheHeader", [](RawDb& raw) { raw.Delete(keys::kRunsFamily, kVictim.str()); }, 0,
     "has 6 events but no header", 6},
    {"CorruptTheHeader",
     [](RawDb& raw) { raw.Put(keys::kRunsFamily, kVictim.str(), "not a header"); }, std::nullopt,
     "victim", 0},
    {"AddAnEventBeyondNextSeq",
     [](RawDb& raw) {
       // Well formed and correctly chained: only the header's count gives it away.
       const std::string last = raw.GetEvent(kVictim, 5);
       Event extra = Must(DecodeEvent(last));
       extra.seq = EventSeq(6);
       extra.prev_hash = Sha256::Of(extra.prev_hash.view(), last);
       extra.body = ValueRecorded{"extra", Payload::Json("1")};
       ASSERT_EQ(extra.prev_hash, raw.GetHeader(kVictim).chain_head);
       raw.PutEvent(kVictim, 6, Must(EncodeEvent(extra)));
     },
     6, "event 6 lies beyond the header's end", 7},
};

class TamperTest : public VerifyTest, public ::testing::WithParamInterface<TamperCase> {};

TEST_P(TamperTest, VerifyFindsTheFirstBadSeq) {
  const TamperCase& c = GetParam();
  Tamper(c.edit);
  if (HasFatalFailure()) return;

  const VerifyReport report = Verify(kVictim);
  EXPECT_EQ(report.run_id, kVictim);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, c.first_bad_seq) << report.problem;
  EXPECT_TRUE(HasSubstr(report.problem, c.problem));
  EXPECT_EQ(report.events_checked, c.events_checked);

  ExpectClean(kBystander, kBystanderEvents);
  ExpectClean(kLast, kLastEvents);

  uint64_t failures = 0;
  const auto reports = VerifyAll(&failures);
  EXPECT_EQ(failures, 1u);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].run_id, kBystander);
  EXPECT_TRUE(reports[0].ok) << reports[0].problem;
  EXPECT_EQ(reports[0].events_checked, kBystanderEvents);
  EXPECT_EQ(reports[1].run_id, kVictim);
  EXPECT_FALSE(reports[1].ok);
  EXPECT_EQ(reports[1].first_bad_seq, c.first_bad_seq);
  EXPECT_EQ(reports[1].problem, report.problem);
  EXPECT_EQ(reports[2].run_id, kLast);
  EXPECT_TRUE(reports[2].ok) << reports[2].problem;
  EXPECT_EQ(reports[2].events_checked, kLastEvents);
}

INSTANTIATE_TEST_SUITE_P(Verify, TamperTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Reads check every event against its key too: a history that does not hold together is
// reported as data loss, not returned.
TEST_F(VerifyTest, ReadsRefuseMisplacedMissingOrUndecodableEvents) {
  Tamper([](RawDb& raw) {
    raw.PutEvent(kVictim, 2, raw.GetEvent(kVictim, 3));  // a duplicate in the wrong place
    raw.DeleteEvent(kBystander, 1);
    std::string bytes = raw.GetEvent(kLast, 1);
    raw.PutEvent(kLast, 1, bytes.substr(0, 4));
  });
  EXPECT_TRUE(IsError(store_->ReadHistory(kVictim, 0, 100).status(), StatusCode::kDataLoss,
                      {"victim", "seq 2", "seq 3"}));
  EXPECT_TRUE(IsError(store_->ReadHistory(kBystander, 0, 100).status(), StatusCode::kDataLoss,
                      {"bystander", "event 1 is missing"}));
  EXPECT_TRUE(IsError(store_->ReadHistory(kLast, 0, 100).status(), StatusCode::kDataLoss,
                      {"zulu", "event 1"}));
  // What comes before the damage is still readable.
  EXPECT_EQ(Must(store_->ReadHistory(kVictim, 0, 2)).size(), 2u);
  EXPECT_EQ(Must(store_->ReadHistory(kVictim, 3, 100)).size(), 3u);
}

// Several runs damaged at once: VerifyAll counts each once, in id order, including a run
// whose header is gone, and the untouched ones stay clean.
TEST_F(VerifyTest, VerifyAllCountsEveryDamagedRunOnce) {
  const RunId a = Id("a-headerless");
  const RunId m = Id("m-swapped");
  const RunId w = Id("w-truncated");
  Build(a, 5);
  Build(m, 4);
  Build(w, 7);
  Tamper([&](RawDb& raw) {
    raw.Delete(keys::kRunsFamily, a.str());
    const std::string one = raw.GetEvent(m, 1);
    raw.PutEvent(m, 1, raw.GetEvent(m, 2));
    raw.PutEvent(m, 2, one);
    raw.DeleteEvent(w, 6);
    raw.DeleteEvent(w, 5);
  });
  uint64_t failures = 0;
  const auto reports = VerifyAll(&failures);
  EXPECT_EQ(failures, 3u);
  std::vector<std::string> seen;
  for (const auto& r : reports) {
    seen.push_back(r.run_id.str() +
                   (r.ok ? " ok" : " bad@" + std::to_string(r.first_bad_seq.value_or(999))));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a-headerless bad@0", "bystander ok", "m-swapped bad@1",
                                            "victim ok", "w-truncated bad@5", "zulu ok"}));
}

// ---- the run header against its history (CheckRunHeader) ----

const RunId kDone = Id("h-done");  // completed: run_started, a value, run_stopped
const RunId kOpen = Id("h-open");  // running: run_started, a value

// Runs whose headers say what an engine's would: the workflow, the stored definition and
// the policy of run_started, and the status and stop reason of the last event.
class HeaderCheckTest : public VerifyTest {
 protected:
  void SetUp() override {
    VerifyTest::SetUp();
    definition_ = Must(store_->PutDefinition("document: {dsl: 1.0.0, name: checked}"));
    BuildHeaded(kDone, true);
    BuildHeaded(kOpen, false);
  }

  RunHeader HeaderFor(RunStatus status) const {
    RunHeader h;
    h.status = status;
    h.workflow_namespace = "audit";
    h.workflow_name = "checked";
    h.workflow_version = "1.0.0";
    h.definition_hash = definition_;
    h.policy_hash = Sha256::Of("policy");
    return h;
  }

  void BuildHeaded(const RunId& run, bool stop) {
    Transition create;
    create.run_id = run;
    RunStarted started;
    started.workflow_namespace = "audit";
    started.workflow_name = "checked";
    started.workflow_version = "1.0.0";
    started.definition_hash = definition_;
    started.policy_hash = Sha256::Of("policy");
    create.events.push_back({"/", std::move(started)});
    create.events.push_back({"/do/0/a", ValueRecorded{"a", Payload::Json("1")}});
    create.header = HeaderFor(RunStatus::kRunning);
    Must(store_->Append(std::move(create)));
    if (!stop) return;
    Transition t;
    t.run_id = run;
    t.expected_next_seq = 2;
    RunStopped stopped;
    stopped.reason = StopReason::kCompleted;
    t.events.push_back({"/", std::move(stopped)});
    t.header = HeaderFor(RunStatus::kCompleted);
    t.header.stop_reason = StopReason::kCompleted;
    Must(store_->Append(std::move(t)));
  }

  // VerifyRun and then CheckRunHeader, as `cairn audit verify` does.
  VerifyReport Audit(const RunId& run) {
    VerifyReport report = Verify(run);
    CheckRunHeader(*store_, report);
    return report;
  }

  // Rewrites `run`'s header through `edit`, keeping next_seq and the chain head: the chain
  // still verifies, so only the header check can tell.
  void EditHeader(const RunId& run, const std::function<void(RunHeader&)>& edit) {
    Tamper([&](RawDb& raw) {
      RunHeader h = raw.GetHeader(run);
      edit(h);
      raw.PutHeader(h);
    });
  }

  Sha256 definition_;
};

TEST_F(HeaderCheckTest, HeadersThatMatchTheirHistoryPass) {
  for (const RunId& run : {kDone, kOpen}) {
    const VerifyReport r = Audit(run);
    EXPECT_TRUE(r.ok) << run.str() << ": " << r.problem;
    EXPECT_EQ(r.first_bad_seq, std::nullopt);
  }
  // A report that already failed is left as the chain check made it.
  VerifyReport failed;
  failed.run_id = kDone;
  failed.ok = false;
  failed.first_bad_seq = 1;
  failed.problem = "chain broken";
  CheckRunHeader(*store_, failed);
  EXPECT_EQ(failed.first_bad_seq, 1u);
  EXPECT_EQ(failed.problem, "chain broken");
}

struct HeaderCase {
  const char* name;
  RunId run;
  std::function<void(RunHeader&)> edit;
  uint64_t first_bad_seq;
  const char* problem;
};

void PrintTo(const HeaderCase& c, std::ostream* os) { *os << c.name; }

const HeaderCase kHeaderCases[] = {
    {"OtherWorkflowName", kDone, [](RunHeader& h) { h.workflow_name = "forged"; }, 0,
     "names workflow audit/forged:1.0.0 but run_started names audit/checked:1.0.0"},
    {"OtherNamespace", kOpen, [](RunHeader& h) { h.workflow_namespace = "ops"; }, 0,
     "names workflow ops/checked"},
    {"OtherVersion", kDone, [](RunHeader& h) { h.workflow_version = "2.0.0"; }, 0,
     "audit/checked:2.0.0"},
    {"OtherDefinitionHash", kDone, [](RunHeader& h) { h.definition_hash = Sha256::Of("v2"); }, 0,
     "differs from run_started's"},
    {"OtherPolicyHash", kOpen, [](RunHeader& h) { h.policy_hash = Sha256::Of("lenient"); }, 0,
     "policy sha256:"},
    {"RunningCalledCompleted", kOpen,
     [](RunHeader& h) {
       h.status = RunStatus::kCompleted;
       h.stop_reason = StopReason::kCompleted;
     },
     1, "status completed but the last event is value_recorded"},
    {"CompletedCalledRunning", kDone,
     [](RunHeader& h) {
       h.status = RunStatus::kRunning;
       h.stop_reason = StopReason::kNone;
     },
     2, "status running but the last event is run_stopped"},
    {"OtherStopReason", kDone,
     [](RunHeader& h) {
       h.status = RunStatus::kFailed;
       h.stop_reason = StopReason::kFaulted;
     },
     2, "stop reason faulted but run_stopped says completed"},
};

class HeaderTamperTest : public HeaderCheckTest,
                         public ::testing::WithParamInterface<HeaderCase> {};

TEST_P(HeaderTamperTest, AuditNamesTheRunAndTheSeq) {
  const HeaderCase& c = GetParam();
  EditHeader(c.run, c.edit);
  ASSERT_TRUE(Verify(c.run).ok) << "the edit was meant to keep the chain intact";
  const VerifyReport r = Audit(c.run);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.run_id, c.run);
  EXPECT_EQ(r.first_bad_seq, c.first_bad_seq) << r.problem;
  EXPECT_TRUE(HasSubstr(r.problem, "run header: "));
  EXPECT_TRUE(HasSubstr(r.problem, c.problem));
  // The other run is untouched.
  const RunId other = c.run == kDone ? kOpen : kDone;
  EXPECT_TRUE(Audit(other).ok) << Audit(other).problem;
}

INSTANTIATE_TEST_SUITE_P(Headers, HeaderTamperTest, ::testing::ValuesIn(kHeaderCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(HeaderCheckTest, ADefinitionDeletedFromTheStoreIsNamed) {
  Tamper([&](RawDb& raw) { raw.Delete(keys::kDefinitionsFamily, definition_.view()); });
  const VerifyReport r = Audit(kDone);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 0u);
  EXPECT_TRUE(HasSubstr(r.problem, "definition sha256:" + definition_.Hex()));
  EXPECT_TRUE(HasSubstr(r.problem, "is not stored"));
}

TEST_F(HeaderCheckTest, ADefinitionWhoseBytesChangedIsNamed) {
  Tamper([&](RawDb& raw) {
    raw.Put(keys::kDefinitionsFamily, definition_.view(), "document: {dsl: 1.0.0, name: evil}");
  });
  const VerifyReport r = Audit(kOpen);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 0u);
  EXPECT_TRUE(HasSubstr(r.problem, "cannot be read"));
}

TEST_F(HeaderCheckTest, AFirstEventThatIsNotRunStartedIsNamed) {
  // A run created with a value first is refused by the store, so the header check is the
  // audit's only line against it: forge one with the raw database, chained correctly.
  Tamper([&](RawDb& raw) {
    Event first = DecodedEvent(raw, kOpen, 0);
    first.body = ValueRecorded{"x", Payload::Json("0")};
    const std::string bytes = Must(EncodeEvent(first));
    raw.PutEvent(kOpen, 0, bytes);
    Event second = DecodedEvent(raw, kOpen, 1);
    second.prev_hash = Sha256::Of(Sha256().view(), bytes);
    const std::string second_bytes = Must(EncodeEvent(second));
    raw.PutEvent(kOpen, 1, second_bytes);
    RunHeader h = raw.GetHeader(kOpen);
    h.chain_head = Sha256::Of(second.prev_hash.view(), second_bytes);
    raw.PutHeader(h);
  });
  const VerifyReport chain = Verify(kOpen);
  ASSERT_TRUE(chain.ok) << chain.problem;
  const VerifyReport r = Audit(kOpen);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 0u);
  EXPECT_TRUE(HasSubstr(r.problem, "event 0 is value_recorded, not run_started"));
}

}  // namespace
}  // namespace cairn::storage
