#include "output_claim.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "log.h"
#include "term_flush.h"

namespace fpscope::probe {
namespace {

std::string read_small(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Whether the trace open as `fd` was written by an earlier image of this process (before exec):
// its metadata names our pid and our process start (FORMAT.md section 3: magic, versions, flags,
// metadata length at 16, metadata at 20).
bool written_by_earlier_image(int fd) {
  const std::string me = process_start_id();
  unsigned char h[20];
  // pread fails on a write-only descriptor: no check (such a file cannot be read back anyway).
  if (me.empty() || ::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return false;
  static const unsigned char kMagic[8] = {0x89, 'F', 'P', 'S', 'T', '\r', '\n', 0x1A};
  if (std::memcmp(h, kMagic, 8) != 0) return false;
  uint32_t len = 0;
  std::memcpy(&len, h + 16, 4);
  if (len == 0 || len > (16u << 20)) return false;
  std::string meta(len, '\0');
  if (::pread(fd, meta.data(), len, 20) != static_cast<ssize_t>(len)) return false;
  const nlohmann::json j = nlohmann::json::parse(meta, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  const auto pid = j.find("pid");
  const auto start = j.find("process_start");
  return pid != j.end() && pid->is_number_integer() &&
         pid->get<long long>() == static_cast<long long>(::getpid()) && start != j.end() &&
         start->is_string() && start->get<std::string>() == me;
}

}  // namespace

std::string sibling_path(const std::string& p, long id) {
  const size_t slash = p.rfind('/');
  const size_t dot = p.rfind('.');
  const bool ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  const std::string tag = "." + std::to_string(id);
  return ext ? p.substr(0, dot) + tag + p.substr(dot) : p + tag;
}

std::string process_start_id() {
  std::string boot = read_small("/proc/sys/kernel/random/boot_id");
  while (!boot.empty() && (boot.back() == '\n' || boot.back() == ' ')) boot.pop_back();
  const std::string stat = read_small("/proc/self/stat");
  // Field 22 (starttime) counts from field 3, the first after the command name's ')'.
  size_t at = stat.rfind(')');
  if (boot.empty() || at == std::string::npos) return std::string();
  for (int field = 2; field < 22 && at != std::string::npos; ++field) at = stat.find(' ', at + 1);
  if (at == std::string::npos) return std::string();
  const size_t end = stat.find(' ', at + 1);
  return boot + ":" + stat.substr(at + 1, end == std::string::npos ? end : end - at - 1);
}

OutputClaim::Outcome OutputClaim::try_claim(const std::string& p) {
  if (fd_ >= 0 && claimed_ == p) return Outcome::Claimed;
  // O_NOFOLLOW: never through a link; O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead
  // of blocking the program in open() forever.
  constexpr int kFlags = O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = ::open(p.c_str(), O_RDWR | kFlags, 0644);  // read: the earlier-image check
  if (fd < 0 && errno == EACCES) fd = ::open(p.c_str(), O_WRONLY | kFlags, 0644);  // write-only
  if (fd < 0) {
    if (errno == ELOOP) return Outcome::Symlink;
    if (errno == ENXIO || errno == EISDIR) return Outcome::NotWritable;
    return Outcome::Claimed;  // no refusal: the trace writer reports the error
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
    ::close(fd);
    return Outcome::NotWritable;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    return e == EWOULDBLOCK ? Outcome::Taken : Outcome::Claimed;
  }
  if (S_ISREG(st.st_mode) && st.st_size > 0 && written_by_earlier_image(fd)) {
    ::close(fd);
    return Outcome::EarlierImage;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  claimed_ = p;
  return Outcome::Claimed;
}

std::string OutputClaim::claim_or_sibling(const std::string& path, long pid) {
  const Outcome first = try_claim(path);
  std::string own = sibling_path(path, pid);
  switch (first) {
    case Outcome::Claimed:
      arm_sigterm_flush();
      return path;
    case Outcome::NotWritable:
      log(LogLevel::Warn,
          "%s is not a regular file (a FIFO, socket, directory or block device): not written; "
          "recording disabled, the program runs on",
          path.c_str());
      return std::string();
    case Outcome::Symlink:
      log(LogLevel::Warn, "%s is a symbolic link, never followed; process %ld records to %s",
          path.c_str(), pid, own.c_str());
      break;
    case Outcome::EarlierImage:
      log(LogLevel::Info, "%s holds this process's trace from before exec; recording to %s",
          path.c_str(), own.c_str());
      break;
    case Outcome::Taken:
      log(LogLevel::Warn, "another process is recording to %s; process %ld records to %s",
          path.c_str(), pid, own.c_str());
      break;
  }
  // After several exec()s the sibling holds an earlier image's trace too: "<stem>.<pid>.<n><ext>".
  Outcome o = try_claim(own);
  for (long n = 2; o == Outcome::EarlierImage && n < 100; ++n) {
    own = sibling_path(sibling_path(path, pid), n);
    o = try_claim(own);
  }
  if (o == Outcome::Claimed) {
    arm_sigterm_flush();
    return own;
  }
  log(LogLevel::Warn, "%s is %s too; recording disabled, the program runs on", own.c_str(),
      o == Outcome::Symlink ? "a symbolic link" : "in use");
  return std::string();
}

void OutputClaim::forget_after_fork() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  claimed_.clear();
}

PathSnapshot PathSnapshot::take(const std::string& path) {
  PathSnapshot s;
  s.existed_ = ::stat(path.c_str(), &s.st_) == 0;
  return s;
}

bool PathSnapshot::missing_or_unchanged(const std::string& path) const {
  struct stat now {};
  if (::stat(path.c_str(), &now) != 0) return true;
  return existed_ && now.st_ino == st_.st_ino && now.st_mtim.tv_sec == st_.st_mtim.tv_sec &&
         now.st_mtim.tv_nsec == st_.st_mtim.tv_nsec;
}

}  // namespace fpscope::probe
