// The real server on an ephemeral port, driven by a small synchronous Beast client: routing,
// limits, keep-alive, gzip, headers, static files, WebSocket events and graceful stop.
#include <utility>

#include "base/blocking.h"
#include "http/server.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <zlib.h>
#include <cstdio>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

namespace rapport::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using BeastResponse = bhttp::response<bhttp::string_body>;

std::string sv(beast::string_view s) { return std::string(s.data(), s.size()); }

// Synchronous sockets have no timeout; a hung server must fail the run, not stall it.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, limit, [&] { return done_; })) {
        std::fprintf(stderr, "watchdog: test exceeded %llds\n",
                     static_cast<long long>(limit.count()));
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

std::string gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  BeastResponse request(bhttp::verb verb, std::string target, Headers headers = {},
                        std::string body = {}) {
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || verb == bhttp::verb::post) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    bhttp::write(socket_, req);
    return read_response(verb == bhttp::verb::head);
  }

  BeastResponse raw(const std::string& bytes) {
    asio::write(socket_, asio::buffer(bytes));
    return read_response(false);
  }

  BeastResponse read_response(bool head) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(head);
    parser.body_limit(64 * 1024 * 1024);
    bhttp::read(socket_, buffer_, parser);
    return parser.release();
  }

  // True when the server has closed its side (read returns EOF or reset).
  bool closed_by_server() {
    beast::error_code ec;
    char byte;
    socket_.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  tcp::socket& socket() { return socket_; }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

Response json(std::string body) {
  Response res;
  res.body = std::move(body);
  return res;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rapport_http_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(dir_ / "www" / "assets");
    write_file(dir_ / "www" / "index.html", "<!doctype html><title>Rapport</title>");
    write_file(dir_ / "www" / "assets" / "app.3f9a.js", "console.log('rapport');");
    write_file(dir_ / "secret.txt", "TOP-SECRET");

    router_.add("GET", "/api/v1/items/{id}", [](Request& req) {
      return json(R"({"id":")" + std::string(req.param("id")) + "\"}");
    });
    router_.add("GET", "/api/v1/big", [](Request&) {
      std::string body = "[";
      for (int i = 0; i < 200; ++i) body += (i ? "," : "") + std::string(R"({"name":"Zhang San"})");
      return json(body + "]");
    });
    router_.add("POST", "/api/v1/echo", [](Request& req) { return json(req.body); });
    router_.add("GET", "/api/v1/thread", [this](Request&) {
      handler_thread_ = std::this_thread::get_id();
      return json("{}");
    });
    router_.add("GET", "/api/v1/slow", [this](Request&) {
      slow_started_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(800));
      slow_finished_ = true;
      return json(R"({"slow":true})");
    });

    options_.port = 0;
    options_.body_limit = 1024;
    options_.header_limit = 4096;
    options_.read_timeout_s = 2;
    options_.static_dir = (dir_ / "www").string();
  }

  void TearDown() override {
    stop_server();
    fs::remove_all(dir_);
  }

  void start_server() {
    server_ = std::make_unique<Server>(options_, router_, [](const Request& req) {
      std::optional<WsSubscription> sub;
      if (req.query.find("token=good") == std::string::npos) return sub;
      sub.emplace();
      sub->filter = [](const std::string& event) -> std::optional<std::string> {
        if (event.find(R"("team":1)") == std::string::npos) return std::nullopt;
        return event;
      };
      return sub;
    });
    port_ = server_->listen();
    ASSERT_NE(port_, 0);
    runner_ = std::thread([this] { server_->run(); });
  }

  void stop_server() {
    if (!server_) return;
    server_->stop();
    if (runner_.joinable()) runner_.join();
    server_.reset();
  }

  static void write_file(const fs::path& p, const std::string& content) {
    std::ofstream(p, std::ios::binary) << content;
  }

  Watchdog watchdog_{std::chrono::seconds(30)};
  fs::path dir_;
  Router router_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  std::uint16_t port_ = 0;
  std::atomic<bool> slow_started_{false};
  std::atomic<bool> slow_finished_{false};
  std::thread::id handler_thread_;
};

TEST_F(ServerTest, RoutedGetWithSecurityHeadersAndRequestId) {
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/api/v1/items/a%20b");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"a b"})");
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/json");
  EXPECT_EQ(sv(res["X-Content-Type-Options"]), "nosniff");
  EXPECT_EQ(sv(res["Content-Security-Policy"]),
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'");
  EXPECT_EQ(sv(res["Referrer-Policy"]), "same-origin");
  EXPECT_EQ(sv(res["X-Frame-Options"]), "DENY");
  auto generated = sv(res["X-Request-Id"]);
  EXPECT_EQ(generated.size(), 16u);
  EXPECT_EQ(generated.find_first_not_of("0123456789abcdef"), std::string::npos);
}

