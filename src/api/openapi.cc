// OpenAPI 3.1 document generated from the entity metadata (GET /api/v1/openapi.json).
#include <map>
#include <string>
#include <vector>

#include "api/routes.h"
#include "core/json.h"

namespace rapport::api {

namespace {

using schema::FieldType;

void field_schema(json::Writer& w, const schema::Field& f) {
  w.StartObject();
  auto type = [&](const char* t, bool nullable = true) {
    w.Key("type");
    if (nullable) {
      w.StartArray();
      w.String(t);
      w.String("null");
      w.EndArray();
    } else {
      w.String(t);
    }
  };
  switch (f.type) {
    case FieldType::kInteger:
      type("integer");
      break;
    case FieldType::kDecimal:
      type("number");
      break;
    case FieldType::kBoolean:
      type("boolean");
      break;
    case FieldType::kMoney:
      type("object");
      w.Key("properties");
      w.StartObject();
      w.Key("amount");
      w.StartObject();
      w.Key("type");
      w.String("integer");
      w.Key("description");
      w.String("minor units (fen, cents)");
      w.EndObject();
      w.Key("currency");
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.Key("pattern");
      w.String("^[A-Z]{3}$");
      w.EndObject();
      w.EndObject();
      break;
    case FieldType::kDate:
      type("string");
      w.Key("format");
      w.String("date");
      break;
    case FieldType::kDatetime:
      type("string");
      w.Key("format");
      w.String("date-time");
      break;
    case FieldType::kEnum:
      type("string");
      w.Key("enum");
      w.StartArray();
      for (const auto& o : f.options) w.String(o.value);
      w.Null();
      w.EndArray();
      break;
    case FieldType::kMultiEnum:
      type("array");
      w.Key("items");
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.Key("enum");
      w.StartArray();
      for (const auto& o : f.options) w.String(o.value);
      w.EndArray();
      w.EndObject();
      break;
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
      type("array");
      w.Key("items");
      w.StartObject();
      w.Key("oneOf");
      w.StartArray();
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.EndObject();
      w.StartObject();
      w.Key("type");
      w.String("object");
      w.Key("properties");
      w.StartObject();
      w.Key("value");
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.EndObject();
      w.Key("label");
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.EndObject();
      w.EndObject();
      w.Key("required");
      w.StartArray();
      w.String("value");
      w.EndArray();
      w.EndObject();
      w.EndArray();
      w.EndObject();
      break;
    case FieldType::kAddress:
      type("object");
      w.Key("properties");
      w.StartObject();
      for (const char* k : {"street", "city", "region", "postal_code", "country"}) {
        w.Key(k);
        w.StartObject();
        w.Key("type");
        w.String("string");
        w.EndObject();
      }
      w.EndObject();
      w.Key("additionalProperties");
      w.Bool(false);
      break;
    case FieldType::kReference:
      type("string");
      w.Key("pattern");
      w.String("^[0-9]+$");
      w.Key("description");
      w.String(("id of a " + f.reference).c_str());
      break;
    case FieldType::kJson:
      break;
    default:
      type("string");
      if (f.max_length) {
        w.Key("maxLength");
        w.Int(f.max_length);
      }
      if (!f.pattern.empty()) {
        w.Key("pattern");
        w.String(f.pattern);
      }
  }
  w.Key("title");
  w.String(f.label.en);
  if (f.readonly) {
    w.Key("readOnly");
    w.Bool(true);
  }
  w.EndObject();
}

void ref(json::Writer& w, const std::string& name) {
  w.StartObject();
  w.Key("$ref");
  w.String("#/components/schemas/" + name);
  w.EndObject();
}

void response(json::Writer& w, const char* status, const char* desc, const std::string& schema_ref,
              const char* media = "application/json") {
  w.Key(status);
  w.StartObject();
  w.Key("description");
  w.String(desc);
  if (!schema_ref.empty()) {
    w.Key("content");
    w.StartObject();
    w.Key(media);
    w.StartObject();
    w.Key("schema");
    ref(w, schema_ref);
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
}

void errors(json::Writer& w) {
  for (const char* s : {"400", "401", "403", "404", "409", "413", "422"})
    response(w, s, "problem", "Problem", "application/problem+json");
}

void param(json::Writer& w, const char* name, const char* in, const char* type, bool required) {
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("in");
  w.String(in);
  w.Key("required");
  w.Bool(required);
  w.Key("schema");
  w.StartObject();
  w.Key("type");
  w.String(type);
  w.EndObject();
  w.EndObject();
}

// A query parameter of a generic operation: name, JSON type, required.
struct QueryParam {
  const char* name;
  const char* type;
  bool required;
};

// The query of a list (docs/API.md, "Lists").
const std::vector<QueryParam> kListParams = {
    {"filter", "string", false}, {"sort", "string", false}, {"cursor", "string", false},
    {"fields", "string", false}, {"q", "string", false},    {"limit", "integer", false},
    {"deleted", "string", false}};
// The query of an aggregate (docs/API.md, "Aggregates"): the list's filter and q, grouped.
const std::vector<QueryParam> kAggregateParams = {{"group_by", "string", true},
                                                  {"bucket", "string", false},
                                                  {"filter", "string", false},
                                                  {"q", "string", false}};

// The fields every operation starts with: its id, its summary and its one tag.
void operation_header(json::Writer& w, const std::string& id, const std::string& summary,
                      const std::string& tag) {
  w.Key("operationId");
  w.String(id);
  w.Key("summary");
  w.String(summary);
  w.Key("tags");
  w.StartArray();
  w.String(tag);
  w.EndArray();
}

void operation(json::Writer& w, const char* method, const std::string& id,
               const std::string& summary, const std::string& tag, const std::string& body_ref,
               const char* ok_status, const std::string& ok_ref, bool with_id,
               const std::vector<QueryParam>& query = {}) {
  w.Key(method);
  w.StartObject();
  operation_header(w, id, summary, tag);
  w.Key("parameters");
  w.StartArray();
  if (with_id) param(w, "id", "path", "string", true);
  for (const auto& q : query) param(w, q.name, "query", q.type, q.required);
  w.EndArray();
  if (!body_ref.empty()) {
    w.Key("requestBody");
    w.StartObject();
    w.Key("required");
    w.Bool(true);
    w.Key("content");
    w.StartObject();
    w.Key("application/json");
    w.StartObject();
    w.Key("schema");
    ref(w, body_ref);
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.Key("responses");
  w.StartObject();
  response(w, ok_status, "success", ok_ref);
  errors(w);
  w.EndObject();
  w.EndObject();
}

// Captures of a path pattern: "/merges/{merge_id}/undo" → merge_id.
std::vector<std::string> captures(const std::string& path) {
  std::vector<std::string> out;
  for (size_t at = path.find('{'); at != std::string::npos; at = path.find('{', at + 1)) {
    size_t end = path.find('}', at);
    if (end == std::string::npos) break;
    out.push_back(path.substr(at + 1, end - at - 1));
  }
  return out;
}

// "post", "/accounts/{id}/merge" → "post_accounts_id_merge"
std::string operation_id(const std::string& method, const std::string& path) {
  std::string id = method;
  for (char c : path) {
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (word)
      id += c;
    else if (c >= 'A' && c <= 'Z')
      id += static_cast<char>(c - 'A' + 'a');
    else if (id.back() != '_')
      id += '_';
  }
  while (!id.empty() && id.back() == '_') id.pop_back();
  return id;
}

// Schema JSON text of an action (or the fallback), written raw.
void raw_schema(json::Writer& w, const std::string& schema, const char* fallback) {
  const std::string& s = schema.empty() ? std::string(fallback) : schema;
  w.RawValue(s.c_str(), s.size(), rapidjson::kObjectType);
}

// Every module action as an operation, grouped by path (several methods may share one).
void action_paths(json::Writer& w, const record::ActionRegistry& actions) {
  std::map<std::string, std::vector<const record::Action*>> by_path;
  for (const auto& a : actions.all()) by_path[a.path].push_back(&a);
  for (const auto& [path, list] : by_path) {
    json::key(w, "/api/v1" + path);
    w.StartObject();
    for (const record::Action* a : list) {
      std::string method;
      for (char c : a->method)
        method += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      json::key(w, method);
      w.StartObject();
      operation_header(w, operation_id(method, a->path), a->summary, "actions");
      w.Key("parameters");
      w.StartArray();
      for (const auto& c : captures(a->path)) param(w, c.c_str(), "path", "string", true);
      for (const auto& q : a->query) {
        w.StartObject();
        w.Key("name");
        w.String(q.name);
        w.Key("in");
        w.String("query");
        w.Key("required");
        w.Bool(q.required);
        if (!q.description.empty()) {
          w.Key("description");
          w.String(q.description);
        }
        w.Key("schema");
        w.StartObject();
        w.Key("type");
        w.String(q.type);
        w.EndObject();
        w.EndObject();
      }
      w.EndArray();
      if (!a->request_schema.empty()) {
        w.Key("requestBody");
        w.StartObject();
        w.Key("required");
        w.Bool(true);
        w.Key("content");
        w.StartObject();
        w.Key("application/json");
        w.StartObject();
        w.Key("schema");
        raw_schema(w, a->request_schema, "");
        w.EndObject();
        w.EndObject();
        w.EndObject();
      }
      w.Key("responses");
      w.StartObject();
      json::key(w, std::to_string(a->status));
      w.StartObject();
      w.Key("description");
      w.String("success");
      w.Key("content");
      w.StartObject();
      w.Key("application/json");
      w.StartObject();
      w.Key("schema");
      raw_schema(w, a->response_schema, R"({"type":"object"})");
      w.EndObject();
      w.EndObject();
      w.EndObject();
      if (!a->entity.empty() && a->method == "GET") {
        w.Key("308");
        w.StartObject();
        w.Key("description");
        w.String("the id names a record merged into another: the same request on the survivor");
        w.Key("headers");
        w.StartObject();
        w.Key("Location");
        w.StartObject();
        w.Key("schema");
        w.StartObject();
        w.Key("type");
        w.String("string");
        w.EndObject();
        w.EndObject();
        w.EndObject();
        w.EndObject();
      }
      errors(w);
      w.EndObject();
      w.EndObject();
    }
    w.EndObject();
  }
}

// An operation whose parameters, request body and success answer are given as JSON text
// (import and export: bodies and answers that are not the generic JSON records).
void raw_operation(json::Writer& w, const char* method, const std::string& id,
                   const std::string& summary, const std::string& tag,
                   const std::string& parameters, const std::string& request_body,
                   const std::string& ok_status, const std::string& ok_response) {
  w.Key(method);
  w.StartObject();
  operation_header(w, id, summary, tag);
  w.Key("parameters");
  w.RawValue(parameters.c_str(), parameters.size(), rapidjson::kArrayType);
  if (!request_body.empty()) {
    w.Key("requestBody");
    w.RawValue(request_body.c_str(), request_body.size(), rapidjson::kObjectType);
  }
  w.Key("responses");
  w.StartObject();
  json::key(w, ok_status);
  w.RawValue(ok_response.c_str(), ok_response.size(), rapidjson::kObjectType);
  errors(w);
  w.EndObject();
  w.EndObject();
}

// A file answer: `Content-Disposition: attachment` with the given media type (docs/API.md).
std::string download_response(const std::string& media, const std::string& description) {
  return R"({"description":")" + description +
         R"(","headers":{"Content-Disposition":{"description":"attachment; filename=…","schema":{"type":"string"}}},"content":{")" +
         media + R"(":{"schema":{"type":"string","format":"binary"}}}})";
}

// The query of an export: the list's filter, sort, search and columns (docs/API.md, "Lists");
// an export is not paged. vCards have no columns.
std::string export_params(bool with_fields) {
  std::string s =
      R"([{"name":"filter","in":"query","required":false,"description":"the list's filter as JSON, see docs/API.md","schema":{"type":"string"}},)"
      R"({"name":"sort","in":"query","required":false,"description":"comma-separated fields, '-' for descending","schema":{"type":"string"}},)"
      R"({"name":"q","in":"query","required":false,"description":"full-text search within the list","schema":{"type":"string"}},)"
      R"({"name":"deleted","in":"query","required":false,"description":"true: the recycle bin instead","schema":{"type":"string","enum":["true","false","1","0"]}})";
  if (with_fields)
    s +=
        R"(,{"name":"fields","in":"query","required":false,"description":"comma-separated columns; default: every readable field",
      "schema" : {
    "type" : "string"
  }
})";
  return s + "]";
}

