// Duplicate detection and merge over the store (DOMAIN §9), for every entity a module gives a
// dedupe::Profile (HookRegistry::set_dedupe):
// - the match index: normalised emails, company domains, tax ids and addresses of each live
//   record in match_index(key, entity, record_id), beside the phone index, written in the
//   record's transaction — candidate search is a handful of indexed reads, never a scan;
// - candidate search on create (warn, or block with kDuplicate), for a record about to be
//   created (check) and for the review queue (scan → duplicate_candidate records);
// - merge: survivor's non-empty values win, lists united, ranked fields (consent, relationship
//   level) take the winner, every reference to the others in any entity's metadata moved to the
//   survivor, the others soft-deleted with merged_into; one transaction, audited, a snapshot of
//   every touched row in merge_log so that undo restores them exactly.
// A stateless façade over RecordService (its friend); as thread-safe as the service.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "record/actions.h"
#include "record/dedupe.h"
#include "record/service.h"

namespace rapport::record {

// A key shared by this many records (a hotline, a provider's domain) is not used as an anchor;
// a company's persons are read up to kMaxCompanyHits.
constexpr int kMaxAnchorHits = 100;
constexpr int kMaxCompanyHits = 1000;
// Candidates reported for one record, best first.
constexpr int kMaxCandidates = 20;
// Records a scan call reads per entity (default and most).
constexpr int kScanBatch = 5000;
constexpr int kMaxScanBatch = 50000;
// Records a scheduled scan reads per transaction, and how far before the last successful run's
// start it looks again for changed records (writes that committed during that run).
constexpr int kBackgroundScanBatch = 1000;
constexpr Millis kScanOverlapMs = 60'000;
// Store::try_job_lock key of the scheduled scan; job_run name of its last run.
constexpr std::int32_t kScanJobLock = 1;
constexpr const char* kScanJobName = "duplicate_scan";
// job_run name of the scheduled scan under way (its progress, refreshed after every batch), and
// how old that refresh may be before the run is taken for dead (the server stopped during it).
constexpr const char* kScanProgressName = "duplicate_scan.running";
constexpr Millis kScanProgressStaleMs = 10 * 60'000;
// Records merged into one survivor in one call.
constexpr int kMaxMergeOthers = 20;
// The review queue's entity (declared by the accounts module).
constexpr const char* kCandidateEntity = "duplicate_candidate";

class Deduper {
 public:
  explicit Deduper(RecordService& records) : rs_(records) {}

  // DDL of the record layer's migration 4: match_index and merge_log.
  static std::vector<std::string> migration_statements();

  // Match index of one live record after a write / removal; rebuild of the whole index at
  // start-up when its format version changed (also fills it on an old database).
  Status index(storage::Tx& tx, const schema::Entity& e, std::int64_t id,
               const std::vector<storage::SqlValue>& row, bool fresh);
  Status unindex(storage::Tx& tx, const schema::Entity& e, std::int64_t id);
  // The match_index keys of one record (stored row), none when the entity has no profile; what
  // index() writes (bulk inserts write them many rows per statement).
  std::vector<std::string> index_keys_of(const schema::Entity& e,
                                         const std::vector<storage::SqlValue>& row) const;
  Status rebuild_index();  // RecordOptions::rebuild_batch records per transaction

