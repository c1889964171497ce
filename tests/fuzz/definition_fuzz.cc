// libFuzzer target for the definition loader: LoadDefinition on arbitrary text.
//
// Properties checked (a violation aborts, which libFuzzer reports with the input):
//  - loading returns a definition or kInvalidArgument (kFailedPrecondition only when the
//    host has a $HOME/.jq); it never crashes, throws, overflows the stack or trips
//    ASan/UBSan, whatever the nesting, aliases or size;
//  - an error message is one or more "SOURCE...: ..." lines, at most 20 problems;
//  - a loaded definition is consistent: hash == SHA-256 of canonical, tasks[i]->id == i,
//    every `then` goto points inside its list;
//  - its canonical bytes load again (LoadCanonicalDefinition) to the very same bytes,
//    hash and number of tasks.
//
// Seed corpus: `CAIRN_FUZZ_WRITE_CORPUS=<dir> definition_fuzz` writes a few workflows
// (YAML and JSON, most task kinds, an alias, a refused construct) into <dir> and exits.
//
// libjq 1.6 leaks a few bytes inside jq_parse on some syntax errors (not cairn's code):
// run with LSAN_OPTIONS=suppressions=FILE where FILE holds `leak:libjq.so.1`. Each
// distinct expression costs a jq compile (tens of ms, more under ASan): use -timeout=60.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "engine/definition/definition.h"

namespace cairn::engine {
namespace {

constexpr const char* kSeeds[] = {
    R"(document:
  dsl: '1.0.3'
  namespace: default
  name: seed-flow
  version: '1.0.0'
do:
  - start:
      set: &value
        colors: ${ .colors + ["red"] }
      then: pick
  - done:
      set: *value
      then: end
  - pick:
      switch:
        - red:
            when: .color == "red"
            then: done
        - other:
            then: exit
)",
    R"({"document": {"dsl": "1.0.0", "namespace": "n", "name": "json-seed", "version": "0.1.0"},
 "use": {"retries": {"r": {"delay": {"seconds": 1}, "backoff": {"linear": {}},
                           "limit": {"attempt": {"count": 3}}}},
         "errors": {"e": {"type": "https://x/e", "status": 400}},
         "timeouts": {"t": {"after": "PT1M"}}},
 "do": [{"t": {"try": [{"c": {"call": "tool.x", "with": {"a": "${ .a }"}, "timeout": "t"}}],
               "catch": {"errors": {"with": {"status": 503}}, "as": "err", "retry": "r",
                         "do": [{"r": {"raise": {"error": "e"}}}]}}}]})",
    R"(document: {dsl: 1.0.0, namespace: ns, name: loops, version: 1.0.0}
input:
  schema:
    document: {type: object, properties: {items: {type: array}}}
  from: .
do:
  - each:
      for: {each: it, at: i, in: .items}
      while: $i < 10
      do:
        - w: {wait: PT0.5S}
        - l:
            listen:
              to:
                any:
                  - with: {type: com.example.x, data: '${ .ok }'}
        - r:
            run:
              shell: {command: echo, arguments: ['${ $it }'], environment: {A: b}}
              return: all
  - h:
      call: http
      with: {method: get, endpoint: {uri: 'https://example.com/{id}'}}
)",
    R"(document: {dsl: '1.0.3', namespace: x, name: refused, version: '1.0.0'}
do:
  - f:
      fork:
        branches: []
  - loop:
      set: {a: 1}
      then: loop
)",
};

void WriteCorpus(const std::string& dir) {
  int index = 0;
  for (const char* seed : kSeeds) {
    std::string path = dir + "/seed_" + std::to_string(index++);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << seed;
    CAIRN_ASSERT(out.good(), "cannot write " + path);
  }
  std::fprintf(stderr, "wrote the seed corpus to %s\n", dir.c_str());
}

void CheckGotos(const TaskList& tasks) {
  for (const Task& task : tasks) {
    if (task.then.kind == FlowDirective::Kind::kGoto) {
      CAIRN_ASSERT(task.then.target_index < tasks.size() &&
                       tasks[task.then.target_index].name == task.then.target,
                   "goto out of its list at " + task.path);
    }
    if (const auto* block = std::get_if<DoBody>(&task.body)) CheckGotos(block->tasks);
    if (const auto* loop = std::get_if<ForBody>(&task.body)) CheckGotos(loop->tasks);
    if (const auto* attempt = std::get_if<TryBody>(&task.body)) {
      CheckGotos(attempt->tasks);
      CheckGotos(attempt->catch_.do_);
    }
  }
}

void CheckLoaded(const Definition& definition) {
  CAIRN_ASSERT(definition.hash == Sha256::Of(definition.canonical), "hash != SHA-256(canonical)");
  for (size_t i = 0; i < definition.tasks.size(); ++i) {
    CAIRN_ASSERT(definition.tasks[i]->id == i, "task ids are not positions");
  }
  CheckGotos(definition.do_);
  auto reloaded = LoadCanonicalDefinition(definition.canonical);
  CAIRN_ASSERT(reloaded.ok(), "canonical form does not load: " + reloaded.status().ToString() +
                                  "\n" + definition.canonical);
  CAIRN_ASSERT((*reloaded)->canonical == definition.canonical, "canonical form not stable");
  CAIRN_ASSERT((*reloaded)->hash == definition.hash, "hash changed on reload");
  CAIRN_ASSERT((*reloaded)->tasks.size() == definition.tasks.size(), "task count changed");
}

void CheckFailed(const Status& status) {
  if (status.code() == StatusCode::kFailedPrecondition) return;  // $HOME/.jq on this host
  CAIRN_ASSERT(status.code() == StatusCode::kInvalidArgument,
               "unexpected error code: " + status.ToString());
  const std::string& message = status.message();
  CAIRN_ASSERT(message.rfind("fuzz", 0) == 0, "message does not start with the source name");
  size_t lines = 1;
  for (char c : message) lines += c == '\n';
  CAIRN_ASSERT(lines <= 21, "more than 20 problems and the trailer");
}

}  // namespace
}  // namespace cairn::engine

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("CAIRN_FUZZ_WRITE_CORPUS")) {
    cairn::engine::WriteCorpus(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto definition = cairn::engine::LoadDefinition(text, "fuzz");
  if (definition.ok()) {
    cairn::engine::CheckLoaded(**definition);
  } else {
    cairn::engine::CheckFailed(definition.status());
  }
  return 0;
}
