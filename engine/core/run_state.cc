#include "engine/core/run_state.h"

namespace cairn::engine {
namespace {

constexpr int kStateVersion = 1;

Json FrameToJson(const Frame& f) {
  if (f.is_list) {
    return Json{{"l", static_cast<int>(f.list)}, {"o", f.owner}, {"i", f.index}, {"d", *f.data}};
  }
  Json j{{"t", f.task},
         {"p", static_cast<int>(f.phase)},
         {"in", *f.input},
         {"ti", *f.tinput},
         {"s", f.started_ns}};
  if (!f.timeout_timer.empty()) {
    j["tt"] = f.timeout_timer;
    j["td"] = f.timeout_due_ns;
  }
  if (!f.items.is_null()) j["it"] = f.items;
  if (f.iteration != 0) j["n"] = f.iteration;
  if (f.attempt != 1) j["a"] = f.attempt;
  if (!f.error.is_null()) j["e"] = f.error;
  if (!f.key.empty()) j["k"] = f.key;
  if (f.key_due_ns != 0) j["kd"] = f.key_due_ns;
  if (!f.consumed.is_null()) j["c"] = f.consumed;
  if (!f.matched.is_null()) j["m"] = f.matched;
  if (!f.data->is_null()) j["d"] = *f.data;
  if (!f.pending.is_null()) j["pd"] = f.pending;
  return j;
}

template <typename T>
bool Read(const Json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return true;
  try {
    *out = it->get<T>();
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

Result<Frame> FrameFromJson(const Json& j) {
  Frame f;
  if (!j.is_object()) return Status::DataLoss("engine state: a frame is not an object");
  bool ok = true;
  if (j.contains("l")) {
    f.is_list = true;
    int list = 0;
    ok &= Read(j, "l", &list) && Read(j, "o", &f.owner) && Read(j, "i", &f.index);
    if (list < 0 || list > static_cast<int>(ListKind::kCatchBody)) ok = false;
    f.list = static_cast<ListKind>(list);
    if (auto it = j.find("d"); it != j.end()) f.data = *it;
  } else {
    int phase = 0;
    ok &= Read(j, "t", &f.task) && Read(j, "p", &phase) && Read(j, "s", &f.started_ns) &&
          Read(j, "tt", &f.timeout_timer) && Read(j, "td", &f.timeout_due_ns) &&
          Read(j, "n", &f.iteration) && Read(j, "a", &f.attempt) && Read(j, "k", &f.key) &&
          Read(j, "kd", &f.key_due_ns);
    if (phase < 0 || phase > static_cast<int>(TaskPhase::kDecision)) ok = false;
    f.phase = static_cast<TaskPhase>(phase);
    for (auto [key, field] : {std::pair{"in", &f.input}, {"ti", &f.tinput}, {"d", &f.data}}) {
      if (auto it = j.find(key); it != j.end()) *field = *it;
    }
    for (auto [key, field] : {std::pair{"it", &f.items},
                              {"e", &f.error},
                              {"c", &f.consumed},
                              {"m", &f.matched},
                              {"pd", &f.pending}}) {
      if (auto it = j.find(key); it != j.end()) *field = *it;
    }
  }
  if (!ok) return Status::DataLoss("engine state: a frame has a field of the wrong type");
  return f;
}

}  // namespace

Json BudgetToJson(const storage::BudgetAmounts& a) {
  return Json{{"steps", a.steps},
              {"tokens", a.tokens},
              {"cost_micros", a.cost_micros},
              {"wall_ms", a.wall_ms},
              {"tool_calls", a.tool_calls}};
}

storage::BudgetAmounts BudgetFromJson(const Json& j) {
  storage::BudgetAmounts a;
  if (!j.is_object()) return a;
  a.steps = j.value("steps", uint64_t{0});
  a.tokens = j.value("tokens", uint64_t{0});
  a.cost_micros = j.value("cost_micros", int64_t{0});
  a.wall_ms = j.value("wall_ms", uint64_t{0});
  a.tool_calls = j.value("tool_calls", uint64_t{0});
  return a;
}

Json RunStateToJson(const RunState& s) {
  Json stack = Json::array();
  for (const Frame& f : s.stack) stack.push_back(FrameToJson(f));
  Json j{{"v", kStateVersion},
         {"run", s.run_id},
         {"started", s.started_ns},
         {"now", s.now_ns},
         {"input", s.input},
         {"context", s.context},
         {"stack", std::move(stack)},
         {"steps", s.steps},
         {"effects", s.effects},
         {"timers", s.timers},
         {"inbox", s.inbox},
         {"status", static_cast<int>(s.status)},
         {"stop", static_cast<int>(s.stop_reason)}};
  if (!s.workflow_timer.empty()) j["wtimer"] = s.workflow_timer;
  if (!s.waiting_on.empty()) j["waiting"] = s.waiting_on;
  if (s.effect_indeterminate) j["indeterminate"] = true;
  if (!s.pending_call.is_null()) j["call"] = s.pending_call;
  if (s.deferred_start) j["deferred"] = true;
  const storage::BudgetAmounts none{};
  if (!(s.budget_caps == none)) j["bcaps"] = BudgetToJson(s.budget_caps);
  if (!(s.budget_spent == none)) j["bspent"] = BudgetToJson(s.budget_spent);
  if (!(s.budget_reserved == none)) j["breserved"] = BudgetToJson(s.budget_reserved);
  if (s.cost_unknown) j["cost_unknown"] = true;
  if (!s.budget_timer.empty()) j["btimer"] = s.budget_timer;
  if (!s.pending_decision.is_null()) j["decision"] = s.pending_decision;
  return j;
}

Result<RunState> RunStateFromJson(const Json& j) {
  if (!j.is_object() || j.value("v", 0) != kStateVersion) {
    return Status::DataLoss("engine state: not a version " + std::to_string(kStateVersion) +
                            " state");
  }
  RunState s;
  int status = 0;
  int stop = 0;
  bool ok =
      Read(j, "run", &s.run_id) && Read(j, "started", &s.started_ns) && Read(j, "now", &s.now_ns) &&
      Read(j, "steps", &s.steps) && Read(j, "effects", &s.effects) &&
      Read(j, "timers", &s.timers) && Read(j, "status", &status) && Read(j, "stop", &stop) &&
      Read(j, "wtimer", &s.workflow_timer) && Read(j, "waiting", &s.waiting_on) &&
      Read(j, "indeterminate", &s.effect_indeterminate) && Read(j, "deferred", &s.deferred_start) &&
      Read(j, "cost_unknown", &s.cost_unknown) && Read(j, "btimer", &s.budget_timer);
  if (!ok) return Status::DataLoss("engine state: a field has the wrong type");
  s.status = static_cast<storage::RunStatus>(status);
  s.stop_reason = static_cast<storage::StopReason>(stop);
  if (auto it = j.find("input"); it != j.end()) s.input = *it;
  if (auto it = j.find("context"); it != j.end()) s.context = *it;
  if (auto it = j.find("inbox"); it != j.end() && it->is_array()) s.inbox = *it;
  if (auto it = j.find("call"); it != j.end()) s.pending_call = *it;
  if (auto it = j.find("decision"); it != j.end()) s.pending_decision = *it;
  if (auto it = j.find("bcaps"); it != j.end()) s.budget_caps = BudgetFromJson(*it);
  if (auto it = j.find("bspent"); it != j.end()) s.budget_spent = BudgetFromJson(*it);
  if (auto it = j.find("breserved"); it != j.end()) s.budget_reserved = BudgetFromJson(*it);
  auto stack = j.find("stack");
  if (stack == j.end() || !stack->is_array()) {
    return Status::DataLoss("engine state: no stack");
  }
  for (const Json& frame : *stack) {
    CAIRN_ASSIGN_OR_RETURN(Frame f, FrameFromJson(frame));
    s.stack.push_back(std::move(f));
  }
  return s;
}

}  // namespace cairn::engine
