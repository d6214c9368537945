// acceptd_loadgen: the C++ side of the benchmark suite (bench/run.sh).
//
//   submit     bulk-submit N jobs over many keep-alive connections (pipelined)
//   loop       closed loop: each connection submits a job and waits until it
//              succeeded, then the next; reports completed jobs/s
//              (--lease-workers N: N external workers lease and complete the jobs)
//   latency    open loop at a fixed rate: end-to-end latency of each job
//   check      GET every id in a file; fails if any is 404
//   idle       hold N idle keep-alive connections; reports the server's RSS
//   waiters    hold N long-polls (GET ?wait=) on pending jobs; reports the server's RSS
//   fsync      the disk's 4 KiB write+fdatasync rate (the durable-commit floor)
//   freeport   print a free loopback TCP port
//   waitready  wait until GET /readyz answers 200
//   report     turn the JSON lines of a run into the markdown table and JSON
#include <sys/resource.h>

#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>

#include "loadgen/modes.h"

namespace bench {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument '" + a + "'");
    a = a.substr(2);
    if (auto eq = a.find('='); eq != std::string::npos) {
      kv_[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (i + 1 < argc) {
      kv_[a] = argv[++i];
    } else {
      throw std::invalid_argument("option --" + a + " needs a value");
    }
  }
}

std::string Args::Str(const std::string& key, const std::string& def) const {
  used_.insert(key);
  auto it = kv_.find(key);
  return it == kv_.end() ? def : it->second;
}

int64_t Args::Int(const std::string& key, int64_t def) const {
  used_.insert(key);
  auto it = kv_.find(key);
  if (it == kv_.end()) return def;
  size_t pos = 0;
  int64_t v = std::stoll(it->second, &pos);
  if (pos != it->second.size()) throw std::invalid_argument("--" + key + " must be an integer");
  return v;
}

double Args::Double(const std::string& key, double def) const {
  used_.insert(key);
  auto it = kv_.find(key);
  if (it == kv_.end()) return def;
  size_t pos = 0;
  double v = std::stod(it->second, &pos);
  if (pos != it->second.size()) throw std::invalid_argument("--" + key + " must be a number");
  return v;
}

std::string Args::Required(const std::string& key) const {
  used_.insert(key);
  auto it = kv_.find(key);
  if (it == kv_.end()) throw std::invalid_argument("missing option --" + key);
  return it->second;
}

void Args::CheckAllUsed() const {
  for (const auto& [k, v] : kv_) {
    if (!used_.count(k)) throw std::invalid_argument("unknown option --" + k);
  }
}

}  // namespace bench

int main(int argc, char** argv) {
  // Idle-connection and long-poll runs hold 10,000+ sockets: raise the soft limit to the hard one.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const std::map<std::string, std::function<int(const bench::Args&)>> modes = {
      {"submit", bench::RunSubmit},       {"loop", bench::RunLoop},
      {"latency", bench::RunLatency},     {"check", bench::RunCheck},
      {"idle", bench::RunIdle},           {"waiters", bench::RunWaiters},
      {"fsync", bench::RunFsync},         {"freeport", bench::RunFreePort},
      {"waitready", bench::RunWaitReady}, {"report", bench::RunReport},
  };
  if (argc < 2 || !modes.count(argv[1])) {
    std::cerr << "usage: acceptd_loadgen MODE [--option value]...\nmodes:";
    for (const auto& [name, f] : modes) std::cerr << " " << name;
    std::cerr << "\n(see bench/README.md and the top of bench/loadgen/main.cc)\n";
    return 2;
  }
  try {
    bench::Args args(argc, argv, 2);
    return modes.at(argv[1])(args);
  } catch (const std::invalid_argument& e) {
    std::cerr << "acceptd_loadgen " << argv[1] << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "acceptd_loadgen " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
