// Package store keeps the state of imports in Redis: the import's record, each
// row's state (queued, sending, job id and status-check number), outcomes and
// their counters, the original records for the report, and request counters.
//
// All keys of one import share a hash tag ("imp:{ID}:..."), so an import
// lives on one Redis Cluster slot and its Lua scripts stay atomic.
package store

import (
	"github.com/redis/go-redis/v9"
)

// Store keeps the state of imports in Redis; it is the jobs.Store of the
// lifecycle (cmd checks so at compile time).
type Store struct {
	rdb      redis.UniversalClient
	replicas replicas
}

// New returns a Store on a Redis client.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// importsKey is a sorted set of every import id by creation time.
const importsKey = "importer:imports"

// epochKey names this Redis's life as the importer knows it: it is made
// once, by the first importer process that connects, and is gone only when
// Redis loses its data (restarted without persistence, or flushed).
const epochKey = "importer:epoch"

type keys struct{ meta, state, results, input, counts, stats, snapshot, plan, ceiling string }

func keysOf(id string) keys {
	p := "imp:{" + id + "}:"
	return keys{meta: p + "meta", state: p + "state", results: p + "results", input: p + "input", counts: p + "counts", stats: p + "stats",
		snapshot: p + "snapshot", plan: p + "plan", ceiling: p + "ceiling"}
}

// rowKeys are the keys of an import that hold personal data, which expire
// after its retention once it is finished.
func (k keys) rowKeys() []string {
	return []string{k.input, k.results, k.state, k.snapshot, k.plan, k.ceiling}
}

// Row state encodings in the state hash. A row gets an entry when the feed
// queues its submit ("q"), or when 'importer retry' takes its outcome back,
// and loses it when it is resolved; a row with no entry is resolved or not
// fed yet.
//
//	q                 queued: its create is to be sent
//	r                 its resident is to be looked up, then created if
//	                  not found (a row in doubt that 'retry --in-doubt' took)
//	w:<job>           to be retried through retry-write of the failed job
//	s[:<n>][|w:<job>] a create (or the retry-write of job) was being sent,
//	                  and may have reached the API; n lookups found nothing
//	j:<n>:<job>       following the write job, status check n scheduled
//	                  (0: none is, e.g. the import stopped)
const (
	stateQueued  = "q"
	stateLookUp  = "r"
	stateSending = "s"
	retryPrefix  = "w:" // w:<job id>
	jobPrefix    = "j:" // j:<check number>:<job id>
)
