// Every bound in cairn, in one place. Units come last in the name.
//
// Changing a bound that shapes data on disk (ids, event sizes) needs a format review:
// stores written with a larger bound must still be readable.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn::limits {

// Ids.
inline constexpr size_t run_id_bytes_max = 128;
inline constexpr size_t start_key_bytes_max = 256;
inline constexpr size_t timer_id_bytes_max = 128;
inline constexpr size_t timers_per_run_max = 1024;  // outstanding at once

// Events and transitions.
inline constexpr size_t event_bytes_max = 1 << 20;           // one encoded event
inline constexpr size_t inline_payload_bytes_max = 64 << 10;  // larger payloads go to blobs
inline constexpr size_t events_per_transition_max = 1024;
inline constexpr size_t transition_bytes_max = 8 << 20;
inline constexpr uint64_t events_per_run_max = uint64_t{1} << 40;
inline constexpr size_t blob_bytes_max = 64 << 20;
inline constexpr size_t definition_bytes_max = 4 << 20;

// Decoding stored or received Cap'n Proto bytes.
inline constexpr uint64_t decode_traversal_words_max = (event_bytes_max / 8) * 4;
inline constexpr int decode_nesting_max = 32;

// Group commit.
inline constexpr size_t group_commit_transitions_max = 4096;
inline constexpr size_t group_commit_bytes_max = 16 << 20;
inline constexpr size_t commit_queue_transitions_max = 65536;
inline constexpr size_t commit_queue_bytes_max = 256 << 20;

// Operators' YAML files (catalogs, policies, agents): nodes once aliases are expanded.
inline constexpr size_t yaml_expanded_nodes_max = 1'000'000;

// Operators' settings (storage: applied policy, kill switches).
inline constexpr size_t setting_bytes_max = 64 << 10;

// Reads.
inline constexpr size_t history_read_events_max = 100'000;
inline constexpr size_t list_runs_max = 10'000;
inline constexpr size_t due_timers_max = 10'000;

// JSON values (workflow data, tool arguments and results).
inline constexpr size_t json_depth_max = 128;

// Definitions (OWS documents).
inline constexpr size_t definition_nodes_max = 200'000;  // after YAML alias expansion
inline constexpr size_t definition_depth_max = 64;       // nested task lists
inline constexpr size_t definition_tasks_max = 10'000;
inline constexpr size_t expression_bytes_max = 16 << 10;

// Runs.
inline constexpr size_t run_data_bytes_max = 1 << 20;        // workflow/task data, context
inline constexpr size_t engine_state_bytes_max = 8 << 20;    // serialized interpreter state
// The state nests run data inside its frames: it may be this much deeper than the data.
inline constexpr size_t engine_state_extra_depth_max = 32;
// A larger serialized state is kept in a blob, the header naming it.
inline constexpr size_t engine_state_inline_bytes_max = 512 << 10;
inline constexpr uint64_t run_steps_max = 100'000;           // tasks routed per run
inline constexpr size_t run_inbox_events_max = 1024;         // signals not yet consumed
inline constexpr uint32_t retry_attempts_max = 1000;
inline constexpr uint64_t retry_delay_ms_max = 7ull * 24 * 3600 * 1000;

// Tools.
inline constexpr uint64_t tool_call_timeout_ms_default = 60'000;
inline constexpr size_t tool_output_bytes_max = 16 << 20;  // stdout / HTTP body / MCP reply
inline constexpr size_t tool_stderr_bytes_max = 64 << 10;   // kept for error messages
inline constexpr size_t http_response_header_bytes_max = 64 << 10;
inline constexpr uint32_t http_redirects_max = 10;
inline constexpr uint32_t mcp_restarts_max = 5;             // per call, if the server dies

// Agents (per decision).
inline constexpr size_t agent_options_max = 64;              // the allowlist
inline constexpr size_t agent_option_bytes_max = 256;        // one option
inline constexpr size_t agent_goal_bytes_max = 16 << 10;
inline constexpr size_t agent_context_bytes_max = 256 << 10; // the context, as JSON
inline constexpr size_t agent_tools_max = 32;                // read tools offered
inline constexpr size_t agent_answer_bytes_max = 64 << 10;   // one raw answer (JSON text)
inline constexpr size_t agent_rationale_bytes_max = 4 << 10;
inline constexpr size_t agent_transcript_bytes_max = 4 << 20; // each of request/response
inline constexpr uint32_t agent_steps_max = 32;              // ceiling of with.max_steps
inline constexpr uint32_t agent_steps_default = 4;
inline constexpr uint32_t agent_tool_calls_per_step_max = 8;
inline constexpr size_t agent_tool_result_bytes_max = 64 << 10;  // as sent back to a model
inline constexpr uint64_t agent_timeout_ms_default = 60'000;
inline constexpr uint64_t agent_timeout_ms_max = 3'600'000;
inline constexpr uint32_t agent_http_attempts_max = 10;      // retries of one model call
inline constexpr size_t agents_file_bytes_max = 1 << 20;
inline constexpr size_t agents_max = 1000;

// Policy.
inline constexpr size_t policy_bytes_max = 1 << 20;
inline constexpr size_t policy_rules_max = 10'000;
inline constexpr size_t policy_conditions_per_rule_max = 32;
inline constexpr size_t policy_selectors_max = 1000;         // names in one rule list
inline constexpr uint64_t approval_expiry_ms_default = 24ull * 3600 * 1000;
inline constexpr uint64_t approval_expiry_ms_max = 30ull * 24 * 3600 * 1000;
inline constexpr size_t approval_reason_bytes_max = 4 << 10;

}  // namespace cairn::limits
