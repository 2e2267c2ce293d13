// The connection's socket loop: nats.c's socket reads and writes through omniq's poll thread
// (natsOptions_SetEventLoop), so that the publishes of one io turn go out with one send.
// Private to the connection (src/connection.cpp); defined in src/socket_loop.cpp.
// docs/architecture.md, the outbox and the socket loop, explains why.
#pragma once

#include <cstdint>
#include <mutex>
#include <thread>

#include <nats/nats.h>

namespace omniq::detail {

// nats.c's socket I/O (natsOptions_SetEventLoop): instead of nats.c's own reader thread,
// omniq's poll thread reads, and writes what nats.c buffered when the socket takes it. The
// point is the writes: everything published during one turn of the io executor is written
// with one send, right there on the io thread (flush_here), where nats.c would otherwise
// write each publish with a send of its own (see the outbox in ConnectionState).
class SocketLoop {
 public:
  SocketLoop() = default;
  SocketLoop(const SocketLoop&) = delete;
  SocketLoop& operator=(const SocketLoop&) = delete;
  ~SocketLoop() { stop(); }

  // Set on a thread while it publishes a batch that it flushes itself: nats.c's request to
  // poll for writability needs no wakeup of the poll thread then.
  static thread_local bool flushing_here;

  // The nats.c callbacks. `loop` / `user` is this object. nats.c calls attach on connect and
  // on every reconnect (with the new socket), and detach when the connection closes.
  static natsStatus attach(void** user, void* loop, natsConnection* nc, natsSock fd) noexcept;
  static natsStatus read(void* user, bool add) noexcept;
  static natsStatus write(void* user, bool add) noexcept;
  static natsStatus detach(void* user) noexcept;

  // Writes what nats.c holds for the socket, on this thread; what the socket does not take
  // now is left to the poll thread.
  void flush_here();

  // Closes `nc` with no socket read or write of the loop running (nats.c closes the socket
  // under its lock, assuming none does), after giving the poll thread up to a second to
  // write what nats.c still holds. The poll thread keeps reading until then: deliveries that
  // arrive meanwhile are handed back, not left to ack_wait.
  void close_connection(natsConnection* nc);

  // Ends the poll thread (idempotent). The caller makes sure nats.c no longer needs it: the
  // connection is closed, or about to be destroyed.
  void stop();

 private:
  // Sets a polling wish (a want_ flag); true when it changed.
  bool set(bool& want, bool value);
  void wake();
  // Under mu_, so that stop() cannot close the eventfd meanwhile.
  void signal_locked();

  void run();

  // One socket operation at a time (io_mu_). nats.c's event-loop mode expects one loop
  // thread: a read runs outside its lock, and a failed read or write closes the socket (and
  // frees its TLS state) under the lock, so a read and a write on two threads must not
  // overlap. nats.c also takes an empty write for a closed connection, and a readiness seen
  // by the poll thread may predate a flush_here that wrote everything: write only when nats.c
  // holds something.
  void write_out(natsConnection* nc);
  void read_in(natsConnection* nc);

  std::mutex io_mu_;
  std::mutex mu_;
  natsConnection* nc_ = nullptr;  // guarded by mu_
  int fd_ = -1;                   // guarded by mu_
  std::uint64_t generation_ = 0;  // guarded by mu_: attaches so far (fd numbers get reused)
  bool want_read_ = false;        // guarded by mu_
  bool want_write_ = false;       // guarded by mu_
  bool detached_ = false;         // guarded by mu_
  int wakeup_ = -1;               // eventfd; set once, under mu_, before the thread starts
  std::thread thread_;
};

}  // namespace omniq::detail
