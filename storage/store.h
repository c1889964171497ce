// Store: the durable event log of cairn, on RocksDB.
//
// A data directory holds one RocksDB database (`<dir>/db`) and a lock file
// (`<dir>/cairn.lock`). The key layout of every column family is in storage/FORMAT.md.
//
// Writes are *transitions*: the events a run appends in one step, its new header, and
// the index changes they imply (active set, status index, timers, start keys, blobs),
// applied as ONE atomic RocksDB WriteBatch. Transitions of many runs submitted
// concurrently are group-committed: a single commit thread writes them together with one
// synced write, then tells each submitter that its own transition is durable.
//
// Each run's events form a SHA-256 hash chain: event n records the hash of event n-1
// (`prev_hash`, zero for n = 0) and hash(n) = SHA-256(prev_hash || stored bytes of n).
// The run header holds the chain head. VerifyRun() finds edits, deletions, reordering
// and truncation.
//
// Failure model: if a write or sync fails, the store stops accepting writes (fail-stop:
// after a failed fsync the OS page cache can no longer be trusted). Transitions that were
// not acknowledged may or may not be on disk; the truth is what a reopen reads back, and
// it is always a prefix of each run's submitted history, with no holes.
//
// Lifecycle and threads: Open() starts the commit thread; Close() (or the destructor)
// drains the queue, acknowledges what is durable, and stops it. Every method is
// thread-safe, but no call may race with Close(): once it has returned, every method
// fails with kFailedPrecondition. Completion callbacks run on the commit thread: they
// must be quick and must not block on the store: Append(), PutBlob(), PutDefinition()
// and Close() fail there with kFailedPrecondition, and destroying the Store there aborts.
// Submit() and the reads are fine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "base/status.h"
#include "storage/event.h"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace cairn::storage {

enum class Durability : uint8_t {
  // Nothing is acknowledged before it is synced to stable storage (fdatasync of the WAL).
  kSync,
  // Acknowledged once written to the OS (WAL not synced): survives a process crash, not
  // a power loss. For tests and benchmarks.
  kBuffered,
};

struct StoreOptions {
  Durability durability = Durability::kSync;
  // Open without the lock and without writing: for inspection tools, beside a running
  // owner or on a copy. Writes then fail with kFailedPrecondition.
  bool read_only = false;
  // Create the directory and an empty store if missing (ignored when read_only).
  bool create_if_missing = true;
  // Time source for event and header times. Required; not owned; must outlive the store.
  const Clock* clock = nullptr;
  // Filesystem under RocksDB; null means the real one. A test seam for fault injection.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Written into the lock file, shown to a second process that tries to open the store.
  std::string owner_description = "cairn";
  size_t block_cache_bytes = 64 << 20;
  // Open a store whose write-ahead log is damaged before its end, keeping every
  // transition before the damage and DISCARDING everything after it (RocksDB
  // point-in-time recovery). Without it such a store refuses to open with kDataLoss, so
  // that acknowledged transitions are never dropped silently. An operator's decision.
  bool salvage_wal = false;
};

// One event to append: the store fills in run id, sequence number, time and prev_hash.
struct NewEvent {
  std::string task_path;
  EventBody body;
};

struct Transition {
  RunId run_id;
  // The run's next_seq as the caller last saw it: 0 creates the run. A mismatch fails the
  // transition with kAborted (another writer went first; re-read and retry).
  uint64_t expected_next_seq = 0;
  // 1..limits::events_per_transition_max events. A new run's first event must be
  // run_started; a run_stopped event must be last and only with a terminal status.
  std::vector<NewEvent> events;
  // The run's new header. The store sets run_id, next_seq, chain_head, created_at_ns and
  // updated_at_ns; the rest is the caller's. Status must not be kUnknown.
  RunHeader header;
  // Blobs the events refer to, stored (content-addressed) in the same batch.
  std::vector<std::string> blobs;
  // Event time; 0 means the store's clock at submission.
  int64_t time_ns = 0;
};

struct AppendResult {
  EventSeq first_seq;   // sequence number of the first appended event
  uint64_t next_seq;    // the run's event count after this transition
  Sha256 chain_head;    // hash of the last appended event
};

