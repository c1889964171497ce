#include "engine/core/standalone_decider.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "engine/core/decisions.h"
#include "engine/core/engine.h"
#include "engine/core/executors.h"
#include "engine/core/tool_router.h"

namespace cairn::engine {

namespace asio = boost::asio;

struct StandaloneDecider::Impl {
  Impl(const Clock& c, agent::ToolCaller t)
      : clock(c), tools(std::move(t)), work(asio::make_work_guard(io)), router(io.get_executor()) {}

  ~Impl() {
    router.Shutdown();  // needs the I/O thread: it waits for the calls' answers
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
  }

  const Clock& clock;
  agent::ToolCaller tools;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  ToolRouter router;
  std::thread thread;
};

Result<std::unique_ptr<StandaloneDecider>> StandaloneDecider::Create(const Clock& clock,
                                                                     agent::ToolCaller tools,
                                                                     bool verify_tls_peers) {
  auto impl = std::make_unique<Impl>(clock, std::move(tools));
  EngineOptions options;
  options.verify_tls_peers = verify_tls_peers;
  CAIRN_RETURN_IF_ERROR(AddExecutors(impl->router, impl->io.get_executor(), options));
  impl->thread = std::thread([io = &impl->io] { io->run(); });
  return std::unique_ptr<StandaloneDecider>(new StandaloneDecider(std::move(impl)));
}

StandaloneDecider::StandaloneDecider(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StandaloneDecider::~StandaloneDecider() = default;

storage::AgentDecided StandaloneDecider::Decide(agent::Agent& agent, const std::string& run_id,
                                                const Definition& definition,
                                                const DecisionCommand& command) {
  const agent::DecisionRequest request = MakeDecisionRequest(run_id, definition, command);
  agent::ExecutorAgentIo io(impl_->router.Find("http"), impl_->router.Find("shell"), impl_->tools);
  const agent::DecisionOutcome outcome = agent::Decide(agent, request, io, impl_->clock);
  return MakeAgentDecided(outcome, request, nullptr);
}

}  // namespace cairn::engine
