#include "tests/support/fault_fs.h"

#include <algorithm>
#include <utility>

namespace cairn::testing {
namespace {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A rename over a file larger than this does not restore it on power loss. RocksDB
// renames only over CURRENT-sized files.
constexpr uint64_t kReplacedBytesKeptMax = 64 << 10;

// One spelling per path: no repeated or trailing slashes. RocksDB builds file names as
// `dbname + "/" + name`, so this is enough to match files with their directory.
std::string Normalize(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// {directory, name} of a normalized path; the directory is "" for a bare name.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir == "/") return "/" + name;
  return dir + "/" + name;
}

Status FromIo(const IOStatus& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status::Unavailable("fault injection: " + std::string(what) + ": " + s.ToString());
}

IOStatus InjectedFault(std::string_view op, const std::string& path) {
  return IOStatus::IOError("fault injection: injected " + std::string(op) + " failure", path);
}

// Reads the first `max_bytes` of a file (all of it if shorter) through `fs`.
IOStatus ReadFilePrefix(rocksdb::FileSystem* fs, const std::string& path, uint64_t max_bytes,
                        std::string* out) {
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  IOStatus s = fs->NewSequentialFile(path, FileOptions(), &file, nullptr);
  if (!s.ok()) return s;
  out->clear();
  std::string scratch(std::min<uint64_t>(max_bytes, 1 << 20), '\0');
  while (out->size() < max_bytes) {
    const size_t want = std::min<uint64_t>(scratch.size(), max_bytes - out->size());
    Slice read;
    s = file->Read(want, IOOptions(), &read, scratch.data(), nullptr);
    if (!s.ok()) return s;
    if (read.empty()) break;  // end of file
    out->append(read.data(), read.size());
  }
  return IOStatus::OK();
}

IOStatus WriteWholeFile(rocksdb::FileSystem* fs, const std::string& path,
                        const std::string& content) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = fs->NewWritableFile(path, FileOptions(), &file, nullptr);
  if (s.ok()) s = file->Append(content, IOOptions(), nullptr);
  if (s.ok()) s = file->Fsync(IOOptions(), nullptr);
  IOStatus closed = file ? file->Close(IOOptions(), nullptr) : IOStatus::OK();
  return s.ok() ? closed : s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The wrappers RocksDB writes through.

class FaultInjectionFileSystem::WritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  WritableFile(FaultInjectionFileSystem* fs, std::string path,
               std::unique_ptr<rocksdb::FSWritableFile> target)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}
  ~WritableFile() override { fs_->OnFileClosed(path_); }

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    return DoWrite(std::nullopt, data.size(), [&] { return target()->Append(data, options, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    return DoWrite(std::nullopt, data.size(),
                   [&] { return target()->Append(data, options, info, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    return DoWrite(offset, data.size(),
                   [&] { return target()->PositionedAppend(data, offset, options, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    return DoWrite(offset, data.size(),
                   [&] { return target()->PositionedAppend(data, offset, options, info, dbg); });
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("truncate", path_);
    IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_->AfterTruncate(path_, size);
    return s;
  }
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    // The descriptor is released either way; closing makes nothing durable.
    IOStatus s = target()->Close(options, dbg);
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("close", path_);
    return s;
  }
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("flush", path_);
    return target()->Flush(options, dbg);
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return DoSync("sync", [&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return DoSync("fsync", [&] { return target()->Fsync(options, dbg); });
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("range sync", path_);
    fs_->OnRangeSync();
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions& options,
                    IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("allocate", path_);
    return target()->Allocate(offset, len, options, dbg);
  }

 private:
  template <typename Write>
  IOStatus DoWrite(std::optional<uint64_t> offset, size_t bytes, Write write) {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("append", path_);
    if (fs_->BeforeAppend(path_) == Verdict::kInjectFault) return InjectedFault("append", path_);
    IOStatus s = write();
    if (s.ok()) fs_->AfterWrite(path_, offset, bytes);
    return s;
  }
  template <typename SyncCall>
  IOStatus DoSync(std::string_view op, SyncCall sync) {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive(op, path_);
    uint64_t size_now = 0;
    if (fs_->BeforeSync(path_, &size_now) == Verdict::kInjectFault) {
      return InjectedFault(op, path_);
    }
    IOStatus s = sync();
    if (s.ok()) fs_->AfterSync(path_, size_now);
    return s;
  }

  FaultInjectionFileSystem* const fs_;
  const std::string path_;
};

// Untracked, but dead while the filesystem is inactive.
class FaultInjectionFileSystem::RandomRWFile : public rocksdb::FSRandomRWFileOwnerWrapper {
 public:
  RandomRWFile(FaultInjectionFileSystem* fs, std::string path,
               std::unique_ptr<rocksdb::FSRandomRWFile> target)
      : FSRandomRWFileOwnerWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  IOStatus Write(uint64_t offset, const Slice& data, const IOOptions& options,
                 IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("write", path_);
    return FSRandomRWFileOwnerWrapper::Write(offset, data, options, dbg);
  }
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("flush", path_);
    return FSRandomRWFileOwnerWrapper::Flush(options, dbg);
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("sync", path_);
    return FSRandomRWFileOwnerWrapper::Sync(options, dbg);
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("fsync", path_);
    return FSRandomRWFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::string path_;
};

class FaultInjectionFileSystem::Directory : public rocksdb::FSDirectoryWrapper {
 public:
  Directory(FaultInjectionFileSystem* fs, std::string path,
            std::unique_ptr<rocksdb::FSDirectory> target)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("directory fsync", path_);
    IOStatus s = FSDirectoryWrapper::Fsync(options, dbg);
    if (s.ok()) fs_->OnDirSync(path_);
    return s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    if (!fs_->IsFilesystemActive()) return fs_->Inactive("directory fsync", path_);
    IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
    // Whatever the reason given, a successful directory fsync persists every entry.
    if (s.ok()) fs_->OnDirSync(path_);
    return s;
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::string path_;
};

// ---------------------------------------------------------------------------------------
// The filesystem.

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                                   Options options)
    : FileSystemWrapper(base), options_(options) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

void FaultInjectionFileSystem::SetFilesystemActive(bool active) {
  active_.store(active, std::memory_order_release);
}

IOStatus FaultInjectionFileSystem::Inactive(std::string_view op, const std::string& path) const {
  return IOStatus::IOError("fault injection: filesystem inactive (simulated power loss), " +
                               std::string(op) + " refused",
                           path);
}

void FaultInjectionFileSystem::FailSyncsAfter(uint64_t n) {
  std::lock_guard lock(mu_);
  syncs_before_failing_ = n;
  syncs_to_fail_ = 0;
}

void FaultInjectionFileSystem::FailNextSyncs(uint64_t k) {
  std::lock_guard lock(mu_);
  syncs_before_failing_.reset();
  syncs_to_fail_ = k;
}

void FaultInjectionFileSystem::FailWritesAfter(uint64_t n) {
  std::lock_guard lock(mu_);
  appends_before_failing_ = n;
}

void FaultInjectionFileSystem::ClearFaults() {
  std::lock_guard lock(mu_);
  syncs_before_failing_.reset();
  syncs_to_fail_ = 0;
  appends_before_failing_.reset();
}

void FaultInjectionFileSystem::SetFaultFilter(std::function<bool(std::string_view)> selects) {
  std::lock_guard lock(mu_);
  fault_filter_ = std::move(selects);
}

FaultStats FaultInjectionFileSystem::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::optional<uint64_t> FaultInjectionFileSystem::UnsyncedBytes(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(Normalize(path));
  if (it == files_.end()) return std::nullopt;
  return it->second.size - std::min(it->second.size, it->second.synced_size);
}

uint64_t FaultInjectionFileSystem::UnsyncedBytesTotal() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [path, st] : files_) {
    if (Selects(path)) total += st.size - std::min(st.size, st.synced_size);
  }
  return total;
}

bool FaultInjectionFileSystem::Selects(const std::string& path) const {
  return !fault_filter_ || fault_filter_(path);
}

void FaultInjectionFileSystem::TrackNewFile(const std::string& path) {
  auto [dir, name] = SplitPath(path);
  // A second creation before the directory sync keeps what the first one replaced.
  unsynced_entries_[dir].try_emplace(name, std::nullopt);
}

FaultInjectionFileSystem::Verdict FaultInjectionFileSystem::BeforeSync(const std::string& path,
                                                                       uint64_t* size_now) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  *size_now = it == files_.end() ? 0 : it->second.size;
  if (!Selects(path)) return Verdict::kProceed;
  ++stats_.syncs;
  bool fail = false;
  if (syncs_to_fail_ > 0) {
    --syncs_to_fail_;
    fail = true;
  } else if (syncs_before_failing_.has_value()) {
    if (*syncs_before_failing_ == 0) {
      fail = true;
    } else {
      --*syncs_before_failing_;
    }
  }
  if (!fail) return Verdict::kProceed;
  ++stats_.syncs_failed;
  return Verdict::kInjectFault;
}

void FaultInjectionFileSystem::AfterSync(const std::string& path, uint64_t durable_size) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  FileState& st = it->second;
  st.synced_size = std::max(st.synced_size, std::min(durable_size, st.size));
}

FaultInjectionFileSystem::Verdict FaultInjectionFileSystem::BeforeAppend(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!Selects(path)) return Verdict::kProceed;
  ++stats_.appends;
  if (!appends_before_failing_.has_value()) return Verdict::kProceed;
  if (*appends_before_failing_ > 0) {
    --*appends_before_failing_;
    return Verdict::kProceed;
  }
  ++stats_.appends_failed;
  return Verdict::kInjectFault;
}

void FaultInjectionFileSystem::AfterWrite(const std::string& path, std::optional<uint64_t> offset,
                                          uint64_t bytes) {
  std::lock_guard lock(mu_);
  stats_.bytes_appended += bytes;
  auto it = files_.find(path);
  if (it == files_.end()) return;
  FileState& st = it->second;
  st.size = offset.has_value() ? std::max(st.size, *offset + bytes) : st.size + bytes;
}

void FaultInjectionFileSystem::AfterTruncate(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  it->second.size = size;
  it->second.synced_size = std::min(it->second.synced_size, size);
}

void FaultInjectionFileSystem::OnRangeSync() {
  std::lock_guard lock(mu_);
  ++stats_.range_syncs;
}

void FaultInjectionFileSystem::OnDirSync(const std::string& dir) {
  std::lock_guard lock(mu_);
  ++stats_.dir_syncs;
  unsynced_entries_.erase(dir);
}

void FaultInjectionFileSystem::OnFileClosed(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end() && it->second.open_handles > 0) --it->second.open_handles;
}

// ---- rocksdb::FileSystem overrides ----

IOStatus FaultInjectionFileSystem::NewWritableFile(const std::string& fname,
                                                   const FileOptions& file_opts,
                                                   std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                   IODebugContext* dbg) {
  const std::string path = Normalize(fname);
  if (!IsFilesystemActive()) return Inactive("create", path);
  IOStatus s = target()->NewWritableFile(fname, file_opts, result, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    FileState& st = files_[path];
    st.size = 0;  // created or truncated
    st.synced_size = 0;
    ++st.open_handles;
    ++stats_.files_created;
    TrackNewFile(path);
  }
  *result = std::make_unique<WritableFile>(this, path, std::move(*result));
  return s;
}

IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& fname, const FileOptions& file_opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  const std::string path = Normalize(fname);
  if (!IsFilesystemActive()) return Inactive("reopen", path);
  const bool existed = target()->FileExists(fname, IOOptions(), dbg).ok();
  IOStatus s = target()->ReopenWritableFile(fname, file_opts, result, dbg);
  if (!s.ok()) return s;
  uint64_t size = 0;
  s = target()->GetFileSize(fname, IOOptions(), &size, dbg);
  if (!s.ok()) {
    result->reset();
    return s;
  }
  {
    std::lock_guard lock(mu_);
    auto [it, untracked] = files_.try_emplace(path);
    FileState& st = it->second;
    // A file this object has not written is durable as found.
    st.synced_size = untracked ? size : std::min(st.synced_size, size);
    st.size = size;
    ++st.open_handles;
    if (!existed) {
      ++stats_.files_created;
      TrackNewFile(path);
    }
  }
  *result = std::make_unique<WritableFile>(this, path, std::move(*result));
  return s;
}

IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const FileOptions& file_opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  // As FileSystem's default: rename, then create afresh. Recycled contents are not kept.
  IOStatus s = RenameFile(old_fname, fname, file_opts.io_options, dbg);
  if (!s.ok()) return s;
  return NewWritableFile(fname, file_opts, result, dbg);
}

IOStatus FaultInjectionFileSystem::NewRandomRWFile(const std::string& fname,
                                                   const FileOptions& file_opts,
                                                   std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                                   IODebugContext* dbg) {
  const std::string path = Normalize(fname);
  if (!IsFilesystemActive()) return Inactive("open for writing", path);
  IOStatus s = target()->NewRandomRWFile(fname, file_opts, result, dbg);
  if (s.ok()) *result = std::make_unique<RandomRWFile>(this, path, std::move(*result));
  return s;
}

IOStatus FaultInjectionFileSystem::NewDirectory(const std::string& name, const IOOptions& io_opts,
                                                std::unique_ptr<rocksdb::FSDirectory>* result,
                                                IODebugContext* dbg) {
  IOStatus s = target()->NewDirectory(name, io_opts, result, dbg);
  if (s.ok()) *result = std::make_unique<Directory>(this, Normalize(name), std::move(*result));
  return s;
}

IOStatus FaultInjectionFileSystem::DeleteFile(const std::string& fname, const IOOptions& options,
                                              IODebugContext* dbg) {
  const std::string path = Normalize(fname);
  if (!IsFilesystemActive()) return Inactive("delete", path);
  IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    files_.erase(path);
    auto [dir, name] = SplitPath(path);
    if (auto it = unsynced_entries_.find(dir); it != unsynced_entries_.end()) {
      it->second.erase(name);
    }
  }
  return s;
}

