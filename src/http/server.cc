// The HTTP/1.1 and WebSocket server on Boost.Beast with C++20 coroutines: listener, one
// coroutine per connection on its own strand, static files, gzip, the WebSocket hub, shutdown.
// GCC 12 with Boost 1.74 needs <utility> before any Asio header.
#include <utility>

#include "base/blocking.h"
#include "http/server.h"

#include <spdlog/spdlog.h>
#include <zlib.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "http/internal.h"

namespace rapport::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace fs = std::filesystem;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

// A subscriber whose queue grows past this is too slow to keep up; it is disconnected rather
// than allowed to grow the server's memory without bound.
constexpr std::size_t kWsQueueLimit = 256;
// In-flight requests get this long to finish after stop(); then the io_context is stopped.
constexpr auto kDrainTimeout = std::chrono::seconds(10);
// Below this, gzip's header and CPU cost outweigh the bytes saved.
constexpr std::size_t kGzipMinBytes = 1024;
// WebSocket: a ping goes out after half of this idle time; no answer by the end closes it.
constexpr auto kWsIdleTimeout = std::chrono::seconds(60);
constexpr auto kWsHandshakeTimeout = std::chrono::seconds(30);
// Clients only send control frames and tiny messages on the event channel.
constexpr std::size_t kWsMaxIncoming = 64 * 1024;
// After an error response on a half-read request, how long and how much we keep reading so
// the client sees the response instead of a TCP reset.
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr std::size_t kLingerMaxBytes = 1024 * 1024;
constexpr std::string_view kEventsPath = "/api/v1/events";
constexpr std::string_view kCsp =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'";

// Boost 1.74's beast::string_view is boost::string_view, not std::string_view.
std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }
beast::string_view bsv(std::string_view s) { return {s.data(), s.size()}; }

auto redirect(beast::error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

// Whether a request target (path and query) names an upload route: body_limit is then
// upload_body_limit.
bool is_upload(std::string_view target, const ServerOptions& opts) {
  std::string_view path = target.substr(0, target.find('?'));
  const std::string& suffix = opts.upload_path_suffix;
  return !suffix.empty() && path.size() >= suffix.size() &&
         path.substr(path.size() - suffix.size()) == suffix;
}

// An unnamed temporary file (in $TMPDIR, else /tmp), gone when closed; nullptr on failure.
std::shared_ptr<std::FILE> temporary_file() {
  const char* env = std::getenv("TMPDIR");
  std::string dir = env && *env ? env : "/tmp";
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {  // no O_TMPFILE on this file system: create and unlink
    std::string path = dir + "/rapport-upload-XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(path.c_str());
  }
  if (fd < 0) return nullptr;
  std::FILE* f = ::fdopen(fd, "w+b");
  if (!f) {
    ::close(fd);
    return nullptr;
  }
  return {f, &std::fclose};
}

// The request body: a string, or — for upload routes (`spool` set once the header is read) — a
// temporary file the body is written to as it arrives, so an import of hundreds of MiB never
// sits in memory (Request::body_file).
struct SpoolBody {
  struct value_type {
    std::string text;
    bool spool = false;
    std::shared_ptr<std::FILE> file;
  };
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& v) : v_(v) {}
    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      ec = {};
      if (v_.spool) {
        v_.file = temporary_file();
        if (!v_.file) ec = beast::error_code(errno, boost::system::generic_category());
      } else if (length) {
        v_.text.reserve(static_cast<std::size_t>(*length));  // within body_limit
      }
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      std::size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
           ++it) {
        asio::const_buffer b = *it;
        if (v_.file) {
          if (std::fwrite(b.data(), 1, b.size(), v_.file.get()) != b.size()) {
            ec = beast::error_code(errno ? errno : EIO, boost::system::generic_category());
            return n;
          }
        } else {
          v_.text.append(static_cast<const char*>(b.data()), b.size());
        }
        n += b.size();
      }
      return n;
    }
    void finish(beast::error_code& ec) {
      ec = {};
      if (v_.file && std::fflush(v_.file.get()) != 0)
        ec = beast::error_code(errno ? errno : EIO, boost::system::generic_category());
    }

   private:
    value_type& v_;
  };
};
using RequestParser = bhttp::request_parser<SpoolBody>;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string generate_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // 16 lower-case hex digits, as fmt's {:016x} wrote them, without its format string parse.
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t n = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, n >>= 4) id[static_cast<std::size_t>(i)] = kHex[n & 0xf];
  return id;
}

// Accept-Encoding: "gzip, deflate, br" or "gzip;q=0" (explicitly refused).
bool accepts_gzip(std::string_view header) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    auto semi = item.find(';');
    if (!iequals(trim(item.substr(0, semi)), "gzip")) continue;
    if (semi == std::string_view::npos) return true;
    auto params = trim(item.substr(semi + 1));
    if (params.size() >= 2 && (params[0] == 'q' || params[0] == 'Q') && params[1] == '=') {
      return std::strtod(std::string(params.substr(2)).c_str(), nullptr) > 0;
    }
    return true;
  }
  return false;
}

bool compressible(std::string_view content_type) {
  if (content_type == "application/json") return true;  // most answers
  auto has = [&](std::string_view s) { return content_type.find(s) != std::string_view::npos; };
  return content_type.starts_with("text/") || has("json") || has("javascript") || has("css") ||
         has("svg") || has("xml");
}

