#include "storage/codec.h"

#include <capnp/any.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/limits.h"
#include "base/random.h"
#include "storage/event.capnp.h"
#include "storage/event_json.h"
#include "tests/support/assertions.h"
#include "tests/support/event_gen.h"
#include "tests/support/seed.h"

namespace cairn::storage {
namespace {

using testing::IsError;

namespace support = ::cairn::testing;

static_assert(std::endian::native == std::endian::little,
              "the raw-word tests below assume a little-endian host");

constexpr size_t kWord = 8;

// --- Helpers ------------------------------------------------------------------------------

std::string Show(const Event& event) {
  return EventToJson(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Event MakeEvent(EventBody body) {
  Event event;
  event.run_id = RunId::FromTrusted("run-1");
  event.seq = EventSeq(7);
  event.time_ns = 1'795'248'300'123'456'789;
  event.prev_hash = Sha256::Of("prev");
  event.task_path = "/do/0/first";
  event.body = std::move(body);
  return event;
}

std::string MustEncode(const Event& event) {
  auto bytes = EncodeEvent(event);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

::testing::AssertionResult RoundTrips(const Event& event) {
  auto bytes = EncodeEvent(event);
  if (!bytes.ok()) return ::testing::AssertionFailure() << bytes.status().ToString();
  auto decoded = DecodeEvent(*bytes);
  if (!decoded.ok()) return ::testing::AssertionFailure() << decoded.status().ToString();
  if (!(*decoded == event)) {
    return ::testing::AssertionFailure()
           << "\nwrote " << Show(event) << "\nread  " << Show(*decoded);
  }
  return ::testing::AssertionSuccess();
}

// Hostile input may decode (a flipped bit in a text is still a valid event) or be
// kDataLoss; anything else, or a crash, is a bug. Whatever decodes must encode again.
::testing::AssertionResult DecodesOrDataLoss(std::string_view bytes) {
  auto event = DecodeEvent(bytes);
  if (event.ok()) {
    std::string again;
    const Status encoded = EncodeEvent(*event, &again);
    if (!encoded.ok() && !std::holds_alternative<UnknownBody>(event->body)) {
      return ::testing::AssertionFailure()
             << "decoded but cannot re-encode: " << encoded.ToString();
    }
  } else if (event.status().code() != StatusCode::kDataLoss ||
             event.status().message().rfind("event: ", 0) != 0) {
    return ::testing::AssertionFailure() << "event: " << event.status().ToString();
  }
  auto header = DecodeRunHeader(bytes);
  if (!header.ok() && (header.status().code() != StatusCode::kDataLoss ||
                       header.status().message().rfind("run header: ", 0) != 0)) {
    return ::testing::AssertionFailure() << "header: " << header.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

uint64_t LoadWord(const std::string& bytes, size_t index) {
  uint64_t w;
  std::memcpy(&w, bytes.data() + index * kWord, kWord);
  return w;
}

void StoreWord(std::string* bytes, size_t index, uint64_t w) {
  std::memcpy(bytes->data() + index * kWord, &w, kWord);
}

// Cap'n Proto list pointer fields (see encoding.md): A=1, B = signed word offset from the
// end of the pointer, C = element size code, D = element count.
bool IsListPointer(uint64_t w, unsigned size_code) {
  return (w & 3) == 1 && ((w >> 32) & 7) == size_code;
}
int64_t PointerOffset(uint64_t w) { return static_cast<int32_t>(static_cast<uint32_t>(w)) >> 2; }
uint64_t ListPointer(int64_t offset, unsigned size_code, uint64_t count) {
  return (count << 35) | (uint64_t{size_code} << 32) | ((static_cast<uint32_t>(offset) << 2) | 1u);
}
constexpr unsigned kByteElements = 2;
constexpr unsigned kPointerElements = 6;

std::string Serialize(capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

capnp::Data::Reader DataOf(const std::string& s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

// A valid Event built directly on the wire types, for tests that then break one field.
wire::Event::Builder InitValidEvent(capnp::MessageBuilder& message) {
  auto event = message.initRoot<wire::Event>();
  event.setRunId("run-1");
  event.setSeq(0);
  event.setPrevHash(DataOf(std::string(32, '\0')));
  event.getBody().initRunStarted().setWorkflowName("wf");
  return event;
}

wire::RunHeader::Builder InitValidHeader(capnp::MessageBuilder& message) {
  auto header = message.initRoot<wire::RunHeader>();
  header.setRunId("run-1");
  header.setChainHead(DataOf(std::string(32, '\0')));
  return header;
}

// Overwrites the discriminant of the union described by `Union` in `target`'s data section.
template <typename Union, typename Builder>
void SetDiscriminant(Builder target, uint16_t value) {
  const uint32_t offset =
      capnp::Schema::from<Union>().getProto().getStruct().getDiscriminantOffset();
  kj::ArrayPtr<kj::byte> data = capnp::toAny(target).getDataSection();
  ASSERT_LE((offset + 1) * sizeof(uint16_t), data.size());
  std::memcpy(data.begin() + offset * sizeof(uint16_t), &value, sizeof value);
}

// --- Field coverage -----------------------------------------------------------------------
//
// Walks encoded messages with the schema to prove that every field of the schema is
// written by the encoder, read back by the decoder (round trips) and set by the generators.
// A field added to event.capnp but not to event.h, codec.cc and event_gen.cc fails here.

bool IsSet(capnp::DynamicStruct::Reader r, capnp::StructSchema::Field field) {
  if (!r.has(field, capnp::HasMode::NON_DEFAULT)) return false;
  const capnp::DynamicValue::Reader value = r.get(field);
  switch (field.getType().which()) {
    case capnp::schema::Type::TEXT:
      return value.as<capnp::Text>().size() > 0;
    case capnp::schema::Type::DATA:
      return value.as<capnp::Data>().size() > 0;
    case capnp::schema::Type::LIST:
      return value.as<capnp::DynamicList>().size() > 0;
    default:
      return true;
  }
}

// How a field is named in the coverage sets. With `any_member`, the scalar members of a
// union (Payload's json and blob) share one name: one value can only set one of them.
std::string FieldName(const std::string& path, capnp::StructSchema::Field field, bool any_member) {
  const bool union_member =
      field.getProto().getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT;
  if (any_member && union_member && !field.getType().isStruct()) return path + ".(member)";
  return path + "." + field.getProto().getName().cStr();
}

// A list of structs (RunHeader.timers): its elements' fields count as the list's, so that
// "timers.timerId" must be set by some element.
bool IsStructList(capnp::StructSchema::Field field) {
  return field.getType().isList() && field.getType().asList().getElementType().isStruct();
}

void CollectSetFields(capnp::DynamicStruct::Reader r, const std::string& path, bool any_member,
                      std::set<std::string>* out) {
  for (const auto field : r.getSchema().getFields()) {
    if (field.getType().isVoid()) continue;
    const bool group = field.getProto().isGroup();
    if (!group && !IsSet(r, field)) continue;
    const std::string name = FieldName(path, field, any_member);
    if (!group) out->insert(name);
    if (field.getType().isStruct()) {
      CollectSetFields(r.get(field).as<capnp::DynamicStruct>(), name, any_member, out);
    } else if (IsStructList(field)) {
      for (const auto element : r.get(field).as<capnp::DynamicList>()) {
        CollectSetFields(element.as<capnp::DynamicStruct>(), name, any_member, out);
      }
    }
  }
}

void CollectAllFields(capnp::StructSchema schema, const std::string& path, bool any_member,
                      std::set<std::string>* out) {
  for (const auto field : schema.getFields()) {
    if (field.getType().isVoid()) continue;
    const std::string name = FieldName(path, field, any_member);
    if (!field.getProto().isGroup()) out->insert(name);
    if (field.getType().isStruct()) {
      CollectAllFields(field.getType().asStruct(), name, any_member, out);
    } else if (IsStructList(field)) {
      CollectAllFields(field.getType().asList().getElementType().asStruct(), name, any_member, out);
    }
  }
}

template <typename Root>
void CollectSetFieldsOfEncoding(const std::string& bytes, std::set<std::string>* out,
                                bool any_member = false) {
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / kWord);
  std::memcpy(static_cast<void*>(words.begin()), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  CollectSetFields(capnp::toDynamic(reader.getRoot<Root>()), "", any_member, out);
}

template <typename Root>
std::set<std::string> AllFields(bool any_member = false) {
  std::set<std::string> all;
  CollectAllFields(capnp::Schema::from<Root>(), "", any_member, &all);
  return all;
}

std::vector<std::string> Missing(const std::set<std::string>& all,
                                 const std::set<std::string>& seen) {
  std::vector<std::string> missing;
  for (const auto& name : all) {
    if (seen.count(name) == 0) missing.push_back(name);
  }
  return missing;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

// --- Round trips --------------------------------------------------------------------------

TEST(CodecTest, EveryKindRoundTrips) {
  for (size_t i = 0; i < support::kEventBodyKinds; ++i) {
    const EventBody body = support::SampleBody(i);
    ASSERT_EQ(body.index(), i);
    EXPECT_TRUE(RoundTrips(MakeEvent(body))) << KindName(body);
  }
}

TEST(CodecTest, DefaultBodiesRoundTrip) {
  // Every field at its default: nothing optional is written, and it still reads back.
  for (size_t i = 0; i < support::kEventBodyKinds; ++i) {
    EventBody body = support::SampleBody(i);
    std::visit([](auto& v) { v = std::remove_reference_t<decltype(v)>{}; }, body);
    Event event = MakeEvent(body);
    event.seq = EventSeq(0);
    event.prev_hash = Sha256();
    event.task_path.clear();
    event.time_ns = 0;
    EXPECT_TRUE(RoundTrips(event)) << KindName(body);
  }
}

TEST(CodecTest, SampleBodiesSetEveryFieldOfTheSchema) {
  std::set<std::string> seen;
  for (size_t i = 0; i < support::kEventBodyKinds; ++i) {
    CollectSetFieldsOfEncoding<wire::Event>(MustEncode(MakeEvent(support::SampleBody(i))), &seen,
                                            /*any_member=*/true);
  }
  const auto missing = Missing(AllFields<wire::Event>(/*any_member=*/true), seen);
  EXPECT_TRUE(missing.empty()) << "never written: " << Join(missing);
}

TEST(CodecTest, RandomEventsRoundTripAndCoverEveryField) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  std::set<std::string> seen;
  std::string bytes;
  for (int i = 0; i < 3000; ++i) {
    const Event event = support::RandomEvent(rng, rng.Uniform(512));
    ASSERT_TRUE(RoundTrips(event)) << "event " << i;
    ASSERT_TRUE(EncodeEvent(event, &bytes).ok());
    CollectSetFieldsOfEncoding<wire::Event>(bytes, &seen);
  }
  const auto missing = Missing(AllFields<wire::Event>(), seen);
  EXPECT_TRUE(missing.empty()) << "never written: " << Join(missing);
}

// A body of kind `kind` for the reuse test: every field set, every field at its default,
// or random (most fields set), so that a reused body sees fields go from set to unset.
EventBody VariedBody(Random& rng, size_t kind) {
  EventBody body = support::SampleBody(kind);
  switch (rng.Uniform(4)) {
    case 0:
      return body;
    case 1:
      std::visit([](auto& v) { v = std::remove_reference_t<decltype(v)>{}; }, body);
      return body;
    default:
      return support::RandomEventBodyOfKind(rng, kind, rng.Uniform(256));
  }
}

std::string UnknownBodyEncoding(uint16_t which) {
  capnp::MallocMessageBuilder message;
  auto event = InitValidEvent(message);
  event.setTaskPath("/do/9");
  SetDiscriminant<wire::Event::Body>(event, which);
  return Serialize(message);
}

TEST(CodecTest, DecodingIntoAReusedEventEqualsDecodingIntoAFreshOne) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  const std::vector<RunId> runs = {support::RandomRunId(rng), support::RandomRunId(rng)};
  const std::string unknown = UnknownBodyEncoding(100);
  Event reused;
  size_t kind = 0;
  size_t same_kind = 0;
  size_t failed = 0;
  std::string bytes;
  for (uint64_t i = 0; i < 20000; ++i) {
    if (rng.OneIn(30)) {
      bytes = unknown;
    } else {
      if (rng.OneIn(2)) kind = rng.Uniform(support::kEventBodyKinds);
      same_kind += reused.body.index() == kind;
      const Sha256 prev = rng.OneIn(4) ? Sha256() : Sha256::Of(rng.Bytes(8));
      Event event = support::RandomEvent(rng, runs[rng.Uniform(runs.size())], EventSeq(i), prev,
                                         rng.Range(-5, 1'000'000));
      event.body = VariedBody(rng, kind);
      ASSERT_TRUE(EncodeEvent(event, &bytes).ok()) << Show(event);
    }
    // Now and then a damaged value: whatever it leaves behind must not leak into the next.
    if (rng.OneIn(20)) {
      bytes[rng.Uniform(bytes.size())] ^= static_cast<char>(1u << rng.Uniform(8));
    }
    const Status status = DecodeEvent(bytes, &reused);
    const auto fresh = DecodeEvent(bytes);
    ASSERT_EQ(status.ToString(), fresh.status().ToString()) << "event " << i;
    if (!status.ok()) {
      ++failed;
      continue;
    }
    ASSERT_TRUE(reused == *fresh) << "event " << i << "\nfresh  " << Show(*fresh) << "\nreused "
                                  << Show(reused);
  }
  EXPECT_GT(same_kind, 5000u);  // the sequence reuses bodies and switches kinds
  EXPECT_GT(failed, 0u);
}

TEST(CodecTest, RandomHeadersRoundTripAndCoverEveryField) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    const RunHeader header = support::RandomRunHeader(rng);
    auto bytes = EncodeRunHeader(header);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto decoded = DecodeRunHeader(*bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ASSERT_TRUE(*decoded == header) << RunHeaderToJson(header).dump() << "\n"
                                    << RunHeaderToJson(*decoded).dump();
    CollectSetFieldsOfEncoding<wire::RunHeader>(*bytes, &seen);
  }
  const auto missing = Missing(AllFields<wire::RunHeader>(), seen);
  EXPECT_TRUE(missing.empty()) << "never written: " << Join(missing);
}

TEST(CodecTest, EmptyHeaderRoundTrips) {
  RunHeader header;
  header.run_id = RunId::FromTrusted("r");
  auto bytes = EncodeRunHeader(header);
  ASSERT_TRUE(bytes.ok());
  auto decoded = DecodeRunHeader(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(*decoded == header);
}

TEST(CodecTest, HeaderTimersRoundTripInOrder) {
  RunHeader header;
  header.run_id = RunId::FromTrusted("r");
  header.timers = {{"retry-1", 1'795'248'360'000'000'000, TimerPurpose::kRetryBackoff},
                   {"wait", -5, TimerPurpose::kWait},
                   {std::string("t\0\xc3\xa9", 4), INT64_MAX, TimerPurpose::kListenTimeout}};
  auto bytes = EncodeRunHeader(header);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto decoded = DecodeRunHeader(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->timers, header.timers);
  EXPECT_TRUE(*decoded == header);
}

TEST(CodecTest, EmptyTimerListIsNotWritten) {
  RunHeader header;
  header.run_id = RunId::FromTrusted("r");
  auto bytes = EncodeRunHeader(header);
  ASSERT_TRUE(bytes.ok());
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes->size() / kWord);
  std::memcpy(static_cast<void*>(words.begin()), bytes->data(), bytes->size());
  capnp::FlatArrayMessageReader reader(words);
  EXPECT_FALSE(reader.getRoot<wire::RunHeader>().hasTimers());
}

TEST(CodecTest, HeaderTimersAtTheLimitRoundTrip) {
  RunHeader header;
  header.run_id = RunId::FromTrusted("r");
  for (size_t i = 0; i < limits::timers_per_run_max; ++i) {
    header.timers.push_back(
        {"t" + std::to_string(i), static_cast<int64_t>(i), TimerPurpose::kWait});
  }
  auto bytes = EncodeRunHeader(header);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto decoded = DecodeRunHeader(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->timers, header.timers);

  header.timers.push_back({"one-too-many", 0, TimerPurpose::kWait});
  EXPECT_TRUE(
      IsError(EncodeRunHeader(header).status(), StatusCode::kInvalidArgument, {"timers", "1025"}));
  header.timers.resize(2);
  header.timers[1].timer_id.clear();
  EXPECT_TRUE(IsError(EncodeRunHeader(header).status(), StatusCode::kInvalidArgument,
                      {"timers[1].timer_id is empty"}));
}

TEST(CodecTest, TooManyHeaderTimersIsDataLoss) {
  capnp::MallocMessageBuilder message;
  auto timers = InitValidHeader(message).initTimers(limits::timers_per_run_max + 1);
  for (unsigned int i = 0; i < timers.size(); ++i) timers[i].setTimerId("t");
  EXPECT_TRUE(IsError(DecodeRunHeader(Serialize(message)).status(), StatusCode::kDataLoss,
                      {"run header: ", "timers", "1025", "1024"}));
}

TEST(CodecTest, EmptyHeaderTimerIdIsDataLoss) {
  capnp::MallocMessageBuilder message;
  auto timers = InitValidHeader(message).initTimers(2);
  timers[0].setTimerId("t");
  timers[1].setDueAtNs(5);  // no id
  EXPECT_TRUE(IsError(DecodeRunHeader(Serialize(message)).status(), StatusCode::kDataLoss,
                      {"run header: ", "timers[1].timer_id is empty"}));
}

TEST(CodecTest, EncodingIsDeterministicAndReplacesOutput) {
  const Event event = MakeEvent(support::SampleBody(2));
  const std::string first = MustEncode(event);
  std::string out(100'000, 'x');
  const size_t capacity = out.capacity();
  ASSERT_TRUE(EncodeEvent(event, &out).ok());
  EXPECT_EQ(out, first);
  EXPECT_EQ(out.capacity(), capacity);  // reused, not reallocated
  ASSERT_TRUE(EncodeEvent(event, &out).ok());
  EXPECT_EQ(out, first);
}

TEST(CodecTest, EncodingIsOneSegment) {
  Random rng(1);
  for (size_t payload : {size_t{0}, size_t{100}, size_t{10'000}, size_t{200'000}}) {
    EventBody body = ValueRecorded{"v", Payload::Json(support::MakeJson(rng, payload))};
    const Event event = MakeEvent(body);
    const std::string bytes = MustEncode(event);
    ASSERT_GE(bytes.size(), 2 * kWord);
    const uint64_t table = LoadWord(bytes, 0);
    EXPECT_EQ(table & 0xffffffff, 0u) << "segment count - 1";
    EXPECT_EQ((table >> 32) * kWord + kWord, bytes.size()) << "segment size";
    EXPECT_TRUE(RoundTrips(event)) << payload;
  }
}

TEST(CodecTest, ZeroPrevHashIsStillWrittenAndRead) {
  Event event = MakeEvent(support::SampleBody(0));
  event.seq = EventSeq(0);
  event.prev_hash = Sha256();
  EXPECT_TRUE(RoundTrips(event));
}

TEST(CodecTest, ExtremeScalarsRoundTrip) {
  Event event = MakeEvent(TimerScheduled{"t", INT64_MIN, TimerPurpose::kListenTimeout});
  event.time_ns = INT64_MIN;
  event.seq = EventSeq(limits::events_per_run_max - 1);
  EXPECT_TRUE(RoundTrips(event));
  AgentDecided agent;
  agent.has_confidence = true;
  agent.confidence = -0.0;
  agent.usage = {UINT64_MAX, UINT64_MAX, INT64_MIN, true, UINT32_MAX};
  agent.duration_ms = UINT64_MAX;
  agent.options = {"", "a", ""};
  EXPECT_TRUE(RoundTrips(MakeEvent(agent)));
}

TEST(CodecTest, TextWithNulAndUtf8RoundTrips) {
  ValueRecorded v{std::string("a\0b\xc3\xa9\xf0\x9f\x99\x82", 9), Payload::Json("\"\\u0000\"")};
  EXPECT_TRUE(RoundTrips(MakeEvent(v)));
}

TEST(CodecTest, ConcurrentEncodeAndDecode) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      Random rng(100 + static_cast<uint64_t>(t));
      for (int i = 0; i < 300; ++i) {
        const Event event = support::RandomEvent(rng, rng.Uniform(20'000));
        if (!RoundTrips(event)) ++failures[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// --- Encoding limits and invalid values ---------------------------------------------------

TEST(CodecTest, OversizedFieldIsInvalidArgumentNamingIt) {
  RunStarted started;
  started.input = Payload::Json(std::string(limits::event_bytes_max + 1, ' '));
  std::string out = "unchanged";
  EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(started), &out), StatusCode::kInvalidArgument,
                      {"event: ", "run_started.input", std::to_string(limits::event_bytes_max)}));
  EXPECT_EQ(out, "unchanged");

  RunHeader header;
  header.run_id = RunId::FromTrusted("r");
  header.engine_state.assign(limits::event_bytes_max + 1, '\0');
  EXPECT_TRUE(IsError(EncodeRunHeader(header).status(), StatusCode::kInvalidArgument,
                      {"run header: ", "engine_state"}));
}

TEST(CodecTest, OversizedEncodingIsInvalidArgument) {
  // Each field fits on its own; together they do not.
  AgentDecided agent;
  agent.rationale.assign(limits::event_bytes_max / 2, 'r');
  agent.detail.assign(limits::event_bytes_max / 2, 'd');
  EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(agent)).status(), StatusCode::kInvalidArgument,
                      {"event: encoding is", std::to_string(limits::event_bytes_max)}));

  AgentDecided many;
  many.options.resize(limits::event_bytes_max / kWord + 1);
  EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(many)).status(), StatusCode::kInvalidArgument,
                      {"agent_decided.options"}));
}

TEST(CodecTest, LargestEncodableEventRoundTrips) {
  ValueRecorded v{"big", Payload::Json(std::string(limits::event_bytes_max - 4096, 'x'))};
  const Event event = MakeEvent(v);
  auto bytes = EncodeEvent(event);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_LE(bytes->size(), limits::event_bytes_max);
  EXPECT_TRUE(RoundTrips(event));
}

TEST(CodecTest, RejectsValuesThatCannotBeStored) {
  Event no_id = MakeEvent(support::SampleBody(0));
  no_id.run_id = RunId();
  EXPECT_TRUE(IsError(EncodeEvent(no_id).status(), StatusCode::kInvalidArgument, {"run_id"}));

  EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(UnknownBody{42})).status(),
                      StatusCode::kInvalidArgument, {"unknown body", "42"}));

