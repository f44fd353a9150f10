// Which process writes a trace path. A path belongs to the first process that records to it: an
// flock on it, held until exit, tells later processes (a subprocess inheriting LD_PRELOAD and
// FPSCOPE_OUTPUT) that a live process writes there; they record beside it, to
// "<stem>.<pid><ext>" (what `fpscope record` lists as "also"). The lock belongs to this process's
// open file description: a forked child closing its copy does not release it; exec closes it
// (O_CLOEXEC). Not thread-safe (the recorder calls it under its lock).
//
// Hostile paths (issue 17): a symbolic link at the path is never followed (O_NOFOLLOW; the
// sibling name is used, with a warning); a FIFO, socket, directory or block device is never
// opened blocking and never written (recording is disabled, with a warning); a regular file or a
// character device (/dev/null, /dev/full) is written. A trace that an earlier image of this very
// process wrote before exec() (same pid, same process start: the "process_start" metadata key) is
// never truncated: the new image records beside it.
#pragma once

#include <sys/stat.h>

#include <string>

namespace fpscope::probe {

// "<dir>/run.fpst" -> "<dir>/run.<id>.fpst"; a name without extension gets ".<id>" appended (a
// leading dot is no extension: "<dir>/.fpst" -> "<dir>/.fpst.<id>").
std::string sibling_path(const std::string& path, long id);

// This process across exec(): "<boot id>:<start time in clock ticks>" (/proc), "" if unknown.
// The probe writes it as the trace metadata's "process_start".
std::string process_start_id();

class OutputClaim {
 public:
  enum class Outcome {
    Claimed,       // ours now (or not openable: the trace writer reports that error)
    Taken,         // another live process (or another OutputClaim) holds it
    EarlierImage,  // a trace this process wrote before exec(): not to be truncated
    Symlink,       // a symbolic link: never followed
    NotWritable    // not a regular file or character device (a FIFO...): never written
  };
  Outcome try_claim(const std::string& path);
  // Claims `path`: true when try_claim() says Claimed. Claiming another path drops the previous
  // claim.
  bool claim(const std::string& path) { return try_claim(path) == Outcome::Claimed; }
  // The path process `pid` records to: `path` if it can be claimed, else its sibling path (with
  // a warning; after exec, "<stem>.<pid>.<n><ext>", n = 2, 3...); "" when recording is off (a
  // warning says why).
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