std::optional<std::string> gzip(std::string_view in) {
  z_stream zs{};
  // windowBits 15 + 16 asks zlib for the gzip wrapper instead of a raw zlib stream.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return std::nullopt;
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

bool has_header(const Response& res, std::string_view name) {
  return std::any_of(res.headers.begin(), res.headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

void maybe_gzip(Response& res, const std::string* accept_encoding) {
  if (!compressible(res.content_type)) return;
  if (!has_header(res, "Vary")) res.set_header("Vary", "Accept-Encoding");
  if (res.body.size() <= kGzipMinBytes || accept_encoding == nullptr ||
      !accepts_gzip(*accept_encoding) || has_header(res, "Content-Encoding")) {
    return;
  }
  if (auto compressed = gzip(res.body)) {
    res.body = std::move(*compressed);
    res.set_header("Content-Encoding", "gzip");
  }
}

std::string content_type_for(const fs::path& file) {
  static const std::unordered_map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
  };
  auto ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

bool within(const fs::path& root, const fs::path& candidate) {
  auto [r, c] = std::mismatch(root.begin(), root.end(), candidate.begin(), candidate.end());
  return r == root.end();
}

std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    if (!seg.empty()) out.push_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

class Session {
 public:
  virtual ~Session() = default;
  // Asks the connection to finish: idle ones close now, busy ones after their response.
  // Callable from any thread.
  virtual void shutdown() = 0;
};

class WsSession;

}  // namespace

namespace detail {

// Everything the server owns. Server::Impl derives from it so that the session classes in
// this file can name it. Lives on the thread that calls run(); members are thread-safe as noted.
class ServerCore {
 public:
  ServerCore(ServerOptions options, const Router& router, WsAcceptor ws_acceptor)
      : options_(std::move(options)),
        router_(router),
        ws_acceptor_(std::move(ws_acceptor)),
        pool_(static_cast<std::size_t>(std::max(1, options_.worker_threads))),
        publish_strand_(asio::make_strand(pool_)),
        ioc_(std::max(1, options_.io_threads)) {
    if (!options_.static_dir.empty()) {
      std::error_code ec;
      auto root = fs::canonical(options_.static_dir, ec);
      if (!ec && fs::is_directory(root, ec)) {
        static_root_ = root;
      } else {
        spdlog::warn("static directory {} not found; static files disabled", options_.static_dir);
      }
    }
  }

  ~ServerCore() { join_pool(); }

  std::uint16_t listen();
  void run();
  void stop();
  void publish(std::string event);

  // --- used by sessions ---
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // The I/O threads have been told to stop: nothing posted to them will run any more.
  bool io_stopped() const { return io_stopped_.load(std::memory_order_acquire); }
  bool ws_enabled() const { return static_cast<bool>(ws_acceptor_); }

  // Runs `f` on the blocking worker pool and resumes the calling coroutine on its own
  // executor (the connection's strand) with the result. Exceptions travel back as values
  // through the completion and are rethrown in the coroutine, never on a pool thread.
  template <typename F>
  awaitable<std::invoke_result_t<F&>> on_pool(F f) {
    using R = std::invoke_result_t<F&>;
    return asio::async_initiate<decltype(use_awaitable), void(std::exception_ptr, R)>(
        [this](auto handler, F fn) {
          auto ex = asio::get_associated_executor(handler);
          asio::post(pool_, [this, handler = std::move(handler), fn = std::move(fn), ex]() mutable {
            set_blocking_observer(&growth_);
            std::exception_ptr error;
            std::optional<R> result;
            try {
              result.emplace(fn());
            } catch (...) {
              error = std::current_exception();
            }
            asio::post(ex,
                       [handler = std::move(handler), error, result = std::move(result)]() mutable {
                         handler(error, result ? std::move(*result) : R{});
                       });
          });
        },
        use_awaitable, std::move(f));
  }

  // Runs the request's handler on the worker pool (handle) and resumes the calling coroutine
  // on its own executor with the answer: what the handler returned, or — when it returned
  // Response::answered_later() — what it passed to Request::answer_later, from whichever
  // thread called that (a group COMMIT's), without a worker waiting in between. An answer
  // dropped uncalled resumes it with a 500.
  awaitable<Response> answer_on_pool(std::shared_ptr<Request> req) {
    return asio::async_initiate<decltype(use_awaitable), void(std::exception_ptr, Response)>(
        [this](auto handler, std::shared_ptr<Request> req) {
          using Handler = decltype(handler);
          // Resumes the coroutine once: with the handler's answer, or from the destructor
          // when the later answer was dropped (every copy of Request::answer_later gone).
          struct Resume {
            ServerCore* core = nullptr;
            std::shared_ptr<Request> req;
            std::optional<Handler> handler;
            ~Resume() {
              if (!handler) return;
              spdlog::error("request {}: {} {}: the later answer was dropped", req->request_id,
                            req->method, req->path);
              fire(nullptr, detail::problem(500, "Internal Server Error", "internal"));
            }
            void fire(std::exception_ptr error, Response res) {
              if (!handler) return;  // answered already
              auto h = std::move(*handler);
              handler.reset();
              auto ex = asio::get_associated_executor(h);
              asio::post(ex, [h = std::move(h), error, res = std::move(res)]() mutable {
                h(error, std::move(res));
              });
            }
          };
          auto resume = std::make_shared<Resume>();
          resume->core = this;
          resume->req = std::move(req);
          resume->handler.emplace(std::move(handler));
          asio::post(pool_, [this, resume = std::move(resume)]() mutable {
            set_blocking_observer(&growth_);
            Request& r = *resume->req;
            std::exception_ptr error;
            Response res;
            // Called once, on any thread, by a handler that answered later.
            r.answer_later = [resume](Response later) {
              const Request& q = *resume->req;
              if (!later.stream) maybe_gzip(later, q.header("accept-encoding"));
              resume->core->router_.record_later_answer(q);
              resume->fire(nullptr, std::move(later));
            };
            try {
              res = handle(r);
            } catch (...) {
              error = std::current_exception();
            }
            if (error || !res.later) {
              resume->fire(error, std::move(res));
              r.answer_later = nullptr;  // not taken
            } else {
              r.answer_later = nullptr;  // a copy not taken: dropped (the destructor answers)
            }
          });
        },
        use_awaitable, std::move(req));
  }

  // Runs on the worker pool: static file or router, then compression.
  Response handle(Request& req) const;
  std::optional<WsSubscription> accept_ws(const Request& req) const { return ws_acceptor_(req); }

  std::uint64_t add_session(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(mu_);
    auto id = ++next_id_;
    sessions_.emplace(id, s);
    return id;
  }
  std::size_t session_count() {
    std::lock_guard lock(mu_);
    return sessions_.size();
  }
  // Over the connection cap: a 503 problem+json, then the socket is closed. Sessions already
  // open are not touched.
  void refuse_connection(tcp::socket socket);
  void remove_session(std::uint64_t id) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
    if (sessions_.empty()) cv_.notify_all();
  }
  std::uint64_t add_subscriber(const std::shared_ptr<WsSession>& s) {
    std::lock_guard lock(hub_mu_);
    auto id = ++next_subscriber_id_;
    subscribers_.emplace(id, s);
    subscriber_count_.store(subscribers_.size(), std::memory_order_release);
    return id;
  }
  void remove_subscriber(std::uint64_t id) {
    std::lock_guard lock(hub_mu_);
    subscribers_.erase(id);
    subscriber_count_.store(subscribers_.size(), std::memory_order_release);
  }
  bool has_subscribers() const { return subscriber_count_.load(std::memory_order_acquire) > 0; }

 private:
  awaitable<void> accept_loop();
  std::optional<Response> serve_static(const Request& req) const;
  Response file_response(const fs::path& file, bool immutable) const;
  void join_pool() {
    if (pool_joined_.exchange(true)) return;
    pool_.stop();
    pool_.join();
    growth_.join();
  }

  ServerOptions options_;
  const Router& router_;
  WsAcceptor ws_acceptor_;
  std::optional<fs::path> static_root_;

  asio::thread_pool pool_;
  // Keeps the pool's width of running handlers while some of them wait (ScopedBlocking: a write
  // waiting for its group commit): a handler about to wait when no other pool thread is free
  // starts one more thread that joins the pool (attach), up to kMaxExtra. Threads are not
  // retired; they end with the pool.
  class Growth final : public BlockingObserver {
   public:
    static constexpr int kMaxExtra = 256;
    Growth(asio::thread_pool& pool, int width) : pool_(pool), threads_(width), width_(width) {}
    void enter() override {
      std::lock_guard lock(mu_);
      ++waiting_;
      if (threads_ - waiting_ >= width_ || stopped_ || static_cast<int>(extra_.size()) >= kMaxExtra)
        return;
      ++threads_;
      extra_.emplace_back([this] {
        set_blocking_observer(this);
        pool_.attach();  // runs handlers until the pool stops
      });
    }
    void leave() override {
      std::lock_guard lock(mu_);
      --waiting_;
    }
    int threads() const {
      std::lock_guard lock(mu_);
      return threads_;
    }
    void join() {  // after the pool has stopped
      std::vector<std::thread> extra;
      {
        std::lock_guard lock(mu_);
        stopped_ = true;
        extra.swap(extra_);
      }
      for (auto& t : extra) t.join();
    }

   private:
    asio::thread_pool& pool_;
    mutable std::mutex mu_;
    int threads_;      // pool threads, extra ones included
    int waiting_ = 0;  // of them, inside a ScopedBlocking
    const int width_;  // --workers
    bool stopped_ = false;
    std::vector<std::thread> extra_;
  } growth_{pool_, std::max(1, options_.worker_threads)};
  // Filters run here, one event at a time, so subscribers see events in publish order.
  asio::strand<asio::thread_pool::executor_type> publish_strand_;
  std::atomic<bool> pool_joined_{false};

  std::mutex mu_;  // guards everything below up to hub_mu_
  std::condition_variable cv_;
  bool stop_requested_ = false;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> io_stopped_{false};
  std::atomic<int> refusing_{0};  // connections being answered 503 right now

  std::mutex hub_mu_;
  std::uint64_t next_subscriber_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<WsSession>> subscribers_;
  // subscribers_.size(), read without the lock: an event published while there is none is
  // dropped at once instead of waking a pool thread to find no one (one per durable create).
  std::atomic<std::size_t> subscriber_count_{0};

  // Declared last so it is destroyed first: pending coroutine frames it destroys still find
  // the registries above alive.
  asio::io_context ioc_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
};

}  // namespace detail

namespace {

using detail::ServerCore;

void log_access(const std::string& request_id, std::string_view method, std::string_view path,
                int status, std::chrono::steady_clock::time_point start) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!logger->should_log(spdlog::level::info)) return;
  const auto us =
      std::chrono::round<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
          .count();
  // "access ID METHOD PATH STATUS 1.234ms", written here rather than through fmt's format
  // string and floating-point formatting: this line is written for every request.
  std::string line = detail::access_line(request_id, method, path, status, us);
  logger->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

// Per-request facts needed to shape the response after the Request moved to the worker pool.
struct ReplyInfo {
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false;
  std::string request_id;
};

// Status line and headers of `res` (everything but the body) into `out`.
template <typename Body>
void set_head(bhttp::response<Body>& out, const Response& res, const ReplyInfo& info) {
  out.version(info.version);
  out.result(static_cast<unsigned>(res.status));
  const bool no_body = res.status == 204 || res.status == 304 || res.status < 200;
  if (!res.content_type.empty() && !no_body) out.set(bhttp::field::content_type, res.content_type);
  for (const auto& [name, value] : res.headers) out.insert(name, value);
  // A handler may choose a different policy (say, a framable widget); otherwise the safe one.
  auto set_default = [&](std::string_view name, std::string_view value) {
    if (out.find(bsv(name)) == out.end()) out.set(bsv(name), bsv(value));
  };
  set_default("X-Content-Type-Options", "nosniff");
  set_default("Content-Security-Policy", kCsp);
  set_default("Referrer-Policy", "same-origin");
  set_default("X-Frame-Options", "DENY");
  out.set("X-Request-Id", info.request_id);
  out.keep_alive(info.keep_alive);
}

bhttp::response<bhttp::string_body> to_beast(Response&& res, const ReplyInfo& info) {
  bhttp::response<bhttp::string_body> out;
  set_head(out, res, info);
  const bool no_body = res.status == 204 || res.status == 304 || res.status < 200;
  if (no_body) return out;
  if (info.head) {
    out.content_length(res.body.size());
  } else {
    out.body() = std::move(res.body);
    out.prepare_payload();
  }
  return out;
}

// The security headers every answer carries unless its handler set its own, as header lines.
struct DefaultHeader {
  std::string_view name;
  std::string_view line;
};
constexpr std::string_view kCspLine =
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'\r\n";
constexpr std::array<DefaultHeader, 4> kDefaultHeaders{{
    {"X-Content-Type-Options", "X-Content-Type-Options: nosniff\r\n"},
    {"Content-Security-Policy", kCspLine},
    {"Referrer-Policy", "Referrer-Policy: same-origin\r\n"},
    {"X-Frame-Options", "X-Frame-Options: DENY\r\n"},
}};

// The status line and headers of `res` as sent (what set_head() and Beast's serializer write
// for a string body, without building Beast's field container): the body follows it in the same
// write.
std::string serialize_head(const Response& res, const ReplyInfo& info, bool no_body) {
  std::string out;
  out.reserve(512);
  out += info.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.status);
  out += ' ';
  out += sv(bhttp::obsolete_reason(static_cast<bhttp::status>(res.status)));
  out += "\r\n";
  auto line = [&](std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  };
  if (!res.content_type.empty() && !no_body) line("Content-Type", res.content_type);
  for (const auto& [name, value] : res.headers) line(name, value);
  for (const auto& d : kDefaultHeaders) {
    // A handler may choose a different policy (say, a framable widget); otherwise the safe one.
    if (!has_header(res, d.name)) out += d.line;
  }
  line("X-Request-Id", info.request_id);
  // As Beast's keep_alive(): HTTP/1.1 stays open unless told; HTTP/1.0 closes unless told.
  if (info.version >= 11 && !info.keep_alive) out += "Connection: close\r\n";
  if (info.version < 11 && info.keep_alive) out += "Connection: keep-alive\r\n";
  if (!no_body) line("Content-Length", std::to_string(res.body.size()));
  out += "\r\n";
  return out;
}