  Event far = MakeEvent(support::SampleBody(0));
  far.seq = EventSeq(limits::events_per_run_max);
  EXPECT_TRUE(IsError(EncodeEvent(far).status(), StatusCode::kInvalidArgument, {"seq"}));

  PolicyVerdict verdict;
  verdict.risk = static_cast<RiskLevel>(9);
  EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(verdict)).status(), StatusCode::kInvalidArgument,
                      {"policy_verdict.risk", "9"}));

  RunHeader header;
  EXPECT_TRUE(IsError(EncodeRunHeader(header).status(), StatusCode::kInvalidArgument,
                      {"run header: run_id is empty"}));
  header.run_id = RunId::FromTrusted("r");
  header.next_seq = limits::events_per_run_max + 1;
  EXPECT_TRUE(
      IsError(EncodeRunHeader(header).status(), StatusCode::kInvalidArgument, {"next_seq"}));
}

TEST(CodecTest, RejectsInconsistentPayloads) {
  Payload none_with_text;
  none_with_text.json = "{}";
  Payload json_with_blob = Payload::Json("1");
  json_with_blob.blob = Sha256::Of("x");
  Payload blob_with_text = Payload::Blob(Sha256::Of("x"));
  blob_with_text.json = "1";
  Payload bad_kind;
  bad_kind.kind = static_cast<Payload::Kind>(7);
  for (const Payload& p : {none_with_text, json_with_blob, blob_with_text, bad_kind}) {
    EXPECT_TRUE(IsError(EncodeEvent(MakeEvent(ValueRecorded{"v", p})).status(),
                        StatusCode::kInvalidArgument, {"value_recorded.value"}));
  }
}

