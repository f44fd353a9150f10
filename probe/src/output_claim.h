// Which process writes a trace path. A path belongs to the first process that records to it: an
// flock on it, held until exit, tells later processes (a subprocess inheriting LD_PRELOAD and
// FPSCOPE_OUTPUT) that a live process writes there; they record beside it, to
// "<stem>.<pid><ext>" (what `fpscope record` lists as "also"). The lock belongs to this process's
// open file description: a forked child closing its copy does not release it; exec closes it
// (O_CLOEXEC). Not thread-safe (the recorder calls it under its lock).
#pragma once

#include <sys/stat.h>

#include <string>

namespace fpscope::probe {

// "<dir>/run.fpst" -> "<dir>/run.<id>.fpst"; a name without extension gets ".<id>" appended (a
// leading dot is no extension: "<dir>/.fpst" -> "<dir>/.fpst.<id>").
std::string sibling_path(const std::string& path, long id);

class OutputClaim {
 public:
  // Claims `path`: false when another live process (or another OutputClaim) holds it. An error
  // opening it is no refusal: the trace writer reports it. Claiming another path drops the
  // previous claim.
  bool claim(const std::string& path);
  // The path process `pid` records to: `path` if it can be claimed, else its sibling path (with
  // a warning); "" when that is taken too (a warning says recording is disabled).
  std::string claim_or_sibling(const std::string& path, long pid);
  // In a forked child: closes the inherited descriptor, never unlocking (the parent keeps it).
  void forget_after_fork();

 private:
  int fd_ = -1;
  std::string claimed_;
};

// What a path looked like when the process started, to tell at exit whether a trace there is a
// stale one (writing an empty trace over it is fine) or another process's since.
class PathSnapshot {
 public:
  static PathSnapshot take(const std::string& path);
  // True when `path` is missing now, or is the file seen at take(): same inode and mtime.
  bool missing_or_unchanged(const std::string& path) const;
  void forget() { existed_ = false; }  // a forked child saw nothing at its start

 private:
  bool existed_ = false;
  struct stat st_ {};
};

}  // namespace fpscope::probe