Request to_request(bhttp::request<SpoolBody>& in, const std::string& remote_addr,
                   bool& bad_target) {
  Request req;
  req.method = std::string(in.method_string());
  req.target = std::string(in.target());
  std::string_view target = req.target;
  auto q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  // Most paths hold no escape: then the path is the raw path (a NUL byte in it is refused as
  // percent_decode refuses a decoded one).
  std::optional<std::string> decoded;
  if (raw_path.find('%') != std::string_view::npos) {
    decoded = detail::percent_decode(raw_path, false);
  } else if (raw_path.find('\0') == std::string_view::npos) {
    decoded.emplace(raw_path);
  }
  bad_target = !decoded || !raw_path.starts_with('/');
  if (decoded) req.path = std::move(*decoded);
  req.headers.reserve(static_cast<std::size_t>(std::distance(in.begin(), in.end())));
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name)  // ASCII only: field names are tokens
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    req.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  req.body = std::move(in.body().text);
  if (in.body().file) {
    req.body_file = std::move(in.body().file);
    std::rewind(req.body_file.get());
  }
  req.remote_addr = remote_addr;
  const std::string* id = req.header("x-request-id");
  req.request_id = id && valid_request_id(*id) ? *id : generate_request_id();
  return req;
}

// One WebSocket subscriber. Owns the upgraded stream; every member is touched only on the
// connection's strand except `filter`, which the publish strand calls.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(ServerCore& core, beast::tcp_stream&& stream, WsSubscription subscription)
      : core_(core), ws_(std::move(stream)), subscription_(std::move(subscription)) {}

  const WsSubscription& subscription() const { return subscription_; }
  asio::any_io_executor executor() { return ws_.get_executor(); }

  awaitable<void> run(bhttp::request<SpoolBody> upgrade, std::string request_id) {
    // The WebSocket's own timeouts replace the tcp_stream's; Beast wants only one active.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{kWsHandshakeTimeout, kWsIdleTimeout, true};
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator([request_id](websocket::response_type& res) {
      res.set("X-Content-Type-Options", "nosniff");
      res.set("X-Request-Id", request_id);
    }));
    ws_.read_message_max(kWsMaxIncoming);
    // Registered before the handshake completes so that an event published right after the
    // client sees the 101 is not missed; it waits in the queue until `accepted_`.
    subscriber_id_ = core_.add_subscriber(shared_from_this());
    beast::error_code ec;
    co_await ws_.async_accept(upgrade, redirect(ec));
    if (!ec && closed_ && stop_during_handshake_) {
      // stop() came while the 101 was being sent: the client sees the handshake succeed, so it
      // gets the same going-away close frame as every other open WebSocket.
      co_await ws_.async_close(websocket::close_code::going_away, redirect(ec));
    } else if (!ec && !closed_) {
      accepted_ = true;
      if (!queue_.empty() && !writing_) start_writer();
      beast::flat_buffer buffer;
      for (;;) {
        co_await ws_.async_read(buffer, redirect(ec));
        if (ec) break;
        buffer.consume(buffer.size());  // the event channel is one-way; client text is ignored
      }
    }
    closed_ = true;
    core_.remove_subscriber(subscriber_id_);
  }

  void deliver(std::string message) {
    if (closed_) return;
    if (queue_.size() >= kWsQueueLimit) {
      spdlog::warn("websocket subscriber {} too slow ({} queued); disconnecting", subscriber_id_,
                   queue_.size());
      closed_ = true;
      beast::get_lowest_layer(ws_).close();
      return;
    }
    queue_.push_back(std::move(message));
    if (accepted_ && !writing_) start_writer();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (!accepted_) {
      // The upgrade request has been read and the 101 is on its way; the accept coroutine
      // sends the close frame once it is out (see run()).
      stop_during_handshake_ = true;
      return;
    }
    asio::co_spawn(
        ws_.get_executor(),
        [self = shared_from_this()]() -> awaitable<void> {
          beast::error_code ec;
          co_await self->ws_.async_close(websocket::close_code::going_away, redirect(ec));
        },
        asio::detached);
  }

 private:
  void start_writer() {
    writing_ = true;
    asio::co_spawn(
        ws_.get_executor(),
        [self = shared_from_this()]() -> awaitable<void> {
          self->ws_.text(true);
          while (!self->queue_.empty() && !self->closed_) {
            beast::error_code ec;
            co_await self->ws_.async_write(asio::buffer(self->queue_.front()), redirect(ec));
            if (ec) {
              self->closed_ = true;
              break;
            }
            self->queue_.pop_front();
          }
          self->writing_ = false;
        },
        asio::detached);
  }

  ServerCore& core_;
  websocket::stream<beast::tcp_stream> ws_;
  WsSubscription subscription_;
  std::uint64_t subscriber_id_ = 0;
  bool stop_during_handshake_ = false;
  std::deque<std::string> queue_;
  bool accepted_ = false;
  bool writing_ = false;
  bool closed_ = false;
};