// --- Hostile bytes ------------------------------------------------------------------------

TEST(CodecTest, EmptyAndShortInputs) {
  EXPECT_TRUE(IsError(DecodeEvent("").status(), StatusCode::kDataLoss, {"event: empty"}));
  EXPECT_TRUE(IsError(DecodeRunHeader("").status(), StatusCode::kDataLoss, {"run header: empty"}));
  for (size_t n = 1; n < kWord; ++n) {
    EXPECT_TRUE(IsError(DecodeEvent(std::string(n, '\0')).status(), StatusCode::kDataLoss,
                        {"whole number of 8-byte words"}))
        << n;
  }
  // A segment table with one empty segment: no root pointer.
  EXPECT_TRUE(IsError(DecodeEvent(std::string(8, '\0')).status(), StatusCode::kDataLoss, {}));
  // A null root pointer reads as an empty event, whose run id is empty.
  std::string null_root(16, '\0');
  null_root[4] = 1;
  EXPECT_TRUE(IsError(DecodeEvent(null_root).status(), StatusCode::kDataLoss, {"run_id"}));
}

TEST(CodecTest, OversizedInputIsRejectedBeforeParsing) {
  std::string huge(limits::event_bytes_max + kWord, '\0');
  EXPECT_TRUE(IsError(DecodeEvent(huge).status(), StatusCode::kDataLoss,
                      {std::to_string(limits::event_bytes_max)}));
  EXPECT_TRUE(IsError(DecodeRunHeader(huge).status(), StatusCode::kDataLoss,
                      {std::to_string(limits::event_bytes_max)}));
}