// The request's path is decoded only when it holds an escape (a plain path is taken as it is);
// a NUL byte, escaped, is refused either way; header names reach handlers lower-cased.
TEST_F(ServerTest, PathWithAndWithoutEscapesAndLowerCasedHeaderNames) {
  router_.add("GET", "/api/v1/echo/{id}", [](Request& req) {
    const std::string* h = req.header("x-mixed-name");
    return json("{\"id\":\"" + std::string(req.param("id")) + "\",\"path\":\"" + req.path +
                "\",\"h\":\"" + (h ? *h : std::string("none")) + "\"}");
  });
  start_server();
  Client c(port_);
  auto plain = c.request(bhttp::verb::get, "/api/v1/echo/Abc-9?x=1", {{"X-MiXeD-NAME", "V1"}});
  EXPECT_EQ(plain.result_int(), 200);
  EXPECT_EQ(plain.body(), R"({"id":"Abc-9","path":"/api/v1/echo/Abc-9","h":"V1"})");
  auto escaped = c.request(bhttp::verb::get, "/api/v1/echo/%41%62c");
  EXPECT_EQ(escaped.result_int(), 200);
  EXPECT_EQ(escaped.body(), R"({"id":"Abc","path":"/api/v1/echo/Abc","h":"none"})");
  Client d(port_);
  auto nul = d.request(bhttp::verb::get, "/api/v1/echo/a%00b");
  EXPECT_EQ(nul.result_int(), 400);
  Client e(port_);
  auto bad = e.request(bhttp::verb::get, "/api/v1/echo/a%zzb");
  EXPECT_EQ(bad.result_int(), 400);
  // Generated request ids: 16 hex digits, a new one per request.
  Client f(port_);
  auto one = f.request(bhttp::verb::get, "/healthz");
  auto two = f.request(bhttp::verb::get, "/healthz");
  EXPECT_EQ(sv(one["X-Request-Id"]).find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(sv(one["X-Request-Id"]).size(), 16u);
  EXPECT_NE(sv(one["X-Request-Id"]), sv(two["X-Request-Id"]));
}

TEST_F(ServerTest, RequestIdFromClientIsEchoedWhenSane) {
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/healthz", {{"X-Request-Id", "abc-123.X_y"}});
  EXPECT_EQ(sv(res["X-Request-Id"]), "abc-123.X_y");
  auto bad = c.request(bhttp::verb::get, "/healthz", {{"X-Request-Id", "no spaces<>allowed"}});
  EXPECT_NE(sv(bad["X-Request-Id"]), "no spaces<>allowed");
  EXPECT_EQ(sv(bad["X-Request-Id"]).size(), 16u);
  auto too_long = c.request(bhttp::verb::get, "/healthz", {{"X-Request-Id", std::string(65, 'a')}});
  EXPECT_EQ(sv(too_long["X-Request-Id"]).size(), 16u);
}

TEST_F(ServerTest, Healthz) {
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/healthz");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"status":"ok"})");
  EXPECT_EQ(sv(res["X-Frame-Options"]), "DENY");
}

TEST_F(ServerTest, HandlersRunOffTheCallingAndIoThreads) {
  start_server();
  Client c(port_);
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/thread").result_int(), 200);
  EXPECT_NE(handler_thread_, std::thread::id{});
  EXPECT_NE(handler_thread_, runner_.get_id());
}

TEST_F(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start_server();
  Client c(port_);
  auto first = c.request(bhttp::verb::post, "/api/v1/echo", {}, R"({"n":1})");
  EXPECT_EQ(first.body(), R"({"n":1})");
  EXPECT_TRUE(first.keep_alive());
  auto second = c.request(bhttp::verb::get, "/api/v1/items/2");
  EXPECT_EQ(second.body(), R"({"id":"2"})");
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start_server();
  Client c(port_);
  asio::write(c.socket(),
              asio::buffer(std::string("GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /api/v1/items/2 HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"1"})");
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"2"})");
}

TEST_F(ServerTest, FailingOversizedBodyIs413BeforeTheBodyIsRead) {
  start_server();
  Client c(port_);
  auto res = c.raw(
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 100000\r\n\r\n{\"partial\":");
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
  EXPECT_NE(res.body().find(R"("code":"too_large")"), std::string::npos);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(ServerTest, UploadBodyArrivesInATemporaryFileNotInMemory) {
  // an upload route: the body, larger than body_limit, is spooled to a file; `body` stays empty
  router_.add("POST", "/api/v1/things/import", [](Request& req) {
    std::string content;
    if (req.body_file) {
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, req.body_file.get())) > 0;)
        content.append(buf, n);
    }
    return json(std::string(req.body_file ? "file:" : "none:") + std::to_string(req.body.size()) +
                ":" + content);
  });
  router_.add("POST", "/api/v1/spooled",
              [](Request& req) { return json(req.body_file ? "file" : "memory:" + req.body); });
  start_server();
  Client c(port_);
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "row " + std::to_string(i) + ",张三\n";
  ASSERT_GT(big.size(), options_.body_limit * 100);
  auto res = c.request(bhttp::verb::post, "/api/v1/things/import?mode=commit", {}, big);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "file:0:" + big);
  // chunked transfer as well
  std::string chunked =
      "POST /api/v1/things/import HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
  EXPECT_EQ(c.raw(chunked).body(), "file:0:hello, world");
  // other routes keep their body in memory
  EXPECT_EQ(c.request(bhttp::verb::post, "/api/v1/spooled", {}, "small").body(), "memory:small");
}