// One TCP connection: reads requests one after another (keep-alive), hands each to the worker
// pool, writes the reply; may turn into a WebSocket. Runs as one coroutine on its own strand.
class HttpSession : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(ServerCore& core, tcp::socket socket)
      : core_(core), executor_(socket.get_executor()), stream_(std::move(socket)) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_addr_ = endpoint.address().to_string();
    // reply() writes without waiting when the socket takes the answer; async operations are
    // unaffected by this flag.
    stream_.socket().non_blocking(true, ec);
    write_now_ = !ec;
  }
  ~HttpSession() override {
    if (id_ != 0) core_.remove_session(id_);
  }

  void set_id(std::uint64_t id) { id_ = id; }
  asio::any_io_executor executor() const { return executor_; }

  void shutdown() override {
    asio::post(executor_, [self = shared_from_this()] {
      if (self->ws_) {
        self->ws_->close();
      } else if (self->idle_) {
        self->stream_.cancel();
      }
    });
  }

  awaitable<void> run(std::shared_ptr<HttpSession> self) {
    try {
      co_await serve();
    } catch (const std::exception& e) {
      spdlog::error("connection from {}: {}", remote_addr_, e.what());
    } catch (...) {
      spdlog::error("connection from {}: unknown exception", remote_addr_);
    }
  }

 private:
  awaitable<void> serve() {
    const auto& opts = core_.options();
    for (;;) {
      // Checked right before going idle, on the strand, so shutdown() either sees idle_ or
      // this check sees stopping().
      if (core_.stopping()) break;
      beast::error_code ec;
      if (buffer_.size() == 0) {
        idle_ = true;
        stream_.expires_after(std::chrono::seconds(opts.keepalive_timeout_s));
        auto n = co_await stream_.async_read_some(buffer_.prepare(4096), redirect(ec));
        idle_ = false;
        if (ec) break;  // idle timeout, peer closed, or shutdown
        buffer_.commit(n);
      }
      const auto start = std::chrono::steady_clock::now();
      // One deadline for the whole request, so a trickling client cannot hold the slot.
      stream_.expires_after(std::chrono::seconds(opts.read_timeout_s));
      RequestParser parser;
      parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
      // Beast checks Content-Length against the limit while parsing the header, before the
      // target is known: start with the larger limit, then narrow it for non-upload targets.
      parser.body_limit(std::max(opts.body_limit, opts.upload_body_limit));
      // Parsed from the buffer at once when it holds the whole header (and below, the body):
      // the socket is read only for bytes not yet received.
      std::size_t header_bytes = 0;
      if (needs_more_bytes(parser, false, header_bytes, ec))
        co_await read_more(parser, false, header_bytes, ec);
      if (!ec && !is_upload(sv(parser.get().target()), opts)) {
        auto length = parser.content_length();
        if (length && *length > opts.body_limit)
          ec = bhttp::error::body_limit;
        else
          parser.body_limit(opts.body_limit);
      } else if (!ec) {
        parser.get().body().spool = true;  // an upload goes to a temporary file
      }
      if (!ec && !parser.is_done()) {
        auto expect = parser.get()[bhttp::field::expect];
        if (iequals(sv(expect), "100-continue")) {
          bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
          co_await bhttp::async_write(stream_, cont, redirect(ec));
        }
        if (!ec && needs_more_bytes(parser, true, header_bytes, ec))
          co_await read_more(parser, true, header_bytes, ec);
      }
      if (!ec && std::distance(parser.get().begin(), parser.get().end()) >
                     static_cast<std::ptrdiff_t>(std::max(0, opts.max_header_count))) {
        co_await reply_and_close(
            detail::problem(431, "Request Header Fields Too Large", "too_many_headers"), parser,
            start);
        break;
      }
      if (ec) {
        co_await reply_to_read_error(ec, parser, start);
        break;
      }

      auto& breq = parser.get();
      bool bad_target = false;
      // Shared from the start: the worker pool's run holds it, and `method` and `path` below
      // view it instead of copying its strings for the reply and the access log.
      const auto shared = std::make_shared<Request>(to_request(breq, remote_addr_, bad_target));
      Request& req = *shared;
      req.received = start;
      ReplyInfo info{breq.version(), breq.keep_alive(), req.method == "HEAD", req.request_id};
      const std::string_view method = req.method;
      const std::string_view path = req.path;

      if (bad_target) {
        info.keep_alive = false;
        co_await reply(detail::problem(400, "Bad Request", "bad_request"), info, method, req.target,
                       start);
        break;
      }

      if (path == "/healthz") {
        // Answered here on the I/O thread: it is the benchmark ceiling and touches nothing.
        Response res;
        if (method == "GET" || method == "HEAD") {
          res.body = R"({"status":"ok"})";
        } else {
          res = detail::problem(405, "Method Not Allowed", "method_not_allowed");
          res.set_header("Allow", "GET, HEAD");
        }
        if (!co_await reply(std::move(res), info, method, path, start)) break;
        continue;
      }

      if (path == kEventsPath && websocket::is_upgrade(breq) && core_.ws_enabled()) {
        // Named, not a temporary inside co_await: GCC 12 mishandles non-trivial temporaries
        // in co_await expressions.
        auto accept = [&core = core_, req = shared] { return core.accept_ws(*req); };
        std::optional<WsSubscription> subscription;
        bool acceptor_threw = false;
        try {
          subscription = co_await core_.on_pool(std::move(accept));
        } catch (const std::exception& e) {
          spdlog::error("request {}: websocket acceptor threw: {}", info.request_id, e.what());
          acceptor_threw = true;
        }
        if (acceptor_threw) {
          if (!co_await reply(detail::problem(500, "Internal Server Error", "internal"), info,
                              method, path, start)) {
            break;
          }
          continue;
        }
        if (!subscription) {
          if (!co_await reply(detail::problem(401, "Unauthorized", "unauthenticated"), info, method,
                              path, start)) {
            break;
          }
          continue;
        }
        if (core_.stopping()) break;
        log_access(info.request_id, method, path, 101, start);
        ws_ = std::make_shared<WsSession>(core_, std::move(stream_), std::move(*subscription));
        co_await ws_->run(parser.release(), info.request_id);
        co_return;
      }

      if (may_run_in_place(req)) {
        // A quick read (Lane::kIoThread) is answered here, without the hand-off to a worker
        // and the wait behind slower requests there; it defers when it would have to wait.
        req.in_place = true;
        Response res = core_.handle(req);
        req.in_place = false;
        if (!res.defer) {
          if (!co_await reply(std::move(res), info, method, path, start)) break;
          continue;
        }
      }
      auto res = co_await core_.answer_on_pool(shared);
      if (res.defer) {
        spdlog::error("request {}: {} {}: the handler deferred on a worker", info.request_id,
                      method, path);
        res = detail::problem(500, "Internal Server Error", "internal");
      }
      if (res.stream) {
        if (!co_await reply_stream(std::move(res), info, method, path, start)) break;
        continue;
      }
      if (!co_await reply(std::move(res), info, method, path, start)) break;
    }
    if (!ws_) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // Parses what buffer_ already holds, up to the end of the header (`whole` false) or of the
  // message: the put() calls of Beast's async_read_header/async_read, without their completion,
  // which is posted even when no byte had to be read — the request would go to the back of this
  // I/O thread's queue, behind every other ready connection, before being parsed and answered.
  // True when the parser needs bytes not yet received (`ec` clear): read_more() goes on from
  // there (the parser and the buffer hold the progress). An error (malformed request, a limit)
  // is left in `ec` as Beast's reads report it. `header_bytes` counts the header parsed so far.
  bool needs_more_bytes(RequestParser& parser, bool whole, std::size_t& header_bytes,
                        beast::error_code& ec) {
    parser.eager(whole);  // as async_read_header (false) and async_read (true) set it
    auto done = [&] { return whole ? parser.is_done() : parser.is_header_done(); };
    while (!done()) {
      if (buffer_.size() == 0) return true;
      const std::size_t used = parser.put(buffer_.data(), ec);
      buffer_.consume(used);
      if (!whole) {
        // Beast 1.74 holds header_limit against the bytes not yet parsed only, not the fields
        // it took from earlier reads: a header sent in pieces could grow without bound. Here
        // the limit holds for the whole header (without eager, put() stops at its end).
        header_bytes += used;
        const bool header_done = parser.is_header_done();
        const std::size_t seen = header_bytes + (header_done ? 0 : buffer_.size());
        const std::size_t limit = core_.options().header_limit;
        if ((!ec || ec == bhttp::error::need_more) &&
            (header_done ? seen > limit : seen >= limit)) {
          ec = bhttp::error::header_limit;
          return false;
        }
      }
      if (ec == bhttp::error::need_more) {
        ec = {};
        return true;
      }
      if (ec) return false;
      if (used == 0) return true;  // no progress without more bytes
    }
    return false;
  }

  // Reads from the socket until needs_more_bytes() has what it needs, or fails: Beast's read
  // loop (http::detail::read_some_op, its end-of-stream handling included).
  awaitable<void> read_more(RequestParser& parser, bool whole, std::size_t& header_bytes,
                            beast::error_code& ec) {
    do {
      const std::size_t size = beast::read_size(buffer_, 65536);
      if (size == 0) {
        ec = bhttp::error::buffer_overflow;
        co_return;
      }
      const std::size_t n = co_await stream_.async_read_some(buffer_.prepare(size), redirect(ec));
      buffer_.commit(n);
      if (ec == asio::error::eof) {
        if (parser.got_some()) {
          ec = {};
          parser.put_eof(ec);  // partial_message unless the message may end here
        } else {
          ec = bhttp::error::end_of_stream;
        }
        co_return;
      }
      if (ec) co_return;
    } while (needs_more_bytes(parser, whole, header_bytes, ec));
  }

  // Router requests that may be tried on this I/O thread (the Router decides by the route's
  // lane): reads only, never static files (their reads hit the disk).
  static bool may_run_in_place(const Request& req) {
    return (req.method == "GET" || req.method == "HEAD") && req.path.starts_with("/api/");
  }

  // Writes the response; false when the connection must close afterwards.
  awaitable<bool> reply(Response res, ReplyInfo info, std::string_view method,
                        std::string_view path, std::chrono::steady_clock::time_point start) {
    if (core_.stopping()) info.keep_alive = false;
    const int status = res.status;
    const bool no_body = res.status == 204 || res.status == 304 || res.status < 200;
    // Head and body in one gathered write; HEAD: the length of the body not sent.
    const std::string head = serialize_head(res, info, no_body);
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head), no_body || info.head ? asio::const_buffer() : asio::buffer(res.body)};
    stream_.expires_after(std::chrono::seconds(core_.options().read_timeout_s));
    beast::error_code ec;
    // Most answers fit the socket's send buffer: written here and now, the connection goes on
    // to its next read without the posted completion of an async write (a trip to the back of
    // the I/O thread's queue). Only what the socket did not take waits for it — and every answer
    // to a pipelined request, so that a client sending many at once takes its turn with the
    // other connections of the thread instead of holding it.
    std::size_t sent = 0;
    if (write_now_ && buffer_.size() == 0) {
      sent = stream_.socket().write_some(buffers, ec);  // non-blocking (see the constructor)
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        sent = 0;
      }
    }
    if (!ec && sent < asio::buffer_size(buffers)) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(buffers);
      rest.consume(sent);
      co_await asio::async_write(stream_, rest, redirect(ec));
    }
    log_access(info.request_id, method, path, status, start);
    co_return !ec && info.keep_alive && !core_.stopping();
  }

  // Sends the status and headers, then runs the response's producer on the worker pool; each
  // piece it writes is handed to this connection's strand and written before the producer goes
  // on (one piece in flight: memory stays bounded whatever the body's size). False when the
  // connection must close afterwards — always after a failed or cut-off body, which ends with
  // a reset instead of the last chunk.
  awaitable<bool> reply_stream(Response res, ReplyInfo info, std::string_view method,
                               std::string_view path, std::chrono::steady_clock::time_point start) {
    if (core_.stopping()) info.keep_alive = false;
    // HTTP/1.0 has no chunked transfer: the body ends when the connection closes.
    const bool chunked = info.version >= 11;
    if (!chunked) info.keep_alive = false;
    const int status = res.status;
    auto producer = std::move(res.stream);
    bhttp::response<bhttp::empty_body> head;
    set_head(head, res, info);
    if (chunked) head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer(head);
    const auto timeout = std::chrono::seconds(core_.options().read_timeout_s);
    stream_.expires_after(timeout);
    beast::error_code ec;
    co_await bhttp::async_write_header(stream_, serializer, redirect(ec));
    if (ec || info.head) {
      log_access(info.request_id, method, path, status, start);
      co_return !ec && info.keep_alive && !core_.stopping();
    }

    auto sent = std::make_shared<std::atomic<std::uint64_t>>(0);
    BodyWriterState writer{this, chunked, timeout, sent};
    auto task = [producer = std::move(producer), writer]() -> std::string {
      Response::BodyWriter write = [&writer](std::string_view piece) { return writer(piece); };
      try {
        Status done = producer(write);
        return done.ok() ? std::string() : done.error().message;
      } catch (const std::exception& e) {
        return std::string("exception: ") + e.what();
      }
    };
    const std::string failure = co_await core_.on_pool(std::move(task));
    if (failure.empty() && chunked) {
      stream_.expires_after(timeout);
      co_await asio::async_write(stream_, bhttp::make_chunk_last(), redirect(ec));
    }
    if (!failure.empty() || ec) {
      spdlog::warn("request {}: {} {}: body cut off after {} bytes: {}", info.request_id, method,
                   path, sent->load(), failure.empty() ? ec.message() : failure);
      log_access(info.request_id, method, path, status, start);
      // An abortive close (RST): the client sees an error, never a body that looks complete.
      beast::error_code ignored;
      stream_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
      stream_.socket().close(ignored);
      co_return false;
    }
    log_access(info.request_id, method, path, status, start);
    co_return info.keep_alive && !core_.stopping();
  }

  // The BodyWriter of a streamed response, called on a pool thread while the connection's
  // coroutine waits for the producer: posts the piece's write to the strand and waits for it.
  struct BodyWriterState {
    HttpSession* session;
    bool chunked;
    std::chrono::seconds timeout;
    std::shared_ptr<std::atomic<std::uint64_t>> sent;

    bool operator()(std::string_view piece) const {
      if (piece.empty()) return !session->core_.io_stopped();
      struct Wait {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        beast::error_code ec;
        std::string piece;  // owned here: the producer may give up waiting (shutdown)
      };
      auto wait = std::make_shared<Wait>();
      wait->piece.assign(piece);
      HttpSession* s = session;
      const bool chunk = chunked;
      const auto limit = timeout;
      asio::post(s->executor_, [s, wait, chunk, limit] {
        const std::string& piece = wait->piece;
        auto finish = [wait](beast::error_code ec, std::size_t) {
          std::lock_guard lock(wait->mu);
          wait->ec = ec;
          wait->done = true;
          wait->cv.notify_all();
        };
        s->stream_.expires_after(limit);
        if (chunk) {
          asio::async_write(s->stream_, bhttp::make_chunk(asio::buffer(piece.data(), piece.size())),
                            finish);
        } else {
          asio::async_write(s->stream_, asio::buffer(piece.data(), piece.size()), finish);
        }
      });
      ScopedBlocking blocking;
      std::unique_lock lock(wait->mu);
      while (!wait->done) {
        // Once the I/O threads have stopped (drain timeout at shutdown) the write never ends.
        if (session->core_.io_stopped()) return false;
        wait->cv.wait_for(lock, std::chrono::milliseconds(100));
      }
      if (wait->ec) return false;
      *sent += piece.size();
      return true;
    }
  };

  awaitable<void> reply_to_read_error(beast::error_code ec, RequestParser& parser,
                                      std::chrono::steady_clock::time_point start) {
    if (ec.category() == boost::system::generic_category()) {
      // Only SpoolBody reports in this category: an upload's temporary file could not be
      // created or written. The client is told, and nothing was imported.
      // Named, not a temporary inside co_await (GCC 12 destroys such temporaries twice).
      Response res =
          ec.value() == ENOSPC || ec.value() == EDQUOT
              ? detail::problem(507, "Insufficient Storage: no room for the upload",
                                "upload_storage_full")
              : detail::problem(500, "The upload could not be stored", "upload_not_stored");
      co_await reply_and_close(std::move(res), parser, start);
      co_return;
    }
    if (ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category() ||
        ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
      co_return;  // timeout, reset, or the client went away: nobody to answer
    }
    Response res;
    if (ec == bhttp::error::header_limit) {
      res = detail::problem(431, "Request Header Fields Too Large", "headers_too_large");
    } else if (ec == bhttp::error::body_limit) {
      res = detail::problem(413, "Content Too Large", "too_large");
    } else {
      res = detail::problem(400, "Bad Request", "bad_request");
    }
    co_await reply_and_close(std::move(res), parser, start);
  }

  // Answers a request refused before it was read in full, then closes the connection.
  awaitable<void> reply_and_close(Response res, RequestParser& parser,
                                  std::chrono::steady_clock::time_point start) {
    ReplyInfo info;
    info.keep_alive = false;
    std::string method = "-";
    std::string target = "-";
    if (parser.is_header_done()) {
      const auto& h = parser.get();
      info.version = h.version();
      method = std::string(h.method_string());
      target = std::string(h.target());
      auto id = h["X-Request-Id"];
      if (valid_request_id(sv(id))) info.request_id = std::string(id);
    }
    if (info.request_id.empty()) info.request_id = generate_request_id();
    co_await reply(std::move(res), info, method, target, start);
    co_await linger();
  }

  // The client may still be sending the body we refused; closing with unread data would make
  // the kernel send a reset that can destroy our response before the client reads it.
  awaitable<void> linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTimeout);
    std::size_t drained = 0;
    std::array<char, 8192> scratch;
    while (!ec && drained < kLingerMaxBytes) {
      drained += co_await stream_.async_read_some(asio::buffer(scratch), redirect(ec));
    }
  }

  ServerCore& core_;
  asio::any_io_executor executor_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string remote_addr_;
  std::uint64_t id_ = 0;
  bool idle_ = false;
  bool write_now_ = false;  // the socket is non-blocking: reply() may write without waiting
  std::shared_ptr<WsSession> ws_;
};

}  // namespace