TEST(CodecTest, RandomGarbage) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = rng.Bytes(rng.Uniform(600));
    if (rng.OneIn(2) && bytes.size() >= 2 * kWord) {
      // Make the framing plausible so that Cap'n Proto itself sees the garbage.
      bytes.resize(bytes.size() / kWord * kWord);
      StoreWord(&bytes, 0, (bytes.size() / kWord - 1) << 32);
    }
    ASSERT_TRUE(DecodesOrDataLoss(bytes)) << "input " << i;
  }
}

TEST(CodecTest, EveryTruncationIsDataLoss) {
  for (size_t kind = 0; kind < support::kEventBodyKinds; ++kind) {
    const std::string bytes = MustEncode(MakeEvent(support::SampleBody(kind)));
    for (size_t n = 0; n < bytes.size(); ++n) {
      ASSERT_EQ(DecodeEvent(std::string_view(bytes).substr(0, n)).status().code(),
                StatusCode::kDataLoss)
          << "kind " << kind << " truncated to " << n;
    }
  }
}

TEST(CodecTest, EveryBitFlipDecodesOrIsDataLoss) {
  size_t decoded = 0;
  size_t rejected = 0;
  for (size_t kind = 0; kind < support::kEventBodyKinds; ++kind) {
    std::string bytes = MustEncode(MakeEvent(support::SampleBody(kind)));
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
      ASSERT_TRUE(DecodesOrDataLoss(bytes)) << "kind " << kind << " bit " << bit;
      (DecodeEvent(bytes).ok() ? decoded : rejected) += 1;
      bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    }
  }
  // Both outcomes happen: flips in text are harmless, flips in pointers are not.
  EXPECT_GT(decoded, 0u);
  EXPECT_GT(rejected, 0u);
}