TEST_F(ServerTest, FailingUploadWhoseTemporaryFileCannotBeCreatedIs500AndNamesIt) {
  // the upload's body goes to $TMPDIR; a directory that does not exist cannot take it
  bool reached = false;
  router_.add("POST", "/api/v1/things/import", [&](Request&) {
    reached = true;
    return json("imported");
  });
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", "/nonexistent/rapport-upload-dir", 1);
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::post, "/api/v1/things/import?mode=commit", {}, "a,b\n1,2\n");
  if (old)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
  EXPECT_NE(res.body().find(R"("code":"upload_not_stored")"), std::string::npos) << res.body();
  EXPECT_FALSE(reached);
}

TEST_F(ServerTest, FailingOversizedHeadersAre431) {
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/api/v1/items/1", {{"X-Junk", std::string(8000, 'j')}});
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
  EXPECT_NE(res.body().find(R"("code":"headers_too_large")"), std::string::npos) << res.body();
  EXPECT_FALSE(res.keep_alive());
}

// The pieces of a request, written with a pause between them: the server must read on until
// the header (and body) are whole, whether the first piece already held all of it or not.
void write_in_pieces(Client& c, const std::vector<std::string>& pieces) {
  for (const auto& piece : pieces) {
    asio::write(c.socket(), asio::buffer(piece));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

TEST_F(ServerTest, RequestSplitAcrossWritesIsReadWhole) {
  start_server();
  Client c(port_);
  // The header in pieces, one cut inside the request line and one inside a field.
  write_in_pieces(c, {"GET /api/v1/ite", "ms/5 HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"});
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"5"})");
  // The whole header at once and the body later, in two pieces.
  write_in_pieces(c, {"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n",
                      R"({"n":)", "12345}"});
  EXPECT_EQ(c.read_response(false).body(), R"({"n":12345})");
  // The header and part of the body together, the rest later.
  write_in_pieces(
      c, {"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\"", ":1}"});
  EXPECT_EQ(c.read_response(false).body(), R"({"a":1})");
  // A chunked body whose chunks arrive one by one.
  write_in_pieces(c, {"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "3\r\n[1,\r\n", "2\r\n2]\r\n", "0\r\n\r\n"});
  EXPECT_EQ(c.read_response(false).body(), "[1,2]");
}

TEST_F(ServerTest, PipelinedRequestsWithBodiesAndAPartialLastOneAreAnsweredInOrder) {
  start_server();
  Client c(port_);
  // A POST with its body, a GET, and the start of a third request in one write; its rest later.
  write_in_pieces(c, {"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[1,2]"
                      "GET /api/v1/items/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /api/v1/items/3 HT",
                      "TP/1.1\r\nHost: x\r\n\r\n"});
  EXPECT_EQ(c.read_response(false).body(), "[1,2]");
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"2"})");
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"3"})");
  // The connection goes on after them.
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/items/4").body(), R"({"id":"4"})");
}

TEST_F(ServerTest, FailingHeadersThatGrowPastTheLimitInPiecesAre431) {
  start_server();
  Client c(port_);
  // Fields of 500 bytes, each piece ending just after the next field's first byte, so every
  // field before it can be parsed at once: no single read holds more than ~500 unparsed bytes,
  // but the header grows past the 4 KiB limit (Beast 1.74 alone held the limit against the
  // unparsed bytes only, and read such a header on without bound).
  asio::write(c.socket(),
              asio::buffer(std::string("GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nX")));
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    beast::error_code ec;  // the server may have answered and closed by now
    asio::write(c.socket(),
                asio::buffer("-" + std::to_string(i) + ": " + std::string(500, 'a') + "\r\nX"), ec);
    if (ec) break;
  }
  auto res = c.read_response(false);
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
  EXPECT_NE(res.body().find(R"("code":"headers_too_large")"), std::string::npos) << res.body();
  EXPECT_FALSE(res.keep_alive());
  // Two pieces that are each under the limit, the second holding the end of the header.
  Client d(port_);
  write_in_pieces(
      d, {"GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nX-A: " + std::string(3000, 'a') + "\r\nX",
          "-B: " + std::string(3000, 'b') + "\r\n\r\n"});
  EXPECT_EQ(d.read_response(false).result_int(), 431);
  // A header of just under the limit, in pieces, is read.
  Client e(port_);
  write_in_pieces(
      e, {"GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nX-A: " + std::string(1900, 'a') + "\r\nX",
          "-B: " + std::string(1900, 'b') + "\r\n\r\n"});
  EXPECT_EQ(e.read_response(false).body(), R"({"id":"1"})");
}

