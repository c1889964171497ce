// The first stage of loading a definition: YAML (or JSON) text to a tree of positioned
// nodes, typed as YAML 1.2's core schema says.
//
// yaml-cpp's event parser feeds a builder that enforces every bound before the tree grows
// (text size, node count with aliases expanded, nesting depth), so hostile text (alias
// bombs, `[[[[...` a million deep, several documents) ends in a clean error rather than in
// memory or stack exhaustion. yaml-cpp's exceptions are caught here and never leave this
// file.
//
// Scalars are typed as the YAML 1.2 core schema does: plain `null`/`~`/empty are null,
// `true`/`false` (three spellings each) booleans, decimal/0o/0x integers and decimal
// floats numbers; everything else, and every quoted or block scalar, is a string. `.inf`
// and `.nan` are refused (JSON cannot hold them). Tags other than the core ones
// (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`) are refused.
// Mapping keys must be scalars; each key appears once per mapping. Keys and strings must
// be well-formed UTF-8 (so the canonical JSON is faithful, never a lossy repair).
//
// Trees are immutable once built and may share subtrees (an alias points at its anchor's
// node), so they are safe to read from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/definition/definition.h"

namespace cairn::engine::definition_impl {

struct SourceNode {
  enum class Kind : uint8_t { kScalar = 0, kSequence, kMapping };
  struct Entry {
    std::string key;
    SourcePos key_pos;
    std::shared_ptr<const SourceNode> value;
  };

  Kind kind = Kind::kScalar;
  SourcePos pos;
  Json scalar;  // kScalar: null, boolean, integer, float or string
  std::vector<std::shared_ptr<const SourceNode>> items;  // kSequence
  std::vector<Entry> entries;                            // kMapping, in document order, keys unique
  uint64_t nodes = 1;                                    // nodes in this subtree, aliases expanded
  uint64_t bytes = 0;   // scalar and key bytes in this subtree (+8 a node), aliases expanded
  uint32_t height = 1;  // nesting levels of this subtree (a scalar is 1)

  bool IsMapping() const { return kind == Kind::kMapping; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsString() const { return kind == Kind::kScalar && scalar.is_string(); }
  bool IsNull() const { return kind == Kind::kScalar && scalar.is_null(); }
  // The mapping entry for `key`, or null (also when this is not a mapping).
  const Entry* FindEntry(std::string_view key) const;
  const SourceNode* Find(std::string_view key) const;
};

struct SourceLimits {
  size_t bytes_max = 0;
  uint64_t nodes_max = 0;           // after alias expansion
  size_t depth_max = 0;             // nesting of sequences and mappings
  uint64_t expanded_bytes_max = 0;  // SourceNode::bytes of the root, aliases expanded
};

// Parses `text` as exactly one YAML document. On error: kInvalidArgument with one line,
// "SOURCE:LINE:COL: [/json/pointer: ]what is wrong" (no position when the error has none,
// e.g. the size bound).
Result<std::shared_ptr<const SourceNode>> ParseSource(std::string_view text,
                                                      std::string_view source_name,
                                                      const SourceLimits& limits);

// The JSON value of a subtree (object keys sorted). Recursion is bounded by the
// tree's height, which ParseSource bounded.
Json ToJson(const SourceNode& node);

// "a string", "an integer", "a number", "a boolean", "null", "a sequence", "a mapping".
std::string_view DescribeNode(const SourceNode& node);

// `text` with every byte that is not part of well-formed UTF-8 written as "\xNN", so
// that messages quoting input can go into JSON.
std::string SanitizeUtf8(std::string_view text);

// RFC 6901 escaping of one reference token ("~" -> "~0", "/" -> "~1").
std::string EscapePointerToken(std::string_view token);

}  // namespace cairn::engine::definition_impl
