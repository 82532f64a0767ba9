// The HTTP/WebSocket server on Boost.Beast + Asio coroutines. Owns the io_context threads,
// the blocking worker pool that runs handlers, the WebSocket hub, and graceful shutdown.
// This header names no Boost types; the implementation is in server.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/router.h"
#include "http/types.h"

namespace rapport::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port
  int io_threads = 2;
  int worker_threads = 8;                     // blocking handler pool
  std::size_t body_limit = 10 * 1024 * 1024;  // 413 above this
  // File uploads (POST …/import) may be larger: 413 above this for them.
  std::size_t upload_body_limit = 256 * 1024 * 1024;
  std::string upload_path_suffix = "/import";
  std::size_t header_limit = 16 * 1024;  // 431 above this
  int max_header_count = 100;            // 431 above this many request header fields
  // Open connections (HTTP and WebSocket) at most; a new one beyond is answered 503 and closed.
  int max_connections = 10000;
  int read_timeout_s = 30;       // whole request must arrive within this
  int keepalive_timeout_s = 60;  // idle keep-alive connection closed after this
  std::string static_dir;        // web/dist; empty disables static files
};

// A WebSocket subscriber: `filter` turns a published event into the message this subscriber
// may see, or nullopt to skip it. Called on arbitrary threads; must be thread-safe.
struct WsSubscription {
  std::function<std::optional<std::string>(const std::string& event)> filter;
};
// Called (on the worker pool) for an upgrade request to /api/v1/events. nullopt refuses with 401.
using WsAcceptor = std::function<std::optional<WsSubscription>(const Request&)>;

class Server {
 public:
  Server(ServerOptions options, const Router& router, WsAcceptor ws_acceptor);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port. Throws std::runtime_error on bind failure.
  std::uint16_t listen();
  // Runs until stop() or SIGINT/SIGTERM; then stops accepting, finishes in-flight requests
  // (bounded by a drain timeout), closes WebSockets, and returns.
  void run();
  void stop();  // thread-safe
  // Sends an event to every WebSocket subscriber whose filter accepts it. Thread-safe.
  void publish(std::string event);
  // Whether a WebSocket subscriber is connected now (handshake begun, not yet closed): without
  // one, publish() drops its event at once, and a caller may skip building it. Thread-safe.
  bool has_subscribers() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rapport::http
