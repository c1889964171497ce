// Runs C++ tools (ToolCatalog entries with executor "cpp") on a pool of blocking worker
// threads, so that a slow tool never stalls the engine's threads.
//
// A C++ function cannot be interrupted: at the deadline the call is answered kTimedOut
// and the function's eventual result is dropped (it keeps its worker until it returns).
// Thread-safe; see ToolExecutor for the lifecycle.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <mutex>

#include "engine/tools/catalog.h"
#include "engine/tools/tool.h"

namespace cairn::engine {

class CppExecutor final : public ToolExecutor {
 public:
  // `timers` runs the deadline timers (the engine's pool); `threads` blocking workers.
  CppExecutor(const ToolCatalog* catalog, boost::asio::any_io_executor timers,
              unsigned threads);
  ~CppExecutor() override;

  void Call(ToolRequest request, ToolCallback done) override;
  void Shutdown() override;

 private:
  const ToolCatalog* catalog_;
  boost::asio::any_io_executor timers_;
  boost::asio::thread_pool workers_;
  std::mutex mutex_;
  std::condition_variable idle_;
  size_t outstanding_ = 0;
  bool shut_down_ = false;
};

}  // namespace cairn::engine
