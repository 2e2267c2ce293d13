// The connection's socket loop (detail/socket_loop.hpp): the nats.c event-loop callbacks, the
// poll thread, and the writes made on the thread that flushes its own batch.
#include "omniq/detail/socket_loop.hpp"

#include <chrono>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace omniq::detail {

thread_local bool SocketLoop::flushing_here = false;

natsStatus SocketLoop::attach(void** user, void* loop, natsConnection* nc, natsSock fd) noexcept {
  auto* self = static_cast<SocketLoop*>(loop);
  *user = self;
  try {
    {
      std::lock_guard lock(self->mu_);
      if (self->detached_) return NATS_CONNECTION_CLOSED;  // stopped for a close
      self->nc_ = nc;
      self->fd_ = fd;
      ++self->generation_;
      self->want_read_ = true;
      self->want_write_ = false;
      if (self->wakeup_ < 0) {
        self->wakeup_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (self->wakeup_ < 0) return NATS_SYS_ERROR;
      }
      if (!self->thread_.joinable()) self->thread_ = std::thread([self] { self->run(); });
      self->signal_locked();
    }
    return NATS_OK;
  } catch (...) {
    return NATS_SYS_ERROR;
  }
}

natsStatus SocketLoop::read(void* user, bool add) noexcept {
  auto* self = static_cast<SocketLoop*>(user);
  if (self->set(self->want_read_, add)) self->wake();
  return NATS_OK;
}

natsStatus SocketLoop::write(void* user, bool add) noexcept {
  auto* self = static_cast<SocketLoop*>(user);
  if (self->set(self->want_write_, add) && add && !flushing_here) self->wake();
  return NATS_OK;
}

natsStatus SocketLoop::detach(void* user) noexcept {
  auto* self = static_cast<SocketLoop*>(user);
  {
    std::lock_guard lock(self->mu_);
    self->detached_ = true;
  }
  self->wake();
  return NATS_OK;
}

void SocketLoop::flush_here() {
  natsConnection* nc = nullptr;
  {
    std::lock_guard lock(mu_);
    if (detached_ || nc_ == nullptr || !want_write_) return;
    nc = nc_;
  }
  write_out(nc);
  bool left = false;
  {
    std::lock_guard lock(mu_);
    left = want_write_;
  }
  if (left) wake();
}

void SocketLoop::close_connection(natsConnection* nc) {
  for (int i = 0; i < 200 && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED &&
                  natsConnection_Buffered(nc) > 0;
       ++i) {
    wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard lock(io_mu_);
  natsConnection_Close(nc);
}

void SocketLoop::stop() {
  {
    std::lock_guard lock(mu_);
    detached_ = true;
    signal_locked();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  if (wakeup_ >= 0) ::close(wakeup_);
  wakeup_ = -1;
}

bool SocketLoop::set(bool& want, bool value) {
  std::lock_guard lock(mu_);
  if (want == value) return false;
  want = value;
  return true;
}

void SocketLoop::wake() {
  std::lock_guard lock(mu_);
  signal_locked();
}

void SocketLoop::signal_locked() {
  if (wakeup_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wakeup_, &one, sizeof one);
}

void SocketLoop::run() {
  for (;;) {
    natsConnection* nc = nullptr;
    int fd = -1;
    std::uint64_t generation = 0;
    short events = 0;
    {
      std::lock_guard lock(mu_);
      if (detached_) return;
      nc = nc_;
      fd = fd_;
      generation = generation_;
      events = static_cast<short>((want_read_ ? POLLIN : 0) | (want_write_ ? POLLOUT : 0));
    }
    pollfd fds[2] = {{wakeup_, POLLIN, 0}, {fd, events, 0}};
    const bool polled = events != 0 && fd >= 0;
    if (::poll(fds, polled ? 2 : 1, -1) < 0) continue;  // EINTR
    if (fds[0].revents & POLLIN) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(wakeup_, &count, sizeof count);
    }
    if (!polled) continue;
    // nats.c checks under its lock that the socket is still the attached one; a readiness
    // seen on a socket it has since closed costs one call that does nothing.
    const short got = fds[1].revents;
    if (got & POLLNVAL) {  // closed under us without a word: wait for the next attach
      std::lock_guard lock(mu_);
      if (generation_ == generation) want_read_ = want_write_ = false;
      continue;
    }
    if ((events & POLLIN) && (got & (POLLIN | POLLERR | POLLHUP))) read_in(nc);
    if ((events & POLLOUT) && (got & (POLLOUT | POLLERR | POLLHUP))) write_out(nc);
  }
}

void SocketLoop::write_out(natsConnection* nc) {
  std::lock_guard lock(io_mu_);
  if (natsConnection_Buffered(nc) > 0) natsConnection_ProcessWriteEvent(nc);
}

void SocketLoop::read_in(natsConnection* nc) {
  std::lock_guard lock(io_mu_);
  natsConnection_ProcessReadEvent(nc);
}

}  // namespace omniq::detail