// POST /{plural}/import: the file is the body (CSV or vCard; Excel is converted to CSV by the
// client, the server has no .xlsx reader).
const char* kImportParams =
    R"([{"name":"mode","in":"query","required":false,"description":"dry_run (default) checks every row and writes nothing but the import run; commit writes the valid rows in batches of 5,000","schema":{"type":"string","enum":["dry_run","commit"],"default":"dry_run"}},)"
    R"({"name":"upsert","in":"query","required":false,"description":"key that makes a matching live record an update: customer_code, external_id, email or another unique text field","schema":{"type":"string"}},)"
    R"({"name":"mapping","in":"query","required":false,"description":"JSON object {\"CSV header\":\"field\"}; \"\" skips a column; \"address.city\", \"annual_revenue.currency\" address and money parts","schema":{"type":"string"}},)"
    R"({"name":"template","in":"query","required":false,"description":"name of a saved import_templates record whose mapping applies; an explicit mapping overrides it column by column",
   "schema" : {
  "type" : "string"
}
},)"
    R"({"name":"encoding","in":"query","required":false,"description":"character set of the file when the Content-Type does not declare it: utf-8, or gb18030; gbk, gb2312 and cp936 are read as GB18030; case-insensitive","schema":{
  "type" : "string"
}
},)"
    R"({"name":"file_name","in":"query","required":false,"description":"the uploaded file's name, kept on the import run","schema":{"type":"string"}}])";