using AppendCallback = std::function<void(Result<AppendResult>)>;

struct RunSummary {
  RunId run_id;
  RunStatus status = RunStatus::kUnknown;
};

struct DueTimer {
  int64_t due_at_ns = 0;
  RunId run_id;
  std::string timer_id;
  TimerPurpose purpose = TimerPurpose::kWait;
};

// One stored event with the bytes it was hashed over.
// Both members are valid only during the visitor call.
struct StoredEvent {
  const Event& event;
  std::string_view bytes;
};

struct VerifyReport {
  RunId run_id;
  bool ok = true;
  uint64_t events_checked = 0;
  // The first sequence number at which the chain does not hold (set when !ok).
  std::optional<uint64_t> first_bad_seq;
  std::string problem;  // what was found there, for a person
};

// A name for a stored definition: namespace/name:version -> definition hash.
struct WorkflowVersion {
  std::string namespace_;
  std::string name;
  std::string version;
  Sha256 hash;
  int64_t applied_at_ns = 0;
};

struct StoreStats {
  uint64_t transitions_committed = 0;
  uint64_t events_committed = 0;
  uint64_t commit_groups = 0;   // synced (or buffered) writes issued
  uint64_t queued_transitions = 0;
};

class Store {
 public:
  // Opens (or creates) the store in `dir`.
  // Errors: kFailedPrecondition when another process holds the directory (the message
  // names it: pid, host, command, since when); kNotFound when it does not exist and may
  // not be created; kDataLoss when the database is corrupt or not a cairn store;
  // kInvalidArgument for bad options.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, StoreOptions options);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Drains queued transitions, stops the commit thread, closes the database and
  // releases the lock. Idempotent. Returns the first error seen while closing.
  Status Close();

  // ---- writes ----

  // Validates `t`, assigns sequence numbers, computes the hash chain and encodes on the
  // calling thread, then queues it for the commit thread. If it returns non-ok, `done`
  // is never called and nothing was written:
  //   kInvalidArgument   malformed transition (names the field)
  //   kAborted           expected_next_seq differs from the run's
  //   kAlreadyExists     creating a run whose id, or whose start key, exists
  //   kNotFound          appending to a run that does not exist
  //   kFailedPrecondition the run is terminal, or the store is read-only, closed or failed
  //   kResourceExhausted the commit queue is full (back off)
  // If it returns ok, `done` is called exactly once, on the commit thread, with the
  // result once durable (per StoreOptions::durability), or with kAborted if the write
  // failed: the transition may or may not be durable, the store has stopped accepting
  // writes, and the caller must reopen it and re-read the run before going on.
  // Transitions of one run are committed in submission order.
  Status Submit(Transition t, AppendCallback done);

  // Submit() and wait for durability. Do not call from a completion callback.
  Result<AppendResult> Append(Transition t);

  // Stores a definition under the SHA-256 of `canonical_bytes`; idempotent. Durable on
  // return.
  Result<Sha256> PutDefinition(std::string canonical_bytes);
  // Stores a blob; idempotent. Durable on return.
  Result<Sha256> PutBlob(std::string content);
  // Names a stored definition. Idempotent for the same hash; kAlreadyExists if that
  // namespace/name/version already names a different definition (versions are immutable).
  // Durable on return.
  Status PutWorkflowVersion(const WorkflowVersion& version);
  // Every named version, in (namespace, name, version) byte order (at most
  // limits::list_runs_max).
  Result<std::vector<WorkflowVersion>> ListWorkflowVersions() const;

  // Operators' settings (the applied policy, kill switches): small named values in the
  // default family under "setting/" (storage/FORMAT.md). `key`: 1..200 bytes of
  // [A-Za-z0-9_./:-]; `value` at most limits::setting_bytes_max. Durable on return.
  Status PutSetting(std::string_view key, std::string value);
  Status DeleteSetting(std::string_view key);
  // nullopt when absent.
  Result<std::optional<std::string>> GetSetting(std::string_view key) const;
  // Every setting whose key starts with `prefix`, in key order (at most
  // limits::list_runs_max).
  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(
      std::string_view prefix) const;

