// A check any engine test can end with: every run in the store replays with no
// divergence (DESIGN.md §9). Header-only; the test target links cairn_replay.
#pragma once

#include <gtest/gtest.h>

#include "replay/replayer.h"
#include "storage/store.h"

namespace cairn::testing {

// Replays every run of `store` (read beside a running engine is fine) and adds a failure
// naming the run, the seq and both sides for each divergence or replay error.
inline void ExpectEveryRunReplays(const storage::Store& store) {
  Result<std::vector<storage::RunSummary>> runs = store.ListRuns(std::nullopt, "", 10'000);
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  replay::Replayer replayer(store);
  for (const storage::RunSummary& run : *runs) {
    Result<replay::ReplayResult> r = replayer.Replay(run.run_id);
    if (!r.ok()) {
      ADD_FAILURE() << "replay of " << run.run_id.str() << ": " << r.status().message();
      continue;
    }
    if (r->divergence) {
      ADD_FAILURE() << replay::DescribeDivergence(*r->divergence) << "\n  recorded "
                    << r->divergence->recorded.dump() << "\n  produced "
                    << r->divergence->produced.dump();
    }
  }
}

}  // namespace cairn::testing