  // Inside create's transaction, after the insert: likely duplicates of the new record that the
  // caller may read; in block mode kDuplicate (naming the matching field) when any record scores
  // ≥ kDuplicateScore.
  Result<std::vector<DuplicateCandidate>> on_create(storage::Tx& tx, const access::Principal& p,
                                                    const schema::Entity& e,
                                                    const dedupe::Profile& profile, std::int64_t id,
                                                    const std::vector<storage::SqlValue>& row,
                                                    DedupeMode mode);
  // The same with the new record's facts already known (create computes them, and the match
  // index keys from them, before it takes the write transaction).
  Result<std::vector<DuplicateCandidate>> on_create(storage::Tx& tx, const access::Principal& p,
                                                    const schema::Entity& e,
                                                    const dedupe::Profile& profile, std::int64_t id,
                                                    const dedupe::Facts& facts, DedupeMode mode);
  // on_create in warn mode, in two steps: the indexed reads inside create's transaction
  // (candidate ids by anchor and their rows), the scoring — normalising and comparing the
  // candidates, most of the CPU — after it, so the writer that every create waits for is not
  // held for it. The answer is the one on_create gives.
  using CandidateRows =
      std::vector<std::pair<std::int64_t, std::optional<std::vector<storage::SqlValue>>>>;
  Result<CandidateRows> on_create_reads(storage::Tx& tx, const schema::Entity& e,
                                        const dedupe::Profile& profile, std::int64_t id,
                                        const dedupe::Facts& facts);
  std::vector<DuplicateCandidate> on_create_score(const access::Principal& p,
                                                  const schema::Entity& e,
                                                  const dedupe::Profile& profile,
                                                  const dedupe::Facts& facts, CandidateRows rows);
  // The facts of one record (stored row, as select_list yields it) that matching compares.
  // `e164`: the record's numbers from the phone index, so that they are not parsed again.
  dedupe::Facts facts_of_row(const dedupe::Profile& profile, const schema::Entity& e,
                             const std::vector<storage::SqlValue>& row,
                             const std::vector<std::string>* e164 = nullptr) const;
  // Inside an import batch's transaction, after its records were created (`ids`, stored
  // `rows`): per record, its likely duplicates (score ≥ dedupe::kReviewScore, best first, at
  // most kMaxCandidates) among the live records `p` may read — existing ones and the batch's
  // others (a pair within the batch is reported once, on the later record). Empty lists for an
  // entity without a profile.
  // `cache` carries the facts of records read (and of the batch's records) from one batch to
  // the next of the same import: a candidate is read and normalised once per import, not once
  // per batch. The caller bounds it (clear() when large) and erases records it updates; facts
  // of a record changed meanwhile by someone else may be stale, which only shifts a reported
  // score (the candidates are advice, not a refusal).
  struct CachedFacts {
    dedupe::Facts facts;
    std::int64_t owner = 0, team = 0;
  };
  using FactsCache = std::unordered_map<std::int64_t, CachedFacts>;
  // `facts`: the batch's facts when the caller has them (RecordService::BulkInsert::facts;
  // computed here where missing or empty). Reads the candidates of the whole batch with one
  // query per anchor kind and a few hundred keys, and scores on parallel::for_ranges.
  Result<std::vector<std::vector<DuplicateCandidate>>> on_import(
      storage::Tx& tx, const access::Principal& p, const schema::Entity& e,
      const std::vector<std::int64_t>& ids,
      const std::vector<const std::vector<storage::SqlValue>*>& rows,
      std::vector<std::optional<dedupe::Facts>> facts, FactsCache& cache);
  // Likely duplicates of a record about to be created (`body` as for create), readable ones.
  // Answers {"candidates":[{"id","title","score","reason","field"}]}.
  Result<std::string> check(const access::Principal& p, const schema::Entity& e,
                            std::string_view body);
  // Administrators: reads up to `limit` records per entity (after `after`) and adds the pairs
  // scoring ≥ kReviewScore to the review queue (pairs already queued are left as they are).
  // `body`: {"entity"?, "after"?, "limit"?}.
  Result<std::string> scan(const access::Principal& p, std::string_view body);
  // One bounded step of a scan: up to `limit` live records of `e` with id > `after` (and, when
  // `since` is not empty, updated_at >= since, an ISO 8601 time) read in one read transaction,
  // then the new pairs queued (owned by `p`) in one short write transaction.
  struct ScanBatch {
    int scanned = 0, pairs = 0, added = 0;
    std::int64_t next_after = 0;  // 0 at the end of the table
  };
  Result<ScanBatch> scan_batch(const access::Principal& p, const schema::Entity& e,
                               std::int64_t after, int limit, const std::string& since = {});

