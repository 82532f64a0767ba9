// A handle on the thread's shared read transaction (ReadRouting::share_reads), for the backends'
// read(): forwards to it, leaves it open when committed or destroyed (the routing's scope ends
// it), and takes it out of the routing when a statement fails, so that later reads begin a
// fresh one.
#pragma once

#include <memory>

#include "storage/store.h"

namespace rapport::storage {

class SharedReadTx final : public Tx {
 public:
  SharedReadTx(std::shared_ptr<Tx> tx, ReadRouting* routing)
      : tx_(std::move(tx)), routing_(routing) {}

  Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) override {
    return checked(tx_->query(sql, params));
  }
  Result<std::vector<Rows>> query_many(std::span<const Query> queries) override {
    return checked(tx_->query_many(queries));
  }
  void plan_once(bool on) override { tx_->plan_once(on); }
  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    return checked(tx_->exec(sql, params));
  }
  Status each_row(std::string_view sql, std::span<const SqlValue> params,
                  const RowVisitor& visit) override {
    return checked(tx_->each_row(sql, params, visit));
  }
  Status commit() override { return {}; }  // read-only: nothing to make durable
  std::optional<std::uint64_t> change_stamp() const override { return tx_->change_stamp(); }
  Status fts_put(std::string_view entity, std::int64_t id, std::string_view text,
                 const SqlValue& account_id) override {
    return checked(tx_->fts_put(entity, id, text, account_id));
  }
  Status fts_clear(std::string_view entity) override { return checked(tx_->fts_clear(entity)); }
  Status fts_delete(std::string_view entity, std::int64_t id) override {
    return checked(tx_->fts_delete(entity, id));
  }
  Status fts_put_many(std::string_view entity, std::span<const FtsRow> rows, bool fresh) override {
    return checked(tx_->fts_put_many(entity, rows, fresh));
  }
  Status fts_load(std::string_view entity, std::span<const FtsRow> rows) override {
    return checked(tx_->fts_load(entity, rows));
  }
  Status fts_load_finish(std::string_view entity) override {
    return checked(tx_->fts_load_finish(entity));
  }
  Status fts_put_lists(std::string_view entity, std::span<const FtsRow> rows) override {
    return checked(tx_->fts_put_lists(entity, rows));
  }
  Result<std::optional<std::vector<std::string>>> table_columns(std::string_view table) override {
    return checked(tx_->table_columns(table));
  }
  Result<std::vector<std::int64_t>> fts_search(std::string_view entity, std::string_view query,
                                               int limit) override {
    return checked(tx_->fts_search(entity, query, limit));
  }
  Result<std::vector<std::int64_t>> fts_search_words(std::string_view entity, std::string_view text,
                                                     int limit) override {
    return checked(tx_->fts_search_words(entity, text, limit));
  }

 private:
  template <typename T>
  T checked(T r) {
    if (!r.ok() && routing_->shared_read == tx_) routing_->shared_read.reset();
    return r;
  }

  std::shared_ptr<Tx> tx_;
  ReadRouting* routing_;
};

}  // namespace rapport::storage
