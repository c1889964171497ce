#include "replay/replay_runs.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace cairn::replay {
namespace {

// Runs read ahead of the last one delivered, per thread: keeps the threads busy when one
// run is slow, and bounds the histories and results held at once.
constexpr size_t kWindowPerJob = 64;

struct Task {
  size_t index = 0;
  // The run's history as the scan read it; nullopt: the replayer reads it (a run the scan
  // did not reach, because it ended on an I/O error).
  std::optional<std::vector<storage::Event>> history;
};

// Reader (the calling thread) → bounded queue → `jobs` replaying threads → results put
// back in run order and delivered on the calling thread.
class Pipeline {
 public:
  Pipeline(const storage::Store& store, const std::vector<std::unique_ptr<Replayer>>& replayers,
           const std::vector<RunId>& runs,
           const std::function<void(size_t, Result<ReplayResult>)>& done)
      : store_(store),
        replayers_(replayers),
        runs_(runs),
        jobs_(replayers.size()),
        done_(done),
        results_(runs.size()) {}

  void Run() {
    std::vector<std::thread> threads;
    threads.reserve(jobs_);
    for (size_t i = 0; i < jobs_; ++i) threads.emplace_back([this, i] { Work(*replayers_[i]); });
    size_t next = 0;
    Status scanned =
        store_.ScanHistories(runs_, [&](size_t i, Result<std::vector<storage::Event>> history) {
          if (history.ok()) {
            Submit(Task{i, std::move(history).value()});
          } else {
            Put(i, history.status());
          }
          next = i + 1;
          return true;
        });
    // An I/O error ended the scan: the runs after it are read one by one, each getting its
    // own error (or replaying, if the error was passing).
    static_cast<void>(scanned);
    for (; next < runs_.size(); ++next) Submit(Task{next, std::nullopt});
    {
      std::unique_lock lock(mu_);
      for (;;) {
        DeliverReady(lock);
        if (delivered_ == runs_.size()) break;
        cv_.wait(lock);
      }
      closing_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads) t.join();
  }

 private:
  // Hands the results that are next in order to `done_`, without the lock.
  void DeliverReady(std::unique_lock<std::mutex>& lock) {
    while (delivered_ < results_.size() && results_[delivered_].has_value()) {
      Result<ReplayResult> r = std::move(*results_[delivered_]);
      results_[delivered_].reset();
      const size_t index = delivered_;
      lock.unlock();
      done_(index, std::move(r));
      lock.lock();
      ++delivered_;
    }
  }

  void Submit(Task task) {
    std::unique_lock lock(mu_);
    for (;;) {
      DeliverReady(lock);
      if (task.index - delivered_ < jobs_ * kWindowPerJob) break;
      cv_.wait(lock);
    }
    queue_.push_back(std::move(task));
    cv_.notify_all();
  }

  void Put(size_t index, Result<ReplayResult> result) {
    std::lock_guard lock(mu_);
    results_[index] = std::move(result);
    cv_.notify_all();
  }

  void Work(Replayer& replayer) {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      const RunId& run = runs_[task.index];
      Put(task.index, task.history ? replayer.Replay(run, *task.history) : replayer.Replay(run));
    }
  }

  const storage::Store& store_;
  const std::vector<std::unique_ptr<Replayer>>& replayers_;
  const std::vector<RunId>& runs_;
  const size_t jobs_;
  const std::function<void(size_t, Result<ReplayResult>)>& done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;                                    // guarded by mu_
  std::vector<std::optional<Result<ReplayResult>>> results_;  // guarded by mu_
  size_t delivered_ = 0;                                      // guarded by mu_
  bool closing_ = false;                                      // guarded by mu_
};

}  // namespace

size_t DefaultReplayJobs(size_t runs) {
  const size_t hardware = std::max<size_t>(1, std::thread::hardware_concurrency());
  return std::clamp<size_t>(runs / kRunsPerDefaultJob, 1, hardware);
}

BatchReplayer::BatchReplayer(const storage::Store& store, ReplayOptions options, size_t jobs)
    : store_(store) {
  if (jobs == 0) jobs = 1;
  if (options.counterfactual_agent) jobs = 1;  // the hook is called on the replaying thread
  for (size_t i = 0; i < jobs; ++i)
    replayers_.push_back(std::make_unique<Replayer>(store, options));
}

BatchReplayer::~BatchReplayer() = default;

void BatchReplayer::Replay(const std::vector<RunId>& runs,
                           const std::function<void(size_t, Result<ReplayResult>)>& done) {
  if (replayers_.size() > 1 && runs.size() > 1) {
    return Pipeline(store_, replayers_, runs, done).Run();
  }
  Replayer& replayer = *replayers_.front();
  size_t next = 0;
  Status scanned =
      store_.ScanHistories(runs, [&](size_t i, Result<std::vector<storage::Event>> history) {
        done(i, history.ok() ? replayer.Replay(runs[i], *history)
                             : Result<ReplayResult>(history.status()));
        next = i + 1;
        return true;
      });
  static_cast<void>(scanned);  // as in Pipeline::Run: the rest are read one by one
  for (; next < runs.size(); ++next) done(next, replayer.Replay(runs[next]));
}

}  // namespace cairn::replay