IOStatus FaultInjectionFileSystem::RenameFile(const std::string& src, const std::string& target,
                                              const IOOptions& options, IODebugContext* dbg) {
  const std::string from = Normalize(src);
  const std::string to = Normalize(target);
  if (!IsFilesystemActive()) return Inactive("rename", from + " -> " + to);
  auto [from_dir, from_name] = SplitPath(from);
  auto [to_dir, to_name] = SplitPath(to);
  bool from_unsynced = false;
  {
    std::lock_guard lock(mu_);
    auto it = unsynced_entries_.find(from_dir);
    from_unsynced = it != unsynced_entries_.end() && it->second.count(from_name) != 0;
  }
  // Moving a file whose own entry is not durable yet over an existing one: until the
  // directory is synced, a power loss brings the old one back (RocksDB's CURRENT).
  std::optional<std::string> replaced;
  uint64_t replaced_size = 0;
  if (from_unsynced && this->target()->FileExists(target, options, dbg).ok() &&
      this->target()->GetFileSize(target, options, &replaced_size, dbg).ok() &&
      replaced_size <= kReplacedBytesKeptMax) {
    std::string content;
    if (ReadFilePrefix(this->target(), target, replaced_size, &content).ok()) {
      replaced = std::move(content);
    }
  }
  IOStatus s = this->target()->RenameFile(src, target, options, dbg);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  files_.erase(to);
  if (auto node = files_.extract(from)) {
    node.key() = to;
    files_.insert(std::move(node));
  }
  if (auto it = unsynced_entries_.find(from_dir);
      it != unsynced_entries_.end() && it->second.erase(from_name) != 0) {
    // If `to` was itself created since the last sync, what it replaced is what returns.
    unsynced_entries_[to_dir].try_emplace(to_name, std::move(replaced));
  }
  return s;
}