TEST_F(ServerTest, FailingTooManyHeadersAre431) {
  options_.max_header_count = 5;
  start_server();
  Client c(port_);
  std::string req = "GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 6; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  auto res = c.raw(req + "\r\n");
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
  EXPECT_NE(res.body().find(R"("code":"too_many_headers")"), std::string::npos) << res.body();
}

TEST_F(ServerTest, FailingChunkedBodyOverTheLimitIs413WhetherItArrivesAtOnceOrLater) {
  start_server();
  const std::string head =
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk = "300\r\n" + std::string(0x300, 'x') + "\r\n";  // 768 bytes
  for (bool at_once : {true, false}) {
    Client c(port_);
    if (at_once)
      write_in_pieces(c, {head + chunk + chunk + "0\r\n\r\n"});
    else
      write_in_pieces(c, {head, chunk, chunk, "0\r\n\r\n"});
    auto res = c.read_response(false);
    EXPECT_EQ(res.result_int(), 413) << at_once;
    EXPECT_EQ(sv(res[bhttp::field::content_type]), "application/problem+json");
    EXPECT_NE(res.body().find(R"("code":"too_large")"), std::string::npos) << res.body();
    EXPECT_FALSE(res.keep_alive());
  }
}

TEST_F(ServerTest, AnswerLargerThanTheSocketTakesAtOnceArrivesWholeAndInOrder) {
  // The answer is written at once as far as the socket takes it; the rest waits for the client
  // to read. 16 MiB is more than any socket buffer, and the client starts reading late.
  std::string large;
  for (int i = 0; large.size() < 16u * 1024 * 1024; ++i) large += std::to_string(i) + ",";
  router_.add("GET", "/api/v1/large", [&](Request&) {
    Response res;
    res.content_type = "text/plain";
    res.body = large;
    return res;
  });
  start_server();
  Client c(port_);
  // Pipelined: the second answer waits until the first is out.
  asio::write(c.socket(),
              asio::buffer(std::string("GET /api/v1/large HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /api/v1/items/9 HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto res = c.read_response(false);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(res.body() == large) << "body of " << res.body().size() << " bytes differs";
  EXPECT_EQ(c.read_response(false).body(), R"({"id":"9"})");
  // And alone, not pipelined.
  bhttp::request<bhttp::empty_body> get{bhttp::verb::get, "/api/v1/large", 11};
  get.set(bhttp::field::host, "x");
  bhttp::write(c.socket(), get);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(c.read_response(false).body() == large);
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/items/10").body(), R"({"id":"10"})");
}

TEST_F(ServerTest, ExpectContinueGetsA100BeforeTheBody) {
  start_server();
  Client c(port_);
  asio::write(c.socket(), asio::buffer(std::string(
                              "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                              "Expect: 100-continue\r\n\r\n")));
  bhttp::response_parser<bhttp::empty_body> cont;
  beast::flat_buffer buffer;
  bhttp::read_header(c.socket(), buffer, cont);
  EXPECT_EQ(cont.get().result_int(), 100);
  ASSERT_EQ(buffer.size(), 0u);
  asio::write(c.socket(), asio::buffer(std::string("[42]")));
  EXPECT_EQ(c.read_response(false).body(), "[42]");
}

TEST_F(ServerTest, ARequestAlreadyReceivedIsAnsweredWithoutWaitingBehindOtherReadyConnections) {
  // One I/O thread. While an in-place handler holds it, client C sends a slow in-place request
  // and then client B a quick one. When the thread is free, C's request is read and answered
  // first (its bytes came first); B's is read after that. The time from B's first byte being
  // read to its handler (the server latency) must not include C's handler: before, the header
  // was parsed in a posted step, so B's read came before C's handler ran and B waited for it.
  std::atomic<bool> holding{false};
  router_.add(
      "GET", "/api/v1/sleep/{ms}",
      [&](Request& req) {
        holding = true;
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::stoi(std::string(req.param("ms")))));
        return json("{}");
      },
      Lane::kIoThread);
  std::atomic<long long> waited_us{-1};
  router_.add(
      "GET", "/api/v1/waited",
      [&](Request& req) {
        waited_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - req.received)
                        .count();
        return json("{}");
      },
      Lane::kIoThread);
  options_.io_threads = 1;
  start_server();
  Client a(port_), b(port_), c(port_);
  // B and C are idle in their read, as every keep-alive connection between requests.
  ASSERT_EQ(b.request(bhttp::verb::get, "/api/v1/items/1").result_int(), 200);
  ASSERT_EQ(c.request(bhttp::verb::get, "/api/v1/items/1").result_int(), 200);
  asio::write(a.socket(),
              asio::buffer(std::string("GET /api/v1/sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n")));
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  asio::write(c.socket(),
              asio::buffer(std::string("GET /api/v1/sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  asio::write(b.socket(),
              asio::buffer(std::string("GET /api/v1/waited HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_EQ(a.read_response(false).result_int(), 200);
  EXPECT_EQ(c.read_response(false).result_int(), 200);
  EXPECT_EQ(b.read_response(false).result_int(), 200);
  ASSERT_GE(waited_us.load(), 0);
  EXPECT_LT(waited_us.load(), 150'000) << "B's server time included C's 300 ms handler";
}

TEST_F(ServerTest, FailingMalformedRequestIs400) {
  start_server();
  Client c(port_);
  auto res = c.raw("GET /api/v1/items/1 HTTP/1.1\r\nHost x\r\n\r\n");
  EXPECT_EQ(res.result_int(), 400);
  Client d(port_);
  EXPECT_EQ(d.raw("GET /api/v1/items/%zz HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 400);
}

TEST_F(ServerTest, SlowClientIsDisconnectedAfterReadTimeout) {
  start_server();
  Client c(port_);
  asio::write(c.socket(), asio::buffer(std::string("GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\n")));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ServerTest, GzipWhenAskedAndLargeEnough) {
  start_server();
  Client c(port_);
  auto plain = c.request(bhttp::verb::get, "/api/v1/big");
  EXPECT_EQ(sv(plain[bhttp::field::content_encoding]), "");
  EXPECT_EQ(sv(plain[bhttp::field::vary]), "Accept-Encoding");
  auto zipped = c.request(bhttp::verb::get, "/api/v1/big", {{"Accept-Encoding", "br, gzip"}});
  EXPECT_EQ(sv(zipped[bhttp::field::content_encoding]), "gzip");
  EXPECT_EQ(sv(zipped[bhttp::field::vary]), "Accept-Encoding");
  EXPECT_LT(zipped.body().size(), plain.body().size());
  EXPECT_EQ(gunzip(zipped.body()), plain.body());
  auto refused = c.request(bhttp::verb::get, "/api/v1/big", {{"Accept-Encoding", "gzip;q=0"}});
  EXPECT_EQ(sv(refused[bhttp::field::content_encoding]), "");
  auto small = c.request(bhttp::verb::get, "/api/v1/items/1", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(sv(small[bhttp::field::content_encoding]), "");
}

TEST_F(ServerTest, StaticFilesWithCachingAndSpaFallback) {
  start_server();
  Client c(port_);
  auto index = c.request(bhttp::verb::get, "/");
  EXPECT_EQ(index.result_int(), 200);
  EXPECT_EQ(index.body(), "<!doctype html><title>Rapport</title>");
  EXPECT_EQ(sv(index[bhttp::field::content_type]), "text/html; charset=utf-8");
  EXPECT_EQ(sv(index[bhttp::field::cache_control]), "no-cache");

  auto js = c.request(bhttp::verb::get, "/assets/app.3f9a.js");
  EXPECT_EQ(js.result_int(), 200);
  EXPECT_EQ(js.body(), "console.log('rapport');");
  EXPECT_EQ(sv(js[bhttp::field::content_type]), "text/javascript; charset=utf-8");
  EXPECT_EQ(sv(js[bhttp::field::cache_control]), "public, max-age=31536000, immutable");

  auto head = c.request(bhttp::verb::head, "/assets/app.3f9a.js");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(sv(head[bhttp::field::content_length]), "23");

  auto spa = c.request(bhttp::verb::get, "/accounts/42");
  EXPECT_EQ(spa.result_int(), 200);
  EXPECT_EQ(spa.body(), index.body());

  auto missing = c.request(bhttp::verb::get, "/assets/missing.js");
  EXPECT_EQ(missing.result_int(), 404);

  auto api = c.request(bhttp::verb::get, "/api/v1/unknown/route/here");
  EXPECT_EQ(api.result_int(), 404);
  EXPECT_NE(api.body().find("not_found"), std::string::npos);
}

TEST_F(ServerTest, FailingPathTraversalIsRefused) {
  start_server();
  for (std::string target : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                             "/assets/%2E%2E/%2e%2e/secret.txt"}) {
    Client c(port_);
    auto res = c.request(bhttp::verb::get, target);
    EXPECT_EQ(res.result_int(), 400) << target;
    EXPECT_EQ(res.body().find("TOP-SECRET"), std::string::npos) << target;
  }
}

TEST_F(ServerTest, FailingSymlinkOutOfStaticDirIsNotFollowed) {
  fs::create_symlink(dir_ / "secret.txt", dir_ / "www" / "leak.txt");
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/leak.txt");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body().find("TOP-SECRET"), std::string::npos);
}

TEST_F(ServerTest, MissingStaticDirFallsThroughToRouter) {
  options_.static_dir = (dir_ / "does-not-exist").string();
  start_server();
  Client c(port_);
  EXPECT_EQ(c.request(bhttp::verb::get, "/").result_int(), 404);
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/items/9").body(), R"({"id":"9"})");
}

TEST_F(ServerTest, WebSocketReceivesOnlyEventsItsFilterAccepts) {
  start_server();
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  websocket::response_type upgrade;
  ws.handshake(upgrade, "127.0.0.1", "/api/v1/events?token=good");
  EXPECT_EQ(upgrade.result_int(), 101);
  EXPECT_FALSE(sv(upgrade["X-Request-Id"]).empty());

  server_->publish(R"({"team":2,"n":1})");
  server_->publish(R"({"team":1,"n":2})");
  beast::flat_buffer buffer;
  ws.read(buffer);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), R"({"team":1,"n":2})");
  buffer.consume(buffer.size());

  server_->publish(R"({"team":1,"n":3})");
  ws.read(buffer);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), R"({"team":1,"n":3})");

  ws.close(websocket::close_code::normal);
}

// An event published while no WebSocket is open goes nowhere at once (serve then skips building
// it: no pool thread woken per durable create); one opened afterwards gets only later events.
TEST_F(ServerTest, PublishWithoutSubscribersIsDroppedAndCountsOpenWebSockets) {
  start_server();
  EXPECT_FALSE(server_->has_subscribers());
  server_->publish(R"({"team":1,"n":0})");  // nobody to deliver it to
  {
    asio::io_context ioc;
    websocket::stream<tcp::socket> ws(ioc);
    ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    websocket::response_type upgrade;
    ws.handshake(upgrade, "127.0.0.1", "/api/v1/events?token=good");
    ASSERT_EQ(upgrade.result_int(), 101);
    EXPECT_TRUE(server_->has_subscribers());
    server_->publish(R"({"team":1,"n":1})");
    beast::flat_buffer buffer;
    ws.read(buffer);
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), R"({"team":1,"n":1})");
    ws.close(websocket::close_code::normal);
    beast::error_code ec;
    while (!ec) ws.read(buffer, ec);  // until the server's close frame
  }
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !server_->has_subscribers();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone);
}

TEST_F(ServerTest, FailingWebSocketWithoutCredentialsIs401) {
  start_server();
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  beast::error_code ec;
  ws.handshake("127.0.0.1", "/api/v1/events?token=bad", ec);
  EXPECT_EQ(ec, websocket::error::upgrade_declined);

  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/api/v1/events?token=bad",
                       {{"Connection", "Upgrade"},
                        {"Upgrade", "websocket"},
                        {"Sec-WebSocket-Version", "13"},
                        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_NE(res.body().find(R"("code":"unauthenticated")"), std::string::npos);
}

TEST_F(ServerTest, StopClosesWebSockets) {
  start_server();
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  ws.handshake("127.0.0.1", "/api/v1/events?token=good");
  std::thread stopper([this] { stop_server(); });
  beast::flat_buffer buffer;
  beast::error_code ec;
  ws.read(buffer, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(ws.reason().code, websocket::close_code::going_away);
  stopper.join();
}

TEST_F(ServerTest, StopWaitsForInFlightRequestAndClosesIdleConnections) {
  start_server();
  Client idle(port_);
  EXPECT_EQ(idle.request(bhttp::verb::get, "/healthz").result_int(), 200);

  auto slow = std::async(std::launch::async, [this] {
    Client c(port_);
    return c.request(bhttp::verb::get, "/api/v1/slow");
  });
  while (!slow_started_) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  auto start = std::chrono::steady_clock::now();
  server_->stop();
  runner_.join();
  EXPECT_TRUE(slow_finished_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  auto res = slow.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"slow":true})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(idle.closed_by_server());

  // The listener is gone once run() returns.
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_TRUE(ec);
}

TEST_F(ServerTest, HandlerWaitingInsideScopedBlockingLeavesThePoolFreeForOthers) {
  // One worker. The first request waits (as a write waits for its group commit) until the
  // second one has run: without the pool growing while a handler waits, the second could
  // never run and the first would time out.
  std::promise<void> released;
  std::shared_future<void> release = released.get_future().share();
  std::atomic<bool> waited_ok{false}, wait_started{false};
  router_.add("GET", "/api/v1/wait", [&](Request&) {
    ScopedBlocking waiting;
    wait_started = true;
    waited_ok = release.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    return json(R"({"waited":true})");
  });
  router_.add("GET", "/api/v1/release", [&](Request&) {
    released.set_value();
    return json(R"({"released":true})");
  });
  options_.worker_threads = 1;
  start_server();
  std::thread first([&] {
    Client a(port_);
    auto res = a.request(bhttp::verb::get, "/api/v1/wait");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), R"({"waited":true})");
  });
  while (!wait_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Client b(port_);
  auto res = b.request(bhttp::verb::get, "/api/v1/release");
  EXPECT_EQ(res.result_int(), 200);
  first.join();
  EXPECT_TRUE(waited_ok);
}

TEST_F(ServerTest, QuickReadIsAnsweredInPlaceWhileEveryWorkerIsBlocked) {
  // One worker, held by a request that waits outside ScopedBlocking (so the pool does not grow):
  // a Lane::kIoThread read is still answered, on an I/O thread, with the usual headers; a
  // worker-lane read would wait for the worker.
  std::promise<void> released;
  std::shared_future<void> release = released.get_future().share();
  std::atomic<bool> blocked{false};
  router_.add("GET", "/api/v1/block", [&](Request&) {
    blocked = true;
    release.wait();
    return json(R"({"blocked":true})");
  });
  std::atomic<bool> saw_in_place{false};
  std::thread::id quick_thread;
  router_.add(
      "GET", "/api/v1/quick/{id}",
      [&](Request& req) {
        saw_in_place = req.in_place;
        quick_thread = std::this_thread::get_id();
        return json(R"({"quick":")" + std::string(req.param("id")) + "\"}");
      },
      Lane::kIoThread);
  options_.worker_threads = 1;
  start_server();
  auto first = std::async(std::launch::async, [this] {
    Client a(port_);
    return a.request(bhttp::verb::get, "/api/v1/block");
  });
  while (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Client b(port_);
  auto res = b.request(bhttp::verb::get, "/api/v1/quick/7");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"quick":"7"})");
  EXPECT_EQ(sv(res["X-Frame-Options"]), "DENY");
  EXPECT_TRUE(saw_in_place);
  EXPECT_NE(quick_thread, runner_.get_id());
  // Keep-alive: the same connection answers the next quick read too.
  EXPECT_EQ(b.request(bhttp::verb::get, "/api/v1/quick/8").body(), R"({"quick":"8"})");
  EXPECT_EQ(first.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  released.set_value();
  auto blocked_res = first.get();
  EXPECT_EQ(blocked_res.result_int(), 200);
  EXPECT_EQ(blocked_res.body(), R"({"blocked":true})");
}

TEST_F(ServerTest, QuickReadThatWouldWaitRunsAgainOnAWorker) {
  std::atomic<int> attempts{0};
  std::atomic<bool> pool_run_in_place{true};
  router_.add(
      "GET", "/api/v1/maybe",
      [&](Request& req) {
        ++attempts;
        if (req.in_place) return Response::deferred();
        pool_run_in_place = false;
        handler_thread_ = std::this_thread::get_id();
        return json(R"({"from":"worker"})");
      },
      Lane::kIoThread);
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/api/v1/maybe");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"from":"worker"})");
  EXPECT_EQ(attempts, 2);
  EXPECT_FALSE(pool_run_in_place);
  // Worker-lane routes are never tried in place.
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/thread").result_int(), 200);
}

// A streamed response of `pieces` pieces "piece 0\n", "piece 1\n", …; fails after `fail_after`
// pieces when that is ≥ 0. Counts the pieces the client accepted and whether `write` refused.
struct Streamer {
  int pieces = 0;
  int fail_after = -1;
  std::atomic<int> written{0};
  std::atomic<bool> refused{false};
  std::atomic<bool> done{false};

  Response response() {
    Response res;
    res.content_type = "text/plain";
    res.stream = [this](const Response::BodyWriter& write) -> Status {
      struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = true; }
      } mark{done};
      for (int i = 0; i < pieces; ++i) {
        if (i == fail_after) return make_error(Errc::kStorage, "the database went away");
        // Large pieces, so that a client that stopped reading is noticed once the kernel
        // buffers are full.
        std::string piece =
            "piece " + std::to_string(i) + "\n" + std::string(64 * 1024, '.') + "\n";
        if (!write(piece)) {
          refused = true;
          return make_error(Errc::kBadRequest, "client gone");
        }
        ++written;
      }
      return {};
    };
    return res;
  }
};