namespace detail {

std::uint16_t ServerCore::listen() {
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot listen: invalid address '{}': {}", options_.address, ec.message()));
  }
  tcp::endpoint endpoint{address, options_.port};
  acceptor_.emplace(asio::make_strand(ioc_));
  auto fail = [&](const char* what) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: {} failed: {}", options_.address,
                                         options_.port, what, ec.message()));
  };
  if (acceptor_->open(endpoint.protocol(), ec)) fail("open");
  if (acceptor_->set_option(asio::socket_base::reuse_address(true), ec)) fail("setsockopt");
  if (acceptor_->bind(endpoint, ec)) fail("bind");
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec)) fail("listen");
  auto port = acceptor_->local_endpoint().port();
  spdlog::info("listening on {}:{}", options_.address, port);
  return port;
}

void ServerCore::refuse_connection(tcp::socket socket) {
  // Refusals themselves are bounded: beyond this many in flight, close without an answer.
  constexpr int kMaxRefusing = 256;
  if (refusing_.fetch_add(1) >= kMaxRefusing) {
    --refusing_;
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  spdlog::debug("connection refused: {} open connections (--max-connections)",
                options_.max_connections);
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
  auto answer = [this, stream]() -> awaitable<void> {
    ReplyInfo info;
    info.keep_alive = false;
    info.request_id = generate_request_id();
    auto res = detail::problem(503, "Service Unavailable", "too_many_connections");
    res.set_header("Retry-After", "1");
    auto out = to_beast(std::move(res), info);
    beast::error_code ec;
    stream->expires_after(kLingerTimeout);
    co_await bhttp::async_write(*stream, out, redirect(ec));
    // Drain what the client sent meanwhile, briefly, so closing does not reset the connection
    // before the client has read the answer.
    stream->socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 4096> scratch;
    std::size_t drained = 0;
    while (!ec && drained < 64 * 1024) {
      drained += co_await stream->async_read_some(asio::buffer(scratch), redirect(ec));
    }
    stream->socket().close(ec);
    --refusing_;
  };
  asio::co_spawn(stream->get_executor(), std::move(answer), asio::detached);
}

awaitable<void> ServerCore::accept_loop() {
  asio::steady_timer backoff(acceptor_->get_executor());
  for (;;) {
    beast::error_code ec;
    // Each connection gets its own strand; any_io_executor keeps the socket a plain tcp::socket.
    asio::any_io_executor strand = asio::make_strand(ioc_);
    tcp::socket socket = co_await acceptor_->async_accept(strand, redirect(ec));
    if (stopping() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // e.g. out of file descriptors: back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(redirect(ec));
      continue;
    }
    if (session_count() >= static_cast<std::size_t>(std::max(1, options_.max_connections))) {
      refuse_connection(std::move(socket));
      continue;
    }
    try {
      auto session = std::make_shared<HttpSession>(*this, std::move(socket));
      session->set_id(add_session(session));
      asio::co_spawn(session->executor(), session->run(session), asio::detached);
    } catch (const std::exception& e) {
      spdlog::error("cannot start connection: {}", e.what());
    }
  }
}

void ServerCore::run() {
  if (!acceptor_) listen();
  signals_.emplace(ioc_, SIGINT, SIGTERM);
  signals_->async_wait([this](const beast::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received; shutting down", signal);
    stop();
  });
  asio::co_spawn(acceptor_->get_executor(), accept_loop(), asio::detached);

  auto work = asio::make_work_guard(ioc_);
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    threads.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("io thread: {}", e.what());
        }
      }
    });
  }

  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stop_requested_; });
  }
  spdlog::info("stopping: no new connections, draining in-flight requests");
  stopping_.store(true, std::memory_order_release);
  asio::post(acceptor_->get_executor(), [this] {
    beast::error_code ec;
    acceptor_->close(ec);
  });
  asio::post(ioc_, [this] {
    beast::error_code ec;
    signals_->cancel(ec);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->shutdown();
  live.clear();
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kDrainTimeout, [&] { return sessions_.empty(); })) {
      spdlog::warn("drain timeout: closing {} connections that are still busy", sessions_.size());
    }
  }
  work.reset();
  io_stopped_.store(true, std::memory_order_release);
  ioc_.stop();
  for (auto& t : threads) t.join();
  join_pool();
  spdlog::info("stopped");
}