const char* kImportBody =
    R"({"required":true,"description":"the file itself (max 256 MiB, 1,000,000 rows, 500 columns, 1 MiB per field). CSV per RFC 4180 with a header row, delimiter , ; or tab detected, UTF-8 (BOM stripped) or GB18030 when declared (charset=gb18030). vCard 3/4 when the Content-Type is text/vcard. Excel workbooks are read by the client and sent as CSV.",)"
    R"("content":{"text/csv":{"schema":{"type":"string"}},"text/plain":{"schema":{"type":"string"}},"text/vcard":{"schema":{"type":"string"}},"text/x-vcard":{"schema":{"type":"string"}},"text/directory":{"schema":{"type":"string"}},"application/octet-stream":{"schema":{"type":"string","format":"binary"}}}})";

const char* kImportResult =
    R"({"type":"object","properties":{"import_id":{"type":"string","description":"id of the import_runs record, for progress and the report"
},"entity":{"type":"string"},"mode":{"type":"string","enum":["dry_run","commit"]},"rows":{"type":"integer"},"valid":{"type":"integer"},)"
    R"("created":{"type":"integer"},"would_create":{"type":"integer"},"updated":{"type":"integer"},"would_update":{"type":"integer"},"skipped":{"type":"integer"},"skipped_rows":{"type":"array","items":{"type":"integer"}},)"
    R"("errors":{"type":"array","items":{"type":"object","properties":{"row":{"type":"integer"},"field":{"type":["string","null"]},"code":{"type":"string"},"message":{"type":"string"}},"required":["row","field","code","message"]}},)"
    R"("error_count":{"type":"integer"},"errors_truncated":{"type":"boolean"},)"
    R"("warnings":{"type":"array","description":"rows imported with a remark, e.g. a vCard ORG that names no account or several: codes org_no_account, org_ambiguous","items":{"type":"object","properties":{"row":{"type":"integer"},"field":{"type":"string"},"code":{"type":"string"},"message":{"type":"string"}},"required":["row","field","code","message"]}},"warning_count":{"type":"integer"},)"
    R"("columns":{"type":"array","items":{"type":"object","properties":{"column":{"type":"string"},"field":{"type":"string"}},"required":["column","field"]}},)"
    R"("ignored_columns":{"type":"array","items":{"type":"object","properties":{"column":{"type":"string"},"reason":{"type":"string","enum":["unknown","read-only","skipped"]}},"required":["column","reason"]}},)"
    R"("duplicates":{"type":"array","items":{"type":"object","properties":{"row":{"type":"integer"},"id":{"type":"string"},"candidates":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"row":{"type":"integer"},"title":{"type":"string"},"score":{"type":"number"},"reason":{"type":"string"},"field":{"type":"string"}},"required":["title","score","reason","field"]}}},"required":["row","candidates"]}},)"
    R"("duplicate_count":{"type":"integer"},"index_pending":{"type":"boolean","description":"true: every row is durable and readable by id, but the entity's search index (and, after a large load, its list indexes) is still being built in the background; search over the entity says index_pending until it is done, and the import run's index_status goes from building to complete"},"report":{"type":"string","description":"path of the report download"}},)"
    R"("required":["import_id","entity","mode","rows","valid","skipped","skipped_rows","errors","error_count","errors_truncated","warnings","warning_count","columns","ignored_columns","duplicates","duplicate_count","index_pending","report"]})";

