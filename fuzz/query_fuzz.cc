// Fuzz target: request routing and query-string decoding (every request's target).
#include <cstdint>
#include <string>

#include "http/router.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rapport::http;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static Router router = [] {
    Router r;
    auto ok = [](Request& req) {
      Response resp;
      resp.body = std::string(req.param("entity")) + "/" + std::string(req.param("id"));
      return resp;
    };
    r.add("GET", "/api/v1/{entity}", ok);
    r.add("GET", "/api/v1/{entity}/{id}", ok);
    r.add("GET", "/api/v1/{entity}/export.csv", ok);
    r.add("POST", "/api/v1/{entity}/{id}/restore", ok);
    r.set_fallback([](Request&, bool) {
      Response resp;
      resp.status = 404;
      return resp;
    });
    return r;
  }();
  size_t q = text.find('?');
  Request req;
  req.method = size % 2 ? "GET" : "POST";
  req.path = std::string(text.substr(0, q));
  req.query = q == std::string_view::npos ? std::string() : std::string(text.substr(q + 1));
  (void)parse_query(req.query);
  Response r = router.dispatch(req);
  if (r.status != 200 && r.status != 404 && r.status != 405) __builtin_trap();
  return 0;
}