TEST(CodecTest, HeaderBitFlipsDecodeOrAreDataLoss) {
  Random rng(5);
  for (int i = 0; i < 3; ++i) {
    std::string bytes = *EncodeRunHeader(support::RandomRunHeader(rng));
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
      ASSERT_TRUE(DecodesOrDataLoss(bytes)) << "bit " << bit;
      bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    }
  }
}

TEST(CodecTest, SegmentTableClaims) {
  const std::string valid = MustEncode(MakeEvent(support::SampleBody(0)));
  std::string bytes = valid;
  StoreWord(&bytes, 0, 0xffffffffull);  // 2^32 segments (the count wraps in 32 bits)
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss, {"segments"}));
  StoreWord(&bytes, 0, 999);  // 1000 segments
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss, {"1000 segments"}));
  StoreWord(&bytes, 0, 0xffffffffull << 32);  // one segment of 2^32 - 1 words
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss, {"truncated"}));
  // 64 segments whose sizes wrap around if summed in 32 bits.
  std::string table(33 * kWord, '\0');
  StoreWord(&table, 0, 63 | (0xffffffffull << 32));
  StoreWord(&table, 1, 0xffffffffull | (2ull << 32));
  EXPECT_TRUE(IsError(DecodeEvent(table).status(), StatusCode::kDataLoss, {"truncated"}));
  // Segment table longer than the input.
  std::string short_table(kWord, '\0');
  StoreWord(&short_table, 0, 40);
  EXPECT_TRUE(IsError(DecodeEvent(short_table).status(), StatusCode::kDataLoss, {"segment table"}));
}

