// FaultVfs: an SQLite VFS for tests that wraps the default one ("unix") and
// can make the disk misbehave:
//
//   - fsync failure: while on, xSync of the chosen files fails with
//     SQLITE_IOERR_FSYNC (and what it should have made durable stays
//     undurable, as after a real failed fsync);
//   - disk full: while on, every xWrite fails with SQLITE_FULL;
//   - slow WAL syncs: while the gate is closed, xSync of a WAL file waits;
//   - power loss: with durability tracking on, it keeps for every file an undo
//     record of each write and truncate not yet covered by an xSync of that
//     file. At the cut (after a chosen number of mutating calls, or on demand)
//     the disk freezes: that call and every later write, sync, truncate and
//     delete fail, so nothing more reaches the files. Once the store is
//     closed, Crash() reverts every file to what was last synced, then
//     re-applies a random subset of the lost writes (a real disk may have
//     persisted any of them, in any order): exactly what SQLite must survive.
//     Tracking does not call the real fsync (durability is the model's, not
//     the test machine's), which keeps hundreds of cuts fast.
//
// The -shm file is not tracked: it is not durable, and the first connection
// to open a database after the last one closed rebuilds it from the WAL.
//
// One process-wide instance, registered under kName (not as the default):
// open a SqliteStore with SqliteStore::Open(path, FaultVfs::kName). Settings
// are thread-safe; Reset() between tests.
//
// Test-only: include from test sources, never from production code.
#pragma once

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace acceptd::store_testing {

class FaultVfs {
 public:
  static constexpr const char* kName = "acceptd-fault";

  // Which files a fault or a cut applies to.
  enum class Files { kAll, kMainDb, kWal };

  // The process-wide instance, registered with SQLite on first use.
  static FaultVfs& Instance() {
    static FaultVfs* vfs = new FaultVfs();  // never destroyed: SQLite keeps a pointer
    return *vfs;
  }

  // No faults, no tracking, no cut; forgets all undo records.
  void Reset() {
    std::lock_guard lock(mu_);
    sync_fails_ = false;
    full_ = false;
    tracking_ = false;
    frozen_ = false;
    countdown_ = -1;
    sync_failures_ = 0;
    full_failures_ = 0;
    files_.clear();
    on_cut_ = nullptr;
    sync_gate_closed_ = false;
    sync_passes_ = 0;
    wal_sync_latency_ = std::chrono::microseconds{0};
    gate_cv_.notify_all();
  }

  // While on, xSync of `which` files fails with SQLITE_IOERR_FSYNC.
  void SetSyncFailure(bool on, Files which = Files::kAll) {
    std::lock_guard lock(mu_);
    sync_fails_ = on;
    sync_which_ = which;
  }
  // While on, every xWrite fails with SQLITE_FULL (ENOSPC).
  void SetDiskFull(bool on) {
    std::lock_guard lock(mu_);
    full_ = on;
  }
  int64_t sync_failures() const {
    std::lock_guard lock(mu_);
    return sync_failures_;
  }
  int64_t full_failures() const {
    std::lock_guard lock(mu_);
    return full_failures_;
  }

  // Starts recording what is not yet durable (for Crash()). Files opened
  // before are not tracked: turn this on before opening the store.
  void TrackDurability(bool on) {
    std::lock_guard lock(mu_);
    tracking_ = on;
  }
  // The disk freezes at the `n`th mutating call (write, sync, truncate; 1 =
  // the next one) to `which` files; that call fails already.
  void ArmCut(int64_t n, Files which = Files::kAll) {
    std::lock_guard lock(mu_);
    countdown_ = n;
    cut_which_ = which;
  }
  // Called once, on the thread of the call that the armed cut stops (with
  // the VFS's lock held: it must not call into the VFS), so a test can look
  // at what was in flight at that instant. Reset() clears it.
  void OnCut(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    on_cut_ = std::move(fn);
  }
  // While closed, every xSync of a WAL file waits (a slow disk), so tests
  // can hold a commit between its write and its sync. syncs_waiting() says
  // how many wait now.
  void SetWalSyncGate(bool closed) {
    {
      std::lock_guard lock(mu_);
      sync_gate_closed_ = closed;
    }
    gate_cv_.notify_all();
  }
  // Every WAL sync takes `latency` (a real disk's), modelled: it covers the
  // writes made before it began, not those made while it runs. 0: instant.
  void SetWalSyncLatency(std::chrono::microseconds latency) {
    std::lock_guard lock(mu_);
    wal_sync_latency_ = latency;
  }
  // Lets `n` WAL syncs through the closed gate (those waiting first).
  void ReleaseWalSyncs(int n) {
    {
      std::lock_guard lock(mu_);
      sync_passes_ += n;
    }
    gate_cv_.notify_all();
  }
  int syncs_waiting() const {
    std::lock_guard lock(mu_);
    return syncs_waiting_;
  }

  // Freezes the disk now (if the armed cut did not happen yet).
  void Freeze() {
    std::lock_guard lock(mu_);
    frozen_ = true;
  }
  bool frozen() const {
    std::lock_guard lock(mu_);
    return frozen_;
  }

  // After every connection to the files is closed: the power came back.
  // Each file returns to its last synced content plus each lost write or
  // truncate kept with probability `keep` (0: all lost; 1: a process crash,
  // nothing lost), in order. Then tracking, cut and freeze are off. Returns how
  // many mutations were lost.
  int64_t Crash(double keep, std::mt19937_64& rng) {
    std::map<std::string, std::shared_ptr<FileState>> files;
    {
      std::lock_guard lock(mu_);
      files.swap(files_);
      tracking_ = false;
      frozen_ = false;
      countdown_ = -1;
    }
    std::bernoulli_distribution keep_it(keep);
    int64_t lost = 0;
    for (auto& [path, state] : files) {
      std::lock_guard lock(state->mu);
      if (state->records.empty()) continue;
      const int fd = ::open(path.c_str(), O_RDWR);
      if (fd < 0) throw std::runtime_error("FaultVfs: cannot reopen " + path);
      for (auto it = state->records.rbegin(); it != state->records.rend(); ++it) {
        PWriteAll(fd, it->old_bytes, it->offset);
        Check(::ftruncate(fd, it->size_before), "ftruncate");
      }
      for (const Record& r : state->records) {
        if (!keep_it(rng)) {
          ++lost;
          continue;
        }
        if (r.truncate) {
          Check(::ftruncate(fd, r.new_size), "ftruncate");
        } else {
          PWriteAll(fd, r.new_bytes, r.offset);
        }
      }
      ::close(fd);
      state->records.clear();
    }
    return lost;
  }

 private:
  struct Record {
    bool truncate = false;
    int64_t offset = 0;     // write: where; truncate: the new size
    std::string old_bytes;  // what the range held before (within size_before)
    std::string new_bytes;  // write: what was written
    int64_t size_before = 0;
    int64_t new_size = 0;  // truncate
  };
  struct FileState {
    std::mutex mu;  // serializes a file's writes and syncs with their records
    std::vector<Record> records;
  };
  // What SQLite allocates per open file (szOsFile): ours, then the real one.
  struct File {
    sqlite3_file base;
    Files kind;
    std::shared_ptr<FileState>* state;  // null when not tracked
    sqlite3_file* Real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };
  enum class Mutation { kWrite, kSync, kTruncate };

  FaultVfs() {
    real_ = sqlite3_vfs_find(nullptr);
    if (!real_) throw std::runtime_error("FaultVfs: no default SQLite VFS");
    vfs_.iVersion = 2;  // no xFetch (memory-mapped I/O), no system-call hooks
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.mxPathname = real_->mxPathname;
    vfs_.zName = kName;
    vfs_.xOpen = &FaultVfs::XOpen;
    vfs_.xDelete = &FaultVfs::XDelete;
    vfs_.xAccess = [](sqlite3_vfs*, const char* n, int f, int* out) {
      return Real()->xAccess(Real(), n, f, out);
    };
    vfs_.xFullPathname = [](sqlite3_vfs*, const char* n, int size, char* out) {
      return Real()->xFullPathname(Real(), n, size, out);
    };
    vfs_.xDlOpen = [](sqlite3_vfs*, const char* n) { return Real()->xDlOpen(Real(), n); };
    vfs_.xDlError = [](sqlite3_vfs*, int n, char* out) { Real()->xDlError(Real(), n, out); };
    vfs_.xDlSym = [](sqlite3_vfs*, void* h, const char* s) { return Real()->xDlSym(Real(), h, s); };
    vfs_.xDlClose = [](sqlite3_vfs*, void* h) { Real()->xDlClose(Real(), h); };
    vfs_.xRandomness = [](sqlite3_vfs*, int n, char* out) {
      return Real()->xRandomness(Real(), n, out);
    };
    vfs_.xSleep = [](sqlite3_vfs*, int us) { return Real()->xSleep(Real(), us); };
    vfs_.xCurrentTime = [](sqlite3_vfs*, double* t) { return Real()->xCurrentTime(Real(), t); };
    vfs_.xGetLastError = [](sqlite3_vfs*, int n, char* out) {
      return Real()->xGetLastError(Real(), n, out);
    };
    vfs_.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* t) {
      return Real()->xCurrentTimeInt64(Real(), t);
    };
    io_.iVersion = 2;
    io_.xClose = &FaultVfs::XClose;
    io_.xRead = [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
      return Fwd(f)->pMethods->xRead(Fwd(f), buf, n, off);
    };
    io_.xWrite = &FaultVfs::XWrite;
    io_.xTruncate = &FaultVfs::XTruncate;
    io_.xSync = &FaultVfs::XSync;
    io_.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
      return Fwd(f)->pMethods->xFileSize(Fwd(f), size);
    };
    io_.xLock = [](sqlite3_file* f, int l) { return Fwd(f)->pMethods->xLock(Fwd(f), l); };
    io_.xUnlock = [](sqlite3_file* f, int l) { return Fwd(f)->pMethods->xUnlock(Fwd(f), l); };
    io_.xCheckReservedLock = [](sqlite3_file* f, int* out) {
      return Fwd(f)->pMethods->xCheckReservedLock(Fwd(f), out);
    };
    io_.xFileControl = [](sqlite3_file* f, int op, void* arg) {
      return Fwd(f)->pMethods->xFileControl(Fwd(f), op, arg);
    };
    io_.xSectorSize = [](sqlite3_file* f) { return Fwd(f)->pMethods->xSectorSize(Fwd(f)); };
    io_.xDeviceCharacteristics = [](sqlite3_file* f) {
      return Fwd(f)->pMethods->xDeviceCharacteristics(Fwd(f));
    };
    io_.xShmMap = [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
      return Fwd(f)->pMethods->xShmMap(Fwd(f), page, size, extend, out);
    };
    io_.xShmLock = [](sqlite3_file* f, int offset, int n, int flags) {
      return Fwd(f)->pMethods->xShmLock(Fwd(f), offset, n, flags);
    };
    io_.xShmBarrier = [](sqlite3_file* f) { Fwd(f)->pMethods->xShmBarrier(Fwd(f)); };
    io_.xShmUnmap = [](sqlite3_file* f, int del) {
      return Fwd(f)->pMethods->xShmUnmap(Fwd(f), del);
    };
    if (sqlite3_vfs_register(&vfs_, /*makeDflt=*/0) != SQLITE_OK) {
      throw std::runtime_error("FaultVfs: sqlite3_vfs_register failed");
    }
  }

  static sqlite3_vfs* Real() { return Instance().real_; }
  static File* Self(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* Fwd(sqlite3_file* f) { return Self(f)->Real(); }

  static void Check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string("FaultVfs: ") + what + " failed");
  }
  static void PWriteAll(int fd, const std::string& bytes, int64_t offset) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                                 static_cast<off_t>(offset + static_cast<int64_t>(done)));
      if (n <= 0) throw std::runtime_error("FaultVfs: pwrite failed");
      done += static_cast<size_t>(n);
    }
  }
  static bool Matches(Files which, Files kind) { return which == Files::kAll || which == kind; }

  // Decides the fate of a mutating call before it runs: SQLITE_OK to go on.
  int Admit(File* f, Mutation m) {
    std::unique_lock lock(mu_);
    if (m == Mutation::kSync && f->kind == Files::kWal && sync_gate_closed_) {
      ++syncs_waiting_;
      gate_cv_.wait(lock, [&] { return !sync_gate_closed_ || sync_passes_ > 0; });
      if (sync_gate_closed_) --sync_passes_;
      --syncs_waiting_;
    }
    if (!frozen_ && countdown_ > 0 && Matches(cut_which_, f->kind) && --countdown_ == 0) {
      frozen_ = true;
      if (on_cut_) on_cut_();
    }
    if (frozen_) {
      return m == Mutation::kWrite  ? SQLITE_IOERR_WRITE
             : m == Mutation::kSync ? SQLITE_IOERR_FSYNC
                                    : SQLITE_IOERR_TRUNCATE;
    }
    if (m == Mutation::kWrite && full_) {
      ++full_failures_;
      return SQLITE_FULL;
    }
    if (m == Mutation::kSync && sync_fails_ && Matches(sync_which_, f->kind)) {
      ++sync_failures_;
      return SQLITE_IOERR_FSYNC;
    }
    return SQLITE_OK;
  }

  static int XOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
                   int* out_flags) {
    FaultVfs& self = Instance();
    File* f = Self(file);
    f->base.pMethods = nullptr;
    f->state = nullptr;
    f->kind = (flags & SQLITE_OPEN_MAIN_DB) ? Files::kMainDb
              : (flags & SQLITE_OPEN_WAL)   ? Files::kWal
                                            : Files::kAll;
    std::memset(f->Real(), 0, static_cast<size_t>(self.real_->szOsFile));
    const int rc = self.real_->xOpen(self.real_, name, f->Real(), flags, out_flags);
    if (rc != SQLITE_OK) {
      if (f->Real()->pMethods) f->Real()->pMethods->xClose(f->Real());
      return rc;
    }
    if (name) {
      std::lock_guard lock(self.mu_);
      if (self.tracking_) {
        auto& state = self.files_[name];
        if (!state) state = std::make_shared<FileState>();
        f->state = new std::shared_ptr<FileState>(state);
      }
    }
    f->base.pMethods = &self.io_;
    return SQLITE_OK;
  }

  static int XDelete(sqlite3_vfs*, const char* name, int sync_dir) {
    FaultVfs& self = Instance();
    {
      std::lock_guard lock(self.mu_);
      if (self.frozen_) return SQLITE_IOERR_DELETE;
      self.files_.erase(name);  // deleting is taken as durable at once
    }
    return self.real_->xDelete(self.real_, name, sync_dir);
  }

  static int XClose(sqlite3_file* file) {
    File* f = Self(file);
    delete f->state;
    f->state = nullptr;
    return Fwd(file)->pMethods->xClose(Fwd(file));
  }

  static int64_t SizeOf(sqlite3_file* real) {
    sqlite3_int64 size = 0;
    if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return -1;
    return size;
  }
  static std::string ReadRange(sqlite3_file* real, int64_t offset, int64_t end) {
    if (end <= offset) return {};
    std::string bytes(static_cast<size_t>(end - offset), '\0');
    // A short read zero-fills, which is what the range held.
    (void)real->pMethods->xRead(real, bytes.data(), static_cast<int>(bytes.size()), offset);
    return bytes;
  }

  static int XWrite(sqlite3_file* file, const void* buf, int n, sqlite3_int64 off) {
    File* f = Self(file);
    if (int rc = Instance().Admit(f, Mutation::kWrite); rc != SQLITE_OK) return rc;
    sqlite3_file* real = f->Real();
    if (!f->state) return real->pMethods->xWrite(real, buf, n, off);
    FileState& st = **f->state;
    std::lock_guard lock(st.mu);
    Record r;
    r.offset = off;
    r.size_before = SizeOf(real);
    if (r.size_before < 0) return SQLITE_IOERR_FSTAT;
    r.old_bytes = ReadRange(real, off, std::min<int64_t>(off + n, r.size_before));
    r.new_bytes.assign(static_cast<const char*>(buf), static_cast<size_t>(n));
    const int rc = real->pMethods->xWrite(real, buf, n, off);
    if (rc == SQLITE_OK) st.records.push_back(std::move(r));
    return rc;
  }

  static int XTruncate(sqlite3_file* file, sqlite3_int64 size) {
    File* f = Self(file);
    if (int rc = Instance().Admit(f, Mutation::kTruncate); rc != SQLITE_OK) return rc;
    sqlite3_file* real = f->Real();
    if (!f->state) return real->pMethods->xTruncate(real, size);
    FileState& st = **f->state;
    std::lock_guard lock(st.mu);
    Record r;
    r.truncate = true;
    r.size_before = SizeOf(real);
    if (r.size_before < 0) return SQLITE_IOERR_FSTAT;
    r.offset = std::min<int64_t>(size, r.size_before);
    r.old_bytes = ReadRange(real, r.offset, r.size_before);
    r.new_size = size;
    const int rc = real->pMethods->xTruncate(real, size);
    if (rc == SQLITE_OK) st.records.push_back(std::move(r));
    return rc;
  }

  static int XSync(sqlite3_file* file, int flags) {
    File* f = Self(file);
    FaultVfs& self = Instance();
    if (int rc = self.Admit(f, Mutation::kSync); rc != SQLITE_OK) return rc;
    sqlite3_file* real = f->Real();
    if (!f->state) return real->pMethods->xSync(real, flags);
    FileState& st = **f->state;
    std::chrono::microseconds latency{0};
    {
      std::lock_guard lock(self.mu_);
      if (f->kind == Files::kWal) latency = self.wal_sync_latency_;
    }
    if (latency.count() == 0) {
      std::lock_guard lock(st.mu);
      st.records.clear();  // durable now (in the model; the real fsync is skipped)
      return SQLITE_OK;
    }
    // A slow sync covers what was written when it began; writes made while
    // it runs stay undurable; a power cut meanwhile fails it.
    size_t covered = 0;
    {
      std::lock_guard lock(st.mu);
      covered = st.records.size();
    }
    std::this_thread::sleep_for(latency);
    if (self.frozen()) return SQLITE_IOERR_FSYNC;
    std::lock_guard lock(st.mu);
    covered = std::min(covered, st.records.size());
    st.records.erase(st.records.begin(), st.records.begin() + static_cast<std::ptrdiff_t>(covered));
    return SQLITE_OK;
  }

  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods io_{};

  mutable std::mutex mu_;
  bool sync_fails_ = false;                        // guarded by mu_
  Files sync_which_ = Files::kAll;                 // guarded by mu_
  bool full_ = false;                              // guarded by mu_
  bool tracking_ = false;                          // guarded by mu_
  bool frozen_ = false;                            // guarded by mu_
  int64_t countdown_ = -1;                         // guarded by mu_; > 0: armed
  Files cut_which_ = Files::kAll;                  // guarded by mu_
  int64_t sync_failures_ = 0;                      // guarded by mu_
  int64_t full_failures_ = 0;                      // guarded by mu_
  std::function<void()> on_cut_;                   // guarded by mu_
  bool sync_gate_closed_ = false;                  // guarded by mu_
  int syncs_waiting_ = 0;                          // guarded by mu_
  int sync_passes_ = 0;                            // guarded by mu_
  std::chrono::microseconds wal_sync_latency_{0};  // guarded by mu_
  std::condition_variable gate_cv_;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // guarded by mu_, by path
};

}  // namespace acceptd::store_testing