IOStatus FaultInjectionFileSystem::LinkFile(const std::string& src, const std::string& target,
                                            const IOOptions& options, IODebugContext* dbg) {
  const std::string to = Normalize(target);
  if (!IsFilesystemActive()) return Inactive("link", to);
  IOStatus s = this->target()->LinkFile(src, target, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    TrackNewFile(to);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::Truncate(const std::string& fname, size_t size,
                                            const IOOptions& options, IODebugContext* dbg) {
  const std::string path = Normalize(fname);
  if (!IsFilesystemActive()) return Inactive("truncate", path);
  IOStatus s = target()->Truncate(fname, size, options, dbg);
  if (s.ok()) AfterTruncate(path, size);
  return s;
}

IOStatus FaultInjectionFileSystem::CreateDir(const std::string& dirname, const IOOptions& options,
                                             IODebugContext* dbg) {
  if (!IsFilesystemActive()) return Inactive("create directory", dirname);
  return target()->CreateDir(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::CreateDirIfMissing(const std::string& dirname,
                                                      const IOOptions& options,
                                                      IODebugContext* dbg) {
  if (!IsFilesystemActive()) return Inactive("create directory", dirname);
  return target()->CreateDirIfMissing(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::DeleteDir(const std::string& dirname, const IOOptions& options,
                                             IODebugContext* dbg) {
  if (!IsFilesystemActive()) return Inactive("delete directory", dirname);
  return target()->DeleteDir(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::LockFile(const std::string& fname, const IOOptions& options,
                                            rocksdb::FileLock** lock, IODebugContext* dbg) {
  // UnlockFile() is left alone: a dead DB must still release its process-wide lock so
  // that the test can reopen the directory.
  if (!IsFilesystemActive()) return Inactive("lock", fname);
  return target()->LockFile(fname, options, lock, dbg);
}

// ---- power loss ----

Status FaultInjectionFileSystem::DropUnsyncedData() { return SimulatePowerLoss(nullptr, nullptr); }

Status FaultInjectionFileSystem::CorruptUnsyncedTail(Random& random,
                                                     const TornTailOptions& options) {
  return SimulatePowerLoss(&random, &options);
}

Status FaultInjectionFileSystem::SimulatePowerLoss(Random* random, const TornTailOptions* torn) {
  std::lock_guard lock(mu_);
  for (const auto& [path, st] : files_) {
    if (st.open_handles > 0) {
      return Status::FailedPrecondition("fault injection: " + path +
                                        " is still open for writing; destroy the database "
                                        "before simulating a power loss");
    }
  }
  if (options_.lose_unsynced_new_files) CAIRN_RETURN_IF_ERROR(LoseUnsyncedNewFiles());
  // std::map order: the same files see the same random draws.
  for (const auto& [path, st] : files_) {
    CAIRN_RETURN_IF_ERROR(TearFile(path, st, random, torn));
  }
  files_.clear();
  unsynced_entries_.clear();
  active_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status FaultInjectionFileSystem::LoseUnsyncedNewFiles() {
  for (const auto& [dir, entries] : unsynced_entries_) {
    for (const auto& [name, replaced] : entries) {
      const std::string path = JoinPath(dir, name);
      files_.erase(path);
      if (replaced.has_value()) {
        CAIRN_RETURN_IF_ERROR(FromIo(WriteWholeFile(target(), path, *replaced), "restore " + path));
        continue;
      }
      IOStatus s = target()->DeleteFile(path, IOOptions(), nullptr);
      if (!s.ok() && !s.IsNotFound() && target()->FileExists(path, IOOptions(), nullptr).ok()) {
        return FromIo(s, "delete unsynced new file " + path);
      }
    }
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::TearFile(const std::string& path, const FileState& st,
                                          Random* random, const TornTailOptions* torn) {
  if (target()->FileExists(path, IOOptions(), nullptr).IsNotFound()) return Status::Ok();
  uint64_t on_disk = 0;
  CAIRN_RETURN_IF_ERROR(
      FromIo(target()->GetFileSize(path, IOOptions(), &on_disk, nullptr), "size of " + path));
  const uint64_t durable = std::min(st.synced_size, on_disk);
  const uint64_t unsynced = on_disk - durable;
  uint64_t keep = durable;
  if (torn != nullptr) {
    keep += torn->keep_random_prefix ? random->Uniform(unsynced + 1) : unsynced;
  }
  uint64_t garble = 0;
  if (torn != nullptr && torn->garble_bytes_max > 0 && keep > durable) {
    garble = 1 + random->Uniform(std::min<uint64_t>(torn->garble_bytes_max, keep - durable));
  }
  if (keep == on_disk && garble == 0) return Status::Ok();
  // Rewritten whole rather than truncated in place: RocksDB's POSIX filesystem does not
  // implement Truncate(), and this works over any base filesystem.
  std::string content;
  CAIRN_RETURN_IF_ERROR(FromIo(ReadFilePrefix(target(), path, keep, &content), "read " + path));
  if (content.size() != keep) {
    return Status::Unavailable("fault injection: short read of " + path);
  }
  if (garble > 0) content.replace(keep - garble, garble, random->Bytes(garble));
  return FromIo(WriteWholeFile(target(), path, content), "rewrite " + path);
}

}  // namespace cairn::testing
