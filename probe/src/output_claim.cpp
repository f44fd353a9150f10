#include "output_claim.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "log.h"

namespace fpscope::probe {

std::string sibling_path(const std::string& p, long id) {
  const size_t slash = p.rfind('/');
  const size_t dot = p.rfind('.');
  const bool ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  const std::string tag = "." + std::to_string(id);
  return ext ? p.substr(0, dot) + tag + p.substr(dot) : p + tag;
}

bool OutputClaim::claim(const std::string& p) {
  if (fd_ >= 0 && claimed_ == p) return true;
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return true;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return errno != EWOULDBLOCK;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  claimed_ = p;
  return true;
}

std::string OutputClaim::claim_or_sibling(const std::string& path, long pid) {
  if (claim(path)) return path;
  const std::string own = sibling_path(path, pid);
  log(LogLevel::Warn, "another process is recording to %s; process %ld records to %s", path.c_str(),
      pid, own.c_str());
  if (claim(own)) return own;
  log(LogLevel::Warn, "%s is in use too; recording disabled, the program runs on", own.c_str());
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