TEST(CodecTest, AcceptsMultiSegmentMessages) {
  // Another writer may split a message; a one-word first segment forces many segments.
  capnp::MallocMessageBuilder message(1, capnp::AllocationStrategy::FIXED_SIZE);
  auto event = InitValidEvent(message);
  event.setTaskPath("/do/1");
  event.getBody().initValueRecorded().setName("split");
  ASSERT_GT(message.getSegmentsForOutput().size(), 1u);
  auto decoded = DecodeEvent(Serialize(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->task_path, "/do/1");
  EXPECT_EQ(std::get<ValueRecorded>(decoded->body).name, "split");
}

TEST(CodecTest, HugeListCountInASmallBuffer) {
  AgentDecided agent;
  agent.options = {"alpha", "beta", "gamma"};
  std::string bytes = MustEncode(MakeEvent(agent));
  bool found = false;
  for (size_t i = 1; i < bytes.size() / kWord; ++i) {
    const uint64_t w = LoadWord(bytes, i);
    if (IsListPointer(w, kPointerElements) && (w >> 35) == 3) {
      StoreWord(&bytes, i, ListPointer(PointerOffset(w), kPointerElements, (1u << 29) - 1));
      found = true;
    }
  }
  ASSERT_TRUE(found);
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss, {"event: "}));

  // The run id's text pointer claims 2^29 - 1 bytes.
  std::string text = MustEncode(MakeEvent(agent));
  const uint64_t root = LoadWord(text, 1);
  const size_t data_words = (root >> 32) & 0xffff;
  const size_t run_id_index = 2 + static_cast<size_t>(PointerOffset(root)) + data_words;
  ASSERT_TRUE(IsListPointer(LoadWord(text, run_id_index), kByteElements));
  StoreWord(
      &text, run_id_index,
      ListPointer(PointerOffset(LoadWord(text, run_id_index)), kByteElements, (1u << 29) - 1));
  EXPECT_TRUE(IsError(DecodeEvent(text).status(), StatusCode::kDataLoss, {"event: "}));
}

TEST(CodecTest, OverlappingTextPointersCannotAmplifyCopies) {
  // Every list element points at the same 4 KiB text: 4 MiB of copies from ~40 KiB.
  constexpr size_t kCount = 1000;
  constexpr size_t kTextBytes = 4096;
  AgentDecided agent;
  agent.options.assign(kCount, "x");
  agent.options[0].assign(kTextBytes, 't');
  std::string bytes = MustEncode(MakeEvent(agent));
  size_t list = 0;
  for (size_t i = 1; i < bytes.size() / kWord && list == 0; ++i) {
    const uint64_t w = LoadWord(bytes, i);
    if (IsListPointer(w, kPointerElements) && (w >> 35) == kCount) list = i;
  }
  ASSERT_NE(list, 0u);
  const size_t first = list + 1 + static_cast<size_t>(PointerOffset(LoadWord(bytes, list)));
  const size_t text = first + 1 + static_cast<size_t>(PointerOffset(LoadWord(bytes, first)));
  for (size_t i = 1; i < kCount; ++i) {
    const int64_t offset = static_cast<int64_t>(text) - static_cast<int64_t>(first + i + 1);
    StoreWord(&bytes, first + i, ListPointer(offset, kByteElements, kTextBytes + 1));
  }
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss,
                      {"event: ", "overlapping pointers"}));

  // A few shared pointers stay within the budget and decode.
  std::string few = MustEncode(MakeEvent(agent));
  StoreWord(&few, first + 1,
            ListPointer(static_cast<int64_t>(text) - static_cast<int64_t>(first + 2), kByteElements,
                        kTextBytes + 1));
  auto decoded = DecodeEvent(few);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(std::get<AgentDecided>(decoded->body).options[1].size(), kTextBytes);
}

TEST(CodecTest, UnalignedInput) {
  const Event event = MakeEvent(support::SampleBody(3));
  const std::string bytes = MustEncode(event);
  for (size_t offset = 1; offset < kWord; ++offset) {
    const std::string buffer = std::string(offset, '\xee') + bytes;
    auto decoded = DecodeEvent(std::string_view(buffer).substr(offset));
    ASSERT_TRUE(decoded.ok()) << offset << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == event) << offset;
  }
  // Large enough to take the heap copy.
  ValueRecorded big{"big", Payload::Json(std::string(10'000, '1'))};
  const std::string large = " " + MustEncode(MakeEvent(big));
  auto decoded = DecodeEvent(std::string_view(large).substr(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(*decoded == MakeEvent(big));
}

// Word-aligned input is read where it is, without a copy: small and large values decode
// the same from aligned storage, and corrupting aligned input is still caught.
TEST(CodecTest, AlignedInputIsReadInPlace) {
  ValueRecorded big{"big", Payload::Json(std::string(10'000, '1'))};
  for (const Event& event : {MakeEvent(support::SampleBody(3)), MakeEvent(big)}) {
    const std::string bytes = MustEncode(event);
    std::vector<uint64_t> words(bytes.size() / kWord);
    std::memcpy(words.data(), bytes.data(), bytes.size());
    const std::string_view aligned(reinterpret_cast<const char*>(words.data()), bytes.size());
    auto decoded = DecodeEvent(aligned);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_TRUE(*decoded == event);
    words[1] = ~uint64_t{0};  // the root pointer
    EXPECT_EQ(DecodeEvent(aligned).status().code(), StatusCode::kDataLoss);
  }
}

TEST(CodecTest, TrailingBytesAreRejected) {
  const std::string bytes = MustEncode(MakeEvent(support::SampleBody(1)));
  EXPECT_TRUE(IsError(DecodeEvent(bytes + std::string(8, '\0')).status(), StatusCode::kDataLoss,
                      {"8 trailing bytes"}));
  EXPECT_TRUE(
      IsError(DecodeEvent(bytes + bytes).status(), StatusCode::kDataLoss, {"trailing bytes"}));
  for (size_t n = 1; n < kWord; ++n) {
    EXPECT_TRUE(IsError(DecodeEvent(bytes + std::string(n, '\0')).status(), StatusCode::kDataLoss,
                        {"whole number"}));
  }
}

TEST(CodecTest, InvalidRunIdIsDataLoss) {
  for (const std::string& id :
       {std::string("bad id"), std::string(), std::string(129, 'a'), std::string("nul\0", 4)}) {
    capnp::MallocMessageBuilder message;
    InitValidEvent(message).setRunId(capnp::Text::Reader(id.data(), id.size()));
    EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                        {"event: run_id: "}))
        << id;
    capnp::MallocMessageBuilder header;
    InitValidHeader(header).setRunId(capnp::Text::Reader(id.data(), id.size()));
    EXPECT_TRUE(IsError(DecodeRunHeader(Serialize(header)).status(), StatusCode::kDataLoss,
                        {"run header: run_id: "}))
        << id;
  }
  capnp::MallocMessageBuilder message;
  InitValidEvent(message).setRunId("bad id");
  EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                      {"' '", "offset 3"}));
}

TEST(CodecTest, HashesOfTheWrongSizeAreDataLoss) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{31}, size_t{33}}) {
    capnp::MallocMessageBuilder message;
    InitValidEvent(message).setPrevHash(DataOf(std::string(size, '\1')));
    EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                        {"prev_hash is " + std::to_string(size) + " bytes; expected 32"}));
  }
  {
    capnp::MallocMessageBuilder message;
    InitValidEvent(message).getBody().getRunStarted().setDefinitionHash(DataOf("short"));
    EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                        {"run_started.definition_hash is 5 bytes"}));
  }
  {
    capnp::MallocMessageBuilder message;
    InitValidEvent(message).getBody().getRunStarted().initInput().setBlob(
        DataOf(std::string(31, 'b')));
    EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                        {"run_started.input is 31 bytes"}));
  }
  {
    capnp::MallocMessageBuilder message;
    InitValidHeader(message).setChainHead(DataOf(std::string(7, 'c')));
    EXPECT_TRUE(IsError(DecodeRunHeader(Serialize(message)).status(), StatusCode::kDataLoss,
                        {"chain_head is 7 bytes"}));
  }
}