// Import and export operations of one entity (routes.cc: /{plural}/import, /{plural}/export.*).
void file_paths(json::Writer& w, const schema::Entity& e) {
  const std::string base = "/api/v1/" + e.plural;
  json::key(w, base + "/import");
  w.StartObject();
  raw_operation(
      w, "post", "import_" + e.plural,
      "Import " + e.label_plural.en + " from a CSV or vCard file (dry run or commit)", e.plural,
      kImportParams, kImportBody, "200",
      R"({"description":"the import summary; row errors and likely duplicates are listed, not refused","content":{"application/json":{"schema":{"$ref":"#/components/schemas/ImportResult"}}}})");
  w.EndObject();
  json::key(w, base + "/export.csv");
  w.StartObject();
  raw_operation(
      w, "get", "export_" + e.plural + "_csv",
      "Export the list of " + e.label_plural.en + " as CSV", e.plural, export_params(true), "",
      "200",
      download_response("text/csv",
                        "CSV (UTF-8 with BOM), one row per record; hidden fields left out. "
                        "Streamed with chunked transfer as the pages are read: a download that "
                        "fails midway ends with a connection reset, not a short file"));
  w.EndObject();
  json::key(w, base + "/export.xlsx");
  w.StartObject();
  raw_operation(
      w, "get", "export_" + e.plural + "_xlsx",
      "Export the list of " + e.label_plural.en + " as an Excel workbook", e.plural,
      export_params(true), "", "200",
      download_response("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        "one sheet, numbers and booleans typed; hidden fields left out; at "
                        "most 1,048,575 rows (413 too_large above)"));
  w.EndObject();
  bool has_contact_data = false;
  for (const auto& f : e.fields)
    if (f.type == FieldType::kPhoneList || f.type == FieldType::kEmailList) has_contact_data = true;
  if (has_contact_data) {
    json::key(w, base + "/export.vcf");
    w.StartObject();
    raw_operation(w, "get", "export_" + e.plural + "_vcf",
                  "Export the list of " + e.label_plural.en + " as vCard 4", e.plural,
                  export_params(false), "", "200",
                  download_response("text/vcard",
                                    "vCard 4 (RFC 6350), one card per record; "
                                    "streamed like the CSV"));
    w.EndObject();
  }
}

}  // namespace

