// libFuzzer target for the stored-bytes decoders: DecodeEvent and DecodeRunHeader.
//
// Every input is decoded as both. Properties checked (a violation aborts, which libFuzzer
// reports with the input):
//  - decoding returns a value or kDataLoss; it never crashes, throws or trips ASan/UBSan;
//  - whatever decodes encodes again (except an event with an unknown body, which cannot
//    be encoded by design), and that encoding decodes to a value that encodes to the very
//    same bytes: the codec is stable on its own output;
//  - whatever decodes can be exported as JSON.
//
// Seed corpus: `CAIRN_FUZZ_WRITE_CORPUS=<dir> event_decode_fuzz` writes the encoding of
// every event kind and of a few run headers into <dir> and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "base/random.h"
#include "storage/codec.h"
#include "storage/event_json.h"
#include "tests/support/event_gen.h"

namespace cairn::storage {
namespace {

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CAIRN_ASSERT(out.good(), "cannot write " + path);
}

void WriteCorpus(const std::string& dir) {
  Random rng(1);
  for (size_t kind = 0; kind < testing::kEventBodyKinds; ++kind) {
    Event event = testing::RandomEvent(rng, 32);
    event.body = testing::SampleBody(kind);
    auto bytes = EncodeEvent(event);
    CAIRN_ASSERT(bytes.ok(), bytes.status().ToString());
    WriteFile(dir + "/event_" + std::string(KindName(event.body)), *bytes);
  }
  for (int i = 0; i < 3; ++i) {
    auto bytes = EncodeRunHeader(testing::RandomRunHeader(rng));
    CAIRN_ASSERT(bytes.ok(), bytes.status().ToString());
    WriteFile(dir + "/header_" + std::to_string(i), *bytes);
  }
  std::fprintf(stderr, "wrote the seed corpus to %s\n", dir.c_str());
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void CheckEvent(std::string_view bytes) {
  auto event = DecodeEvent(bytes);
  if (!event.ok()) {
    CAIRN_ASSERT(event.status().code() == StatusCode::kDataLoss, event.status().ToString());
    return;
  }
  (void)Dump(EventToJson(*event));
  std::string first;
  const Status encoded = EncodeEvent(*event, &first);
  if (std::holds_alternative<UnknownBody>(event->body)) {
    CAIRN_ASSERT(encoded.code() == StatusCode::kInvalidArgument, encoded.ToString());
    return;
  }
  CAIRN_ASSERT(encoded.ok(), "decoded event does not encode: " + encoded.ToString());
  auto again = DecodeEvent(first);
  CAIRN_ASSERT(again.ok(), "re-encoded event does not decode: " + again.status().ToString());
  std::string second;
  CAIRN_ASSERT(EncodeEvent(*again, &second).ok(), "second encoding failed");
  CAIRN_ASSERT(first == second, "encoding is not stable");
}

void CheckHeader(std::string_view bytes) {
  auto header = DecodeRunHeader(bytes);
  if (!header.ok()) {
    CAIRN_ASSERT(header.status().code() == StatusCode::kDataLoss, header.status().ToString());
    return;
  }
  (void)Dump(RunHeaderToJson(*header));
  std::string first;
  const Status encoded = EncodeRunHeader(*header, &first);
  CAIRN_ASSERT(encoded.ok(), "decoded header does not encode: " + encoded.ToString());
  auto again = DecodeRunHeader(first);
  CAIRN_ASSERT(again.ok(), "re-encoded header does not decode: " + again.status().ToString());
  std::string second;
  CAIRN_ASSERT(EncodeRunHeader(*again, &second).ok(), "second encoding failed");
  CAIRN_ASSERT(first == second, "header encoding is not stable");
}

}  // namespace
}  // namespace cairn::storage

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("CAIRN_FUZZ_WRITE_CORPUS"); dir != nullptr && *dir != 0) {
    cairn::storage::WriteCorpus(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  cairn::storage::CheckEvent(bytes);
  cairn::storage::CheckHeader(bytes);
  return 0;
}