void ServerCore::stop() {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
}

void ServerCore::publish(std::string event) {
  // No subscriber: nothing to deliver. (One registered from now on did not exist when the
  // event happened; before, it could be handed the event or not, depending on when the
  // publish strand ran.)
  if (!has_subscribers()) return;
  asio::post(publish_strand_, [this, event = std::move(event)] {
    std::vector<std::shared_ptr<WsSession>> targets;
    {
      std::lock_guard lock(hub_mu_);
      targets.reserve(subscribers_.size());
      for (auto& [id, weak] : subscribers_) {
        if (auto s = weak.lock()) targets.push_back(std::move(s));
      }
    }
    for (auto& target : targets) {
      std::optional<std::string> message;
      try {
        if (target->subscription().filter) message = target->subscription().filter(event);
      } catch (const std::exception& e) {
        spdlog::error("websocket filter threw: {}", e.what());
      }
      if (!message) continue;
      asio::post(target->executor(), [target, message = std::move(*message)]() mutable {
        target->deliver(std::move(message));
      });
    }
  });
}

Response ServerCore::handle(Request& req) const {
  Response res;
  std::optional<Response> file;
  if ((req.method == "GET" || req.method == "HEAD") && !req.path.starts_with("/api/")) {
    try {
      file = serve_static(req);
    } catch (const std::exception& e) {
      spdlog::error("request {}: static file {}: {}", req.request_id, req.path, e.what());
      file = detail::problem(500, "Internal Server Error", "internal");
    }
  }
  res = file ? std::move(*file) : router_.dispatch(req);
  if (!res.stream && !res.defer && !res.later) maybe_gzip(res, req.header("accept-encoding"));
  return res;
}