std::string openapi_json(const schema::Registry& registry, const record::ActionRegistry* actions) {
  json::Buffer buf;
  json::Writer w(buf);
  auto entities = registry.all();
  w.StartObject();
  w.Key("openapi");
  w.String("3.1.0");
  w.Key("info");
  w.StartObject();
  w.Key("title");
  w.String("Rapport CRM API");
  w.Key("version");
  w.String("1");
  w.EndObject();
  w.Key("security");
  w.StartArray();
  w.StartObject();
  w.Key("bearer");
  w.StartArray();
  w.EndArray();
  w.EndObject();
  w.StartObject();
  w.Key("session");
  w.StartArray();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.Key("paths");
  w.StartObject();
  for (const auto& e : entities) {
    std::string base = "/api/v1/" + e->plural;
    json::key(w, base);
    w.StartObject();
    operation(w, "get", "list_" + e->plural, "List " + e->label_plural.en, e->plural, "", "200",
              e->name + "_list", false, kListParams);
    operation(w, "post", "create_" + e->name, "Create a " + e->label.en, e->plural,
              e->name + "_input", "201", e->name, false);
    w.EndObject();
    json::key(w, base + "/aggregate");
    w.StartObject();
    operation(w, "get", "aggregate_" + e->plural, "Count " + e->label_plural.en + " by group",
              e->plural, "", "200", "Aggregate", false, kAggregateParams);
    w.EndObject();
    json::key(w, base + "/{id}");
    w.StartObject();
    operation(w, "get", "get_" + e->name, "Read a " + e->label.en, e->plural, "", "200", e->name,
              true);
    operation(w, "patch", "update_" + e->name, "Change a " + e->label.en, e->plural,
              e->name + "_input", "200", e->name, true);
    operation(w, "delete", "delete_" + e->name, "Move a " + e->label.en + " to the recycle bin",
              e->plural, "", "204", "", true);
    w.EndObject();
    json::key(w, base + "/{id}/restore");
    w.StartObject();
    operation(w, "post", "restore_" + e->name, "Restore from the recycle bin", e->plural, "", "200",
              e->name, true);
    w.EndObject();
    json::key(w, base + "/{id}/history");
    w.StartObject();
    operation(w, "get", "history_" + e->name, "Audit trail", e->plural, "", "200", "History", true);
    w.EndObject();
    file_paths(w, *e);
  }
  w.Key("/api/v1/imports/{id}/report.csv");
  w.StartObject();
  raw_operation(
      w, "get", "import_report", "Download an import run's errors and likely duplicates", "imports",
      R"([{"name":"id","in":"path","required":true,"description":"the import_id of the run","schema":{"type":"string"}}])",
      "", "200",
      download_response("text/csv",
                        "CSV (UTF-8 with BOM): row,field,code,message; one line per row error and "
                        "per likely-duplicate candidate (code likely_duplicate), by row"));
  w.EndObject();
  w.Key("/api/v1/search");
  w.StartObject();
  operation(w, "get", "search", "Full-text search over searchable fields", "search", "", "200",
            "SearchResult", false);
  w.EndObject();
  w.Key("/api/v1/auth/login");
  w.StartObject();
  operation(w, "post", "login", "Open a session", "auth", "Login", "200", "Me", false);
  w.EndObject();
  if (actions) action_paths(w, *actions);
  w.EndObject();  // paths

  w.Key("components");
  w.StartObject();
  w.Key("securitySchemes");
  w.StartObject();
  w.Key("bearer");
  w.StartObject();
  w.Key("type");
  w.String("http");
  w.Key("scheme");
  w.String("bearer");
  w.EndObject();
  w.Key("session");
  w.StartObject();
  w.Key("type");
  w.String("apiKey");
  w.Key("in");
  w.String("cookie");
  w.Key("name");
  w.String("rapport_session");
  w.EndObject();
  w.EndObject();
  w.Key("schemas");
  w.StartObject();
  for (const auto& e : entities) {
    for (bool input : {false, true}) {
      json::key(w, input ? e->name + "_input" : e->name);
      w.StartObject();
      w.Key("type");
      w.String("object");
      w.Key("properties");
      w.StartObject();
      for (const auto& f : e->fields) {
        if (input && f.readonly) continue;
        json::key(w, f.name);
        field_schema(w, f);
      }
      w.EndObject();
      if (input) {
        w.Key("additionalProperties");
        w.Bool(false);
      }
      w.EndObject();
    }
    json::key(w, e->name + "_list");
    w.StartObject();
    w.Key("type");
    w.String("object");
    w.Key("properties");
    w.StartObject();
    w.Key("items");
    w.StartObject();
    w.Key("type");
    w.String("array");
    w.Key("items");
    ref(w, e->name);
    w.EndObject();
    w.Key("next_cursor");
    w.StartObject();
    w.Key("type");
    w.StartArray();
    w.String("string");
    w.String("null");
    w.EndArray();
    w.EndObject();
    w.Key("index_pending");
    w.StartObject();
    w.Key("type");
    w.String("boolean");
    w.Key("description");
    w.String(
        "present and true when the list is narrowed by q while the entity's search index is "
        "being built after a large import (records may be missing); absent otherwise");
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  const char* fixed =
      R"({"Problem":{"type":"object","properties":{"type":{"type":"string"},"title":{"type":"string"},"status":{"type":"integer"},"code":{"type":"string"},"detail":{"type":"string"},"field":{"type":"string"}},"required":["type","title","status","code"]},"History":{"type":"object","properties":{"items":{"type":"array","items":{"type":"object"}}}},"SearchResult":{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"entity":{"type":"string"},"id":{"type":"string"},"title":{"type":"string"}}}},"fuzzy":{"type":"boolean","description":"true when no record matched the query and the items are records whose title is similar to it instead: \"did you mean\", on PostgreSQL only; always false on SQLite"},"index_pending":{"type":"boolean","description":"present and true while a searched entity's search index is being built after a large import (its records may be missing); absent otherwise"}},"required":["items","fuzzy"]},"Login":{"type":"object","properties":{"username":{"type":"string"},"password":{"type":"string"}},"required":["username","password"]},"Me":{"type":"object"},"Aggregate":{"type":"object","properties":{"entity":{"type":"string"},"group_by":{"type":"array","items":{"type":"string"}},"bucket":{"type":["string","null"],"enum":["day","month","year",null]},"groups":{"type":"array","items":{"type":"object","properties":{"values":{"type":"array","items":{"type":["string","integer","number","boolean","null"]}},"count":{"type":"integer"}},"required":["values","count"]}},"total":{"type":"integer"},"truncated":{"type":"boolean"}},"required":["entity","group_by","bucket","groups","total","truncated"]}})";
  std::string s(fixed);
  // merge the fixed schemas into the open object
  s = s.substr(1, s.size() - 2);
  s += std::string(",\"ImportResult\":") + kImportResult;
  w.EndObject();
  w.EndObject();
  w.EndObject();
  std::string out(buf.GetString(), buf.GetSize());
  // insert fixed schemas before the closing of "schemas": the document ends with "}}}"
  out.insert(out.size() - 3, "," + s);
  return out;
}

}  // namespace rapport::api