TEST_F(ServerTest, StreamedBodyIsChunkedAndTheConnectionStaysUsable) {
  Streamer streamer;
  streamer.pieces = 20;
  router_.add("GET", "/api/v1/stream", [&](Request&) { return streamer.response(); });
  start_server();
  Client c(port_);
  auto res = c.request(bhttp::verb::get, "/api/v1/stream", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(res.chunked());
  EXPECT_EQ(res.find(bhttp::field::content_encoding), res.end()) << "streams are not compressed";
  EXPECT_EQ(sv(res["X-Content-Type-Options"]), "nosniff");
  std::string expected;
  for (int i = 0; i < 20; ++i)
    expected += "piece " + std::to_string(i) + "\n" + std::string(64 * 1024, '.') + "\n";
  EXPECT_TRUE(res.body() == expected) << "body of " << res.body().size() << " bytes";
  EXPECT_TRUE(res.keep_alive());
  // HEAD: the headers alone; the producer does not run.
  streamer.written = 0;
  auto head = c.request(bhttp::verb::head, "/api/v1/stream");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(streamer.written, 0);
  // Same connection, next request.
  EXPECT_EQ(c.request(bhttp::verb::get, "/api/v1/items/7").body(), R"({"id":"7"})");
}

TEST_F(ServerTest, FailingStreamedBodyEndsWithAResetNotTheLastChunk) {
  Streamer streamer;
  streamer.pieces = 10;
  streamer.fail_after = 3;
  router_.add("GET", "/api/v1/stream", [&](Request&) { return streamer.response(); });
  start_server();
  Client c(port_);
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/api/v1/stream", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(c.socket(), req);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  beast::flat_buffer buffer;
  beast::error_code ec;
  bhttp::read(c.socket(), buffer, parser, ec);
  EXPECT_TRUE(ec) << "the body must not parse as complete";
  EXPECT_FALSE(parser.is_done());
  EXPECT_TRUE(parser.is_header_done());
  EXPECT_EQ(parser.get().result_int(), 200);
  EXPECT_EQ(streamer.written, 3);
  // The server is fine for everyone else.
  Client other(port_);
  EXPECT_EQ(other.request(bhttp::verb::get, "/api/v1/items/1").result_int(), 200);
}

TEST_F(ServerTest, FailingClientThatDisconnectsStopsTheStreamProducer) {
  Streamer streamer;
  streamer.pieces = 100000;  // ~6.5 GB: only stops because the client goes away
  router_.add("GET", "/api/v1/stream", [&](Request&) { return streamer.response(); });
  start_server();
  {
    Client c(port_);
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/api/v1/stream", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    bhttp::write(c.socket(), req);
    std::array<char, 4096> some;
    c.socket().read_some(asio::buffer(some));
    while (streamer.written < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c.socket().set_option(asio::socket_base::linger(true, 0));
  }  // closed (reset) with the body unread
  while (!streamer.done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(streamer.refused);
  EXPECT_LT(streamer.written, 1000);
  Client other(port_);
  EXPECT_EQ(other.request(bhttp::verb::get, "/api/v1/items/1").result_int(), 200);
}

TEST(ServerListen, FailingBindOnBusyPortThrows) {
  Router router;
  ServerOptions options;
  options.port = 0;
  Server first(options, router, nullptr);
  options.port = first.listen();
  Server second(options, router, nullptr);
  try {
    second.listen();
    FAIL() << "expected bind failure";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bind"), std::string::npos) << e.what();
  }
}

// A handler whose answer comes after it returned (Request::answer_later, as a create answered
// by the thread that ran its group COMMIT): with one worker, the later answer is given on
// another thread while the worker is free for the next request; it is compressed like any
// answer, and the route's latency is recorded when it is given. A handler that drops its
// answer uncalled gets the client a 500 instead of a connection that never answers.
TEST_F(ServerTest, LaterAnswerIsGivenFromAnotherThreadWhileTheWorkerServesOthers) {
  std::promise<void> released;
  std::shared_future<void> release = released.get_future().share();
  std::thread answerer;
  std::atomic<bool> had_answer{false};
  router_.add("GET", "/api/v1/later", [&](Request& req) {
    had_answer = static_cast<bool>(req.answer_later);
    answerer = std::thread([answer = std::move(req.answer_later), release] {
      release.wait();
      std::string body = "[";
      for (int i = 0; i < 200; ++i) body += (i ? "," : "") + std::string(R"({"later":true})");
      answer(json(body + "]"));
    });
    return Response::answered_later();
  });
  router_.add("GET", "/api/v1/release", [&](Request&) {
    released.set_value();
    return json(R"({"released":true})");
  });
  router_.add("GET", "/api/v1/dropped", [](Request& req) {
    auto answer = std::move(req.answer_later);  // never called
    return Response::answered_later();
  });
  options_.worker_threads = 1;
  start_server();
  std::thread first([&] {
    Client a(port_);
    auto res = a.request(bhttp::verb::get, "/api/v1/later", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(sv(res[bhttp::field::content_encoding]), "gzip");
    EXPECT_NE(gunzip(res.body()).find(R"({"later":true})"), std::string::npos);
    // The connection goes on serving after a later answer.
    EXPECT_EQ(a.request(bhttp::verb::get, "/api/v1/items/7").body(), R"({"id":"7"})");
  });
  // The only worker is not held by the first request: the second one runs and releases it.
  while (!had_answer) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Client b(port_);
  EXPECT_EQ(b.request(bhttp::verb::get, "/api/v1/release").result_int(), 200);
  first.join();
  answerer.join();
  EXPECT_TRUE(had_answer);
  bool recorded = false;
  for (const auto& route : router_.latency())
    if (route.pattern == "/api/v1/later") recorded = route.server.count == 1;
  EXPECT_TRUE(recorded);

  auto dropped = b.request(bhttp::verb::get, "/api/v1/dropped");
  EXPECT_EQ(dropped.result_int(), 500);
  EXPECT_EQ(b.request(bhttp::verb::get, "/api/v1/items/8").body(), R"({"id":"8"})");
}

}  // namespace
}  // namespace rapport::http