TEST(CodecTest, MissingOptionalDigestsReadAsZero) {
  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<wire::RunHeader>();
  header.setRunId("r");  // no chain head at all
  auto decoded = DecodeRunHeader(Serialize(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->chain_head.IsZero());
  EXPECT_TRUE(decoded->definition_hash.IsZero());
}

TEST(CodecTest, SeqBeyondTheLimitIsDataLoss) {
  capnp::MallocMessageBuilder message;
  InitValidEvent(message).setSeq(limits::events_per_run_max);
  EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss, {"seq"}));
  capnp::MallocMessageBuilder header;
  InitValidHeader(header).setNextSeq(UINT64_MAX);
  EXPECT_TRUE(
      IsError(DecodeRunHeader(Serialize(header)).status(), StatusCode::kDataLoss, {"next_seq"}));
}

template <typename Wire>
Wire Unknown() {
  return static_cast<Wire>(200);
}

template <typename Fill>
Event DecodeBuilt(Fill fill) {
  capnp::MallocMessageBuilder message;
  fill(InitValidEvent(message).getBody());
  auto event = DecodeEvent(Serialize(message));
  EXPECT_TRUE(event.ok()) << event.status().ToString();
  return event.ok() ? *event : Event{};
}

TEST(CodecTest, UnknownEnumValuesMapToDocumentedFallbacks) {
  using Body = wire::Event::Body::Builder;
  auto routed =
      DecodeBuilt([](Body b) { b.initTaskRouted().setMode(Unknown<wire::TaskRouted::Mode>()); });
  EXPECT_EQ(std::get<TaskRouted>(routed.body).mode, TaskRouted::Mode::kDeterministic);

  auto verdict = DecodeBuilt([](Body b) {
    auto v = b.initPolicyVerdict();
    v.setDecision(Unknown<wire::PolicyVerdict::Decision>());
    v.setRisk(Unknown<wire::RiskLevel>());
    v.setStage(Unknown<wire::PolicyVerdict::Stage>());
  });
  EXPECT_EQ(std::get<PolicyVerdict>(verdict.body).decision, PolicyVerdict::Decision::kDeny);
  EXPECT_EQ(std::get<PolicyVerdict>(verdict.body).risk, RiskLevel::kUnspecified);
  EXPECT_EQ(std::get<PolicyVerdict>(verdict.body).stage, PolicyVerdict::Stage::kBeforeCall);

  auto requested = DecodeBuilt(
      [](Body b) { b.initApprovalRequested().setOnExpiry(Unknown<wire::ApprovalResolution>()); });
  EXPECT_EQ(std::get<ApprovalRequested>(requested.body).on_expiry, ApprovalResolution::kRejected);

  auto resolved = DecodeBuilt(
      [](Body b) { b.initApprovalResolved().setResolution(Unknown<wire::ApprovalResolution>()); });
  EXPECT_EQ(std::get<ApprovalResolved>(resolved.body).resolution, ApprovalResolution::kRejected);

  auto intent = DecodeBuilt([](Body b) {
    auto v = b.initEffectIntent();
    v.setEffect(Unknown<wire::EffectKind>());
    v.setRisk(Unknown<wire::RiskLevel>());
  });
  EXPECT_EQ(std::get<EffectIntent>(intent.body).effect, EffectKind::kWrite);
  EXPECT_EQ(std::get<EffectIntent>(intent.body).risk, RiskLevel::kUnspecified);

  auto outcome = DecodeBuilt(
      [](Body b) { b.initEffectOutcome().setStatus(Unknown<wire::EffectOutcome::Status>()); });
  EXPECT_EQ(std::get<EffectOutcome>(outcome.body).status, EffectOutcome::Status::kIndeterminate);

  auto scheduled =
      DecodeBuilt([](Body b) { b.initTimerScheduled().setPurpose(Unknown<wire::TimerPurpose>()); });
  EXPECT_EQ(std::get<TimerScheduled>(scheduled.body).purpose, TimerPurpose::kWait);
  auto fired =
      DecodeBuilt([](Body b) { b.initTimerFired().setPurpose(Unknown<wire::TimerPurpose>()); });
  EXPECT_EQ(std::get<TimerFired>(fired.body).purpose, TimerPurpose::kWait);

  auto completed = DecodeBuilt(
      [](Body b) { b.initTaskCompleted().setStatus(Unknown<wire::TaskCompleted::Status>()); });
  EXPECT_EQ(std::get<TaskCompleted>(completed.body).status, TaskCompleted::Status::kFaulted);

  auto charged = DecodeBuilt(
      [](Body b) { b.initBudgetCharged().setPhase(Unknown<wire::BudgetCharged::Phase>()); });
  EXPECT_EQ(std::get<BudgetCharged>(charged.body).phase, BudgetCharged::Phase::kReserve);

  auto stopped =
      DecodeBuilt([](Body b) { b.initRunStopped().setReason(Unknown<wire::StopReason>()); });
  EXPECT_EQ(std::get<RunStopped>(stopped.body).reason, StopReason::kNone);

  auto control = DecodeBuilt([](Body b) {
    b.initControlRequested().setAction(Unknown<wire::ControlRequested::Action>());
  });
  EXPECT_EQ(std::get<ControlRequested>(control.body).action, ControlRequested::Action::kSignal);

  capnp::MallocMessageBuilder message;
  auto header = InitValidHeader(message);
  header.setStatus(Unknown<wire::RunStatus>());
  header.setStopReason(Unknown<wire::StopReason>());
  auto timer = header.initTimers(1)[0];
  timer.setTimerId("t");
  timer.setPurpose(Unknown<wire::TimerPurpose>());
  auto decoded = DecodeRunHeader(Serialize(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->status, RunStatus::kUnknown);
  EXPECT_EQ(decoded->stop_reason, StopReason::kNone);
  ASSERT_EQ(decoded->timers.size(), 1u);
  EXPECT_EQ(decoded->timers[0].purpose, TimerPurpose::kWait);
}

TEST(CodecTest, UnknownBodyMemberDecodesAsUnknownBody) {
  capnp::MallocMessageBuilder message;
  auto event = InitValidEvent(message);
  event.setTaskPath("/do/9");
  SetDiscriminant<wire::Event::Body>(event, 100);
  auto decoded = DecodeEvent(Serialize(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_TRUE(std::holds_alternative<UnknownBody>(decoded->body));
  EXPECT_EQ(std::get<UnknownBody>(decoded->body).which, 100);
  EXPECT_EQ(KindName(decoded->body), "unknown");
  EXPECT_EQ(decoded->task_path, "/do/9");  // the envelope is still readable
  EXPECT_EQ(EncodeEvent(*decoded).status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, UnknownPayloadMemberIsDataLoss) {
  capnp::MallocMessageBuilder message;
  auto value = InitValidEvent(message).getBody().initValueRecorded();
  value.setName("v");
  auto payload = value.initValue();
  payload.setJson("1");
  SetDiscriminant<wire::Payload>(payload, 9);
  EXPECT_TRUE(IsError(DecodeEvent(Serialize(message)).status(), StatusCode::kDataLoss,
                      {"value_recorded.value", "unknown payload kind 9"}));
}

TEST(CodecTest, WrongPointerKindIsDataLoss) {
  // The run id pointer replaced by a struct pointer.
  capnp::MallocMessageBuilder message;
  InitValidEvent(message);
  std::string bytes = Serialize(message);
  const uint64_t root = LoadWord(bytes, 1);
  const size_t run_id_index =
      2 + static_cast<size_t>(PointerOffset(root)) + ((root >> 32) & 0xffff);
  StoreWord(&bytes, run_id_index, LoadWord(bytes, run_id_index) & ~uint64_t{3});
  EXPECT_TRUE(IsError(DecodeEvent(bytes).status(), StatusCode::kDataLoss, {"event: "}));
}

// --- Schema and C++ agree -----------------------------------------------------------------

template <typename Wire>
size_t EnumerantCount() {
  return capnp::Schema::from<Wire>().getEnumerants().size();
}

TEST(CodecTest, EnumerationsMatchTheSchema) {
  // Adding an enum value to the schema without adding it here (and to EnumTraits in
  // codec.cc and the names) would silently map it to a fallback.
  EXPECT_EQ(EnumerantCount<wire::RiskLevel>(), static_cast<size_t>(RiskLevel::kCritical) + 1);
  EXPECT_EQ(EnumerantCount<wire::RunStatus>(), static_cast<size_t>(RunStatus::kKilled) + 1);
  EXPECT_EQ(EnumerantCount<wire::StopReason>(), static_cast<size_t>(StopReason::kCancelled) + 1);
  EXPECT_EQ(EnumerantCount<wire::ApprovalResolution>(),
            static_cast<size_t>(ApprovalResolution::kExpired) + 1);
  EXPECT_EQ(EnumerantCount<wire::EffectKind>(), static_cast<size_t>(EffectKind::kWrite) + 1);
  EXPECT_EQ(EnumerantCount<wire::TimerPurpose>(),
            static_cast<size_t>(TimerPurpose::kBudgetWallClock) + 1);
  EXPECT_EQ(EnumerantCount<wire::TaskRouted::Mode>(), 2u);
  EXPECT_EQ(EnumerantCount<wire::PolicyVerdict::Decision>(), 3u);
  EXPECT_EQ(EnumerantCount<wire::PolicyVerdict::Stage>(), 2u);
  EXPECT_EQ(EnumerantCount<wire::EffectOutcome::Status>(), 4u);
  EXPECT_EQ(EnumerantCount<wire::TaskCompleted::Status>(), 3u);
  EXPECT_EQ(EnumerantCount<wire::BudgetCharged::Phase>(), 3u);
  EXPECT_EQ(EnumerantCount<wire::ControlRequested::Action>(), 5u);
  EXPECT_EQ(capnp::Schema::from<wire::Event::Body>().getUnionFields().size(),
            support::kEventBodyKinds);
}

TEST(CodecTest, BodyAlternativesFollowTheUnionOrder) {
  const auto members = capnp::Schema::from<wire::Event::Body>().getUnionFields();
  for (size_t i = 0; i < support::kEventBodyKinds; ++i) {
    capnp::MallocMessageBuilder message;
    capnp::DynamicStruct::Builder body = capnp::toDynamic(InitValidEvent(message).getBody());
    body.init(members[static_cast<unsigned>(i)]);
    auto decoded = DecodeEvent(Serialize(message));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->body.index(), i)
        << members[static_cast<unsigned>(i)].getProto().getName().cStr();
  }
}

}  // namespace
}  // namespace cairn::storage
