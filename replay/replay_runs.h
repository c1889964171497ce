// Replaying many runs: `cairn replay --all`, benchmarks, tests.
//
// BatchReplayer reads the runs' histories with one store iterator (Store::ScanHistories)
// instead of one per run, and replays them on `jobs` threads, each with its own Replayer
// (its own jq Evaluator and definition cache). Results come back in the order of `runs`,
// on the calling thread, whatever order the threads finish in; each is exactly what
// Replayer::Replay(run) gives for that run alone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "replay/replayer.h"
#include "storage/store.h"

namespace cairn::replay {

// Threads worth starting to replay `runs` runs when the caller does not say: one per
// kRunsPerDefaultJob runs, at most the hardware's threads, at least 1. Each thread
// compiles the definitions' jq programs for itself (tens of milliseconds per expression),
// which a few thousand runs do not win back (bench/README.md, "Second pass").
inline constexpr size_t kRunsPerDefaultJob = 4000;
size_t DefaultReplayJobs(size_t runs);

// Replays many runs on `jobs` threads, keeping one Replayer per thread (and so its
// definitions and compiled jq programs) from one call of Replay to the next.
// Thread-compatible: one call of Replay at a time. The store must outlive it and is only read.
class BatchReplayer {
 public:
  // `jobs`: threads that replay at once (1, or 0: the calling thread, no thread started). A counterfactual agent is a hook called on the replaying thread, so
  // with one the runs replay on one thread whatever `jobs` says.
  BatchReplayer(const storage::Store& store, ReplayOptions options, size_t jobs);
  ~BatchReplayer();
  BatchReplayer(const BatchReplayer&) = delete;
  BatchReplayer& operator=(const BatchReplayer&) = delete;

  size_t jobs() const { return replayers_.size(); }

  // Replays `runs` (any order; ascending ids read fastest). Calls `done(i, result of
  // runs[i])` once per run, in index order, on the calling thread; a run that cannot be
  // read or replayed gets its error there (as Replayer::Replay gives it) and the others
  // still replay. `done` must not throw. At most a bounded window of runs (64 per thread)
  // is read ahead of the last one handed to `done`.
  void Replay(const std::vector<RunId>& runs,
              const std::function<void(size_t, Result<ReplayResult>)>& done);

 private:
  const storage::Store& store_;
  std::vector<std::unique_ptr<Replayer>> replayers_;  // one per thread
};

}  // namespace cairn::replay