std::optional<Response> ServerCore::serve_static(const Request& req) const {
  if (!static_root_) return std::nullopt;
  auto segments = split_segments(req.path);
  fs::path relative;
  for (auto segment : segments) {
    if (segment == ".") continue;
    if (segment == ".." || segment.find('\\') != std::string_view::npos) {
      return detail::problem(400, "Bad Request", "bad_path");
    }
    relative /= fs::path(std::string(segment));
  }
  std::error_code ec;
  fs::path full = *static_root_ / relative;
  if (relative.empty() || fs::is_directory(full, ec)) full /= "index.html";
  if (fs::is_regular_file(full, ec)) {
    auto canonical = fs::canonical(full, ec);
    // A symlink inside the directory must not lead outside it.
    if (ec || !within(*static_root_, canonical))
      return detail::problem(404, "Not Found", "not_found");
    return file_response(canonical, req.path.starts_with("/assets/"));
  }
  // Client-side routes (/accounts/42) have no extension and get the app shell; a missing
  // /app.js must stay a 404 so a broken deploy is visible.
  if (!segments.empty() && segments.back().find('.') != std::string_view::npos) return std::nullopt;
  fs::path index = *static_root_ / "index.html";
  if (!fs::is_regular_file(index, ec)) return std::nullopt;
  return file_response(index, false);
}

Response ServerCore::file_response(const fs::path& file, bool immutable) const {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::ostringstream content;
  content << in.rdbuf();
  Response res;
  res.content_type = content_type_for(file);
  res.body = std::move(content).str();
  res.set_header("Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
  return res;
}

}  // namespace detail

struct Server::Impl : detail::ServerCore {
  using detail::ServerCore::ServerCore;
};

Server::Server(ServerOptions options, const Router& router, WsAcceptor ws_acceptor)
    : impl_(std::make_unique<Impl>(std::move(options), router, std::move(ws_acceptor))) {}

Server::~Server() = default;

std::uint16_t Server::listen() { return impl_->listen(); }
void Server::run() { impl_->run(); }
void Server::stop() { impl_->stop(); }
void Server::publish(std::string event) { impl_->publish(std::move(event)); }
bool Server::has_subscribers() const { return impl_->has_subscribers(); }

}  // namespace rapport::http
