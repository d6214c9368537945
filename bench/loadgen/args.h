// Command-line options of the load generator: `--key value` or `--key=value`.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace bench {

class Args {
 public:
  // Parses argv[first..]; throws std::invalid_argument on a malformed option.
  Args(int argc, char** argv, int first);

  bool Has(const std::string& key) const { return kv_.count(key) != 0; }
  std::string Str(const std::string& key, const std::string& def = "") const;
  int64_t Int(const std::string& key, int64_t def) const;
  double Double(const std::string& key, double def) const;
  // Throws std::invalid_argument when the option is missing.
  std::string Required(const std::string& key) const;
  // Throws std::invalid_argument naming any option that was never read.
  void CheckAllUsed() const;

 private:
  std::map<std::string, std::string> kv_;
  mutable std::set<std::string> used_;
};

}  // namespace bench
