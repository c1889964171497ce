# engine/core: the interpreter, the scheduler and the Engine API.
add_library(cairn_engine
  core/decisions.cc
  core/engine.cc
  core/executors.cc
  core/governance.cc
  core/interpreter.cc
  core/run_state.cc
  core/standalone_decider.cc
  core/tool_router.cc
)
target_include_directories(cairn_engine PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(cairn_engine
  PUBLIC cairn_base cairn_storage cairn_definition cairn_expr cairn_schema cairn_tools
         cairn_policy cairn_agent
         Boost::headers
  PRIVATE spdlog::spdlog)
target_link_libraries(cairn_engine PRIVATE cairn_process cairn_http)
