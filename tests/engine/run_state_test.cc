#include "engine/core/run_state.h"

#include <gtest/gtest.h>

#include <utility>

namespace cairn::engine {
namespace {

// Frames share one value (a list's data, a task's input and transformed input); the
// persisted state must still hold each of them in full, exactly as when each was a copy.
TEST(RunStateTest, SharedFrameValuesArePersistedInFull) {
  RunState s;
  s.run_id = "r1";
  Frame list;
  list.is_list = true;
  list.list = ListKind::kRoot;
  list.data = Json{{"ticket", "T-1"}, {"amount", 120}};
  Frame task;
  task.task = 3;
  task.phase = TaskPhase::kEffect;
  task.input = list.data;
  task.tinput = task.input;
  task.key = "r1#1";
  ASSERT_TRUE(task.tinput.SharesWith(list.data));
  s.stack.push_back(std::move(list));
  s.stack.push_back(std::move(task));
  Frame empty_list;  // null data is written as null
  empty_list.is_list = true;
  empty_list.list = ListKind::kDo;
  empty_list.owner = 3;
  s.stack.push_back(std::move(empty_list));

  const Json value{{"amount", 120}, {"ticket", "T-1"}};
  const Json json = RunStateToJson(s);
  EXPECT_EQ(json["stack"], (Json::array({
                               Json{{"l", 0}, {"o", 0}, {"i", 0}, {"d", value}},
                               Json{{"t", 3},
                                    {"p", static_cast<int>(TaskPhase::kEffect)},
                                    {"in", value},
                                    {"ti", value},
                                    {"s", 0},
                                    {"k", "r1#1"}},
                               Json{{"l", static_cast<int>(ListKind::kDo)},
                                    {"o", 3},
                                    {"i", 0},
                                    {"d", nullptr}},
                           })));

  Result<RunState> back = RunStateFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(RunStateToJson(*back), json);
  EXPECT_EQ(*back->stack[1].tinput, value);
  EXPECT_TRUE(back->stack[2].data->is_null());
}

}  // namespace
}  // namespace cairn::engine
