#include "engine/tools/cpp_executor.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <memory>

namespace cairn::engine {
namespace {

// One call's answer, given once by whichever of the worker or the deadline comes first.
struct CallState {
  std::atomic<bool> answered{false};
  ToolCallback done;
  std::unique_ptr<boost::asio::steady_timer> deadline;
};

ToolResponse FromStatus(const Status& status) {
  const bool validation = status.code() == StatusCode::kInvalidArgument;
  return ToolResponse::Failed(validation ? error_type::kValidation : error_type::kRuntime,
                              validation ? 400 : 500,
                              validation ? "Invalid tool arguments" : "Tool failed",
                              status.message());
}

}  // namespace

CppExecutor::CppExecutor(const ToolCatalog* catalog, boost::asio::any_io_executor timers,
                         unsigned threads)
    : catalog_(catalog), timers_(std::move(timers)), workers_(threads == 0 ? 1 : threads) {}

CppExecutor::~CppExecutor() { Shutdown(); }

void CppExecutor::Call(ToolRequest request, ToolCallback done) {
  const ToolCatalog::Entry* entry = catalog_->Find(request.tool);
  {
    std::lock_guard lock(mutex_);
    if (shut_down_ || entry == nullptr || !entry->callback) {
      ToolResponse response =
          shut_down_ ? ToolResponse::Failed(error_type::kRuntime, 503, "Engine shutting down",
                                            "the call was not started")
                     : ToolResponse::Failed(error_type::kConfiguration, 400, "Unknown tool",
                                            "no C++ tool named '" + request.tool +
                                                "' is registered");
      boost::asio::post(timers_, [done = std::move(done), response = std::move(response)] {
        done(response);
      });
      return;
    }
    ++outstanding_;
  }
  auto state = std::make_shared<CallState>();
  state->done = std::move(done);
  auto finish = [this, state](ToolResponse response) {
    if (state->answered.exchange(true)) return;
    if (state->deadline) state->deadline->cancel();
    state->done(std::move(response));
    std::lock_guard lock(mutex_);
    if (--outstanding_ == 0) idle_.notify_all();
  };
  state->deadline = std::make_unique<boost::asio::steady_timer>(timers_, request.timeout);
  state->deadline->async_wait([finish, timeout = request.timeout](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the worker answered
    finish(ToolResponse::TimedOut("the C++ tool did not return within " +
                                  std::to_string(timeout.count()) + " ms"));
  });
  boost::asio::post(workers_, [finish, callback = entry->callback,
                               request = std::move(request)] {
    ToolResponse response;
    try {
      Result<Json> result = callback(request);
      response = result.ok() ? ToolResponse::Ok(std::move(result).value())
                             : FromStatus(result.status());
    } catch (const std::exception& e) {
      response = ToolResponse::Failed(error_type::kRuntime, 500, "Tool threw",
                                      std::string("the C++ tool threw: ") + e.what());
    }
    finish(std::move(response));
  });
}

void CppExecutor::Shutdown() {
  {
    std::unique_lock lock(mutex_);
    shut_down_ = true;
  }
  // Wait for running callbacks; abandon nothing silently: timed-out ones still occupy a
  // worker until they return.
  workers_.join();
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return outstanding_ == 0; });
}

}  // namespace cairn::engine