  // The scheduled scan (rapport serve --scan-every): when no other process on the database
  // runs it (Store::try_job_lock), scans every entity with a profile in batches of `batch`
  // records — all live records the first time, afterwards those changed since the last
  // successful run began (less kScanOverlapMs) — and records the run in job_run. nullopt when
  // another process holds the lock. A failed batch ends the run; the run is recorded with the
  // error and the next run starts from the last successful one again.
  struct ScanRun {
    Millis started = 0, finished = 0;
    std::int64_t scanned = 0, pairs = 0, added = 0;
    std::optional<Millis> since;  // changed records from this time; nullopt: all records
    std::string error;            // empty when it succeeded
    Millis ok_started = 0;        // start of the last successful run (this one if it succeeded)
  };
  // `cancel`, when set between batches, ends the run with the error "interrupted". With
  // `every_ms`, a run recorded less than that long ago (by any server, seen once the lock is
  // held) means nothing is due: nullopt, as when another server holds the lock.
  Result<std::optional<ScanRun>> scheduled_scan(const access::Principal& p,
                                                int batch = kBackgroundScanBatch,
                                                const std::atomic<bool>* cancel = nullptr,
                                                Millis every_ms = 0);
  // The last recorded scheduled run (nullopt before the first).
  Result<std::optional<ScanRun>> last_scheduled_scan();
  // The scheduled run under way, as its last progress record says (`finished` is the time of
  // that record): written when a run starts and after every batch, removed when it is recorded.
  // nullopt when none runs, or when the record is older than kScanProgressStaleMs.
  Status record_scan_progress(const ScanRun& run);
  Result<std::optional<ScanRun>> running_scheduled_scan();
  Result<std::optional<ScanRun>> read_scan_run(std::string_view name);
  // GET /duplicates/scan (administrators): {"last_run":{…}|null,"running":{…}|null}.
  Result<std::string> scan_status(const access::Principal& p);
  // Merges `others` (or, with no survivor, the listed records into the oldest) — see above.
  // `body`: {"others":[id…]} with a survivor, {"records":[id…]} without.
  Result<std::string> merge(const access::Principal& p, const schema::Entity& e,
                            std::optional<std::int64_t> survivor, std::string_view body);
  // Restores every row a merge touched; kConflict when one changed since or it was undone.
  Result<std::string> undo(const access::Principal& p, std::int64_t merge_id);
  // The live record a merged record's id now resolves to (following merges of merges), when
  // `id` is a merged record of an entity the caller may read.
  Result<std::optional<std::int64_t>> merged_into(const access::Principal& p,
                                                  const schema::Entity& e, std::int64_t id);
  // Entities with a dedupe profile; the current snapshot of one entity.
  std::vector<std::shared_ptr<const schema::Entity>> entities() const;
  std::shared_ptr<const schema::Entity> entity(std::string_view name) const;

 private:
  // find() in two steps: the reads (rows of the records sharing an anchor, live ones; records
  // in `cache` without their row) and the scoring of what they read.
  Result<CandidateRows> read_candidates(storage::Tx& tx, const schema::Entity& e,
                                        const dedupe::Profile& profile, const dedupe::Facts& f,
                                        std::int64_t self, const FactsCache* cache);
  std::vector<DuplicateCandidate> score_candidates(const access::Principal* viewer,
                                                   const schema::Entity& e,
                                                   const dedupe::Profile& profile,
                                                   const dedupe::Facts& f, CandidateRows read,
                                                   FactsCache* cache);
  // Scored candidates of `f` among live records of `e` (not `self`); only those `viewer` may
  // read unless it is null. `cache` keeps the facts of records read (a scan reads each once).
  Result<std::vector<DuplicateCandidate>> find(storage::Tx& tx, const access::Principal* viewer,
                                               const schema::Entity& e,
                                               const dedupe::Profile& profile,
                                               const dedupe::Facts& f, std::int64_t self,
                                               FactsCache* cache = nullptr);

  RecordService& rs_;
};

// Mounts the duplicate endpoints for every entity with a dedupe profile:
// POST /{plural}/duplicates/check, POST /{plural}/{id}/merge, POST /{plural}/merge,
// POST /duplicates/scan, POST /merges/{merge_id}/undo.
void register_duplicate_actions(ActionRegistry& actions, RecordService& records);

}  // namespace rapport::record