  // ---- reads (consistent with every acknowledged write) ----

  // kNotFound if no such run.
  Result<RunHeader> GetRun(const RunId& run_id) const;

  // Calls `visit` for the run's events with seq >= from, in order, until it returns
  // false or the history ends. Each event is decoded and checked against its key.
  // kNotFound if the run does not exist; kDataLoss on a corrupt or misplaced event.
  Status ScanHistory(const RunId& run_id, uint64_t from,
                     const std::function<bool(const StoredEvent&)>& visit) const;
  // The whole histories of `runs`, read with one iterator: calls `visit(i, history of
  // runs[i])` for each run in the given order until it returns false. Each history is
  // what ScanHistory from 0 gives (every event decoded and checked against its key) and so
  // is each run's error (kNotFound, kDataLoss), given to `visit` instead of a history; the
  // other runs are still read. Runs in ascending id order are read without a seek between
  // them (what `cairn replay --all` reads), any order is correct. Returns an I/O error
  // that ends the scan, else ok. The caller keeps the events it is given.
  Status ScanHistories(const std::vector<RunId>& runs,
                       const std::function<bool(size_t, Result<std::vector<Event>>)>& visit) const;
  // At most `limit` events from `from` (limit is capped by limits::history_read_events_max).
  Result<std::vector<Event>> ReadHistory(const RunId& run_id, uint64_t from,
                                         size_t limit) const;

  // Runs in id order after `start_after` (exclusive; empty starts at the beginning),
  // optionally only those with `status`. A run whose header cannot be decoded is listed
  // with status kUnknown (VerifyRun tells what is wrong). At most `limit` (capped by limits::list_runs_max).
  Result<std::vector<RunSummary>> ListRuns(std::optional<RunStatus> status,
                                           const std::string& start_after,
                                           size_t limit) const;
  // Non-terminal runs (what recovery resumes), in id order after `start_after`.
  Result<std::vector<RunSummary>> ListActiveRuns(const std::string& start_after,
                                                 size_t limit) const;
  // Timers due at or before `now_ns`, earliest first, at most `limit` (capped by
  // limits::due_timers_max). Only outstanding timers of runs that have not stopped: the
  // store keeps each run's timers (RunHeader::timers) and drops them when it stops.
  Result<std::vector<DueTimer>> DueTimers(int64_t now_ns, size_t limit) const;
  // The run a start key created (including a creation submitted but not yet durable),
  // or nullopt.
  Result<std::optional<RunId>> FindStartKey(std::string_view start_key) const;

  // kNotFound if absent; kDataLoss if the stored bytes do not hash to `digest`.
  Result<std::string> GetBlob(const Sha256& digest) const;
  Result<std::string> GetDefinition(const Sha256& digest) const;

  // ---- audit ----

  // Walks the run's chain: contiguous sequence numbers, each event decodable, in its
  // own place, linked to its predecessor, and ending at the header's next_seq and chain
  // head. kNotFound if neither a header nor events exist; other errors are reported in
  // the VerifyReport, not as a Status, except I/O errors.
  Result<VerifyReport> VerifyRun(const RunId& run_id) const;
  // Verifies every run (including events with no header). Calls `report` per run in id
  // order; returns the number of runs that failed.
  Result<uint64_t> VerifyAll(const std::function<void(const VerifyReport&)>& report) const;

  StoreStats stats() const;
  const std::string& dir() const;
  bool read_only() const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The run header against the history it heads, for a run whose chain verified
// (`report.ok`; otherwise nothing is checked): event 0 is run_started and names the
// header's workflow (namespace, name, version), definition hash and policy hash; the
// definition is stored; a terminal status ends with run_stopped (and only a terminal
// one does) carrying the header's stop reason. On the first disagreement `report`
// becomes failed with that sequence number (0 for what run_started names, the last
// event's for the status) and a problem beginning "run header: ". The chain check
// (VerifyRun) already ties the header's next_seq and chain head to the events; this adds
// what the header says about them. Reads only; thread-safe like the store's reads.
void CheckRunHeader(const Store& store, VerifyReport& report);

}  // namespace cairn::storage
