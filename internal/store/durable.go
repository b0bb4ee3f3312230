package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// Redis replicates asynchronously: a write the primary acknowledged can be
// lost when Sentinel (or a cluster) promotes a replica that had not received
// it yet. For most of an import's state that costs a repeated step (a status
// check read again, an outcome recorded again). Two marks are different: "this
// row's create is being sent" and "this row follows job J". Lost after the
// create left, the row would look unsent and be created twice. So those two
// writes are followed by WAIT on the same connection, and the create is sent
// only once a replica has the mark. Sentinel promotes the replica with the
// most data, so one confirmation is enough.
//
// A Redis without replicas (INFO says so) is not waited for: there is no
// replica to promote.

// ReplicaWait is how long a mark waits for a replica's confirmation.
const ReplicaWait = time.Second

// replicaCheckEvery is how long the number of replicas a primary reported is
// trusted: a replica that joins is waited for from then on.
const replicaCheckEvery = 2 * time.Second

// replicas remembers how many replicas each primary had.
type replicas struct {
	mu    sync.Mutex
	nodes map[string]replicaCount
}

type replicaCount struct {
	n  int
	at time.Time
}

// nodeOf returns a client of the primary that holds key: the client itself,
// or the cluster node that serves the key's slot. WAIT must follow the write
// on the same connection, so both go in one pipeline on that node.
func (s *Store) nodeOf(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, nil
}

// replicaCount returns how many replicas the node's primary has connected.
// An answer it cannot read counts as none (an in-process Redis has no
// replication section).
func (s *Store) replicaCount(ctx context.Context, node *redis.Client) int {
	addr := node.Options().Addr
	s.replicas.mu.Lock()
	c, ok := s.replicas.nodes[addr]
	s.replicas.mu.Unlock()
	if ok && time.Since(c.at) < replicaCheckEvery {
		return c.n
	}
	info, err := node.Info(ctx, "replication").Result()
	n := 0
	if err == nil {
		n = connectedReplicas(info)
	}
	s.replicas.mu.Lock()
	if s.replicas.nodes == nil {
		s.replicas.nodes = map[string]replicaCount{}
	}
	s.replicas.nodes[addr] = replicaCount{n: n, at: time.Now()}
	s.replicas.mu.Unlock()
	return n
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// replicated runs write in a pipeline on the primary holding key and, when
// that primary has replicas, waits up to ReplicaWait for one of them to
// confirm it. Each command's own error is read by the caller; replicated
// returns importer.ErrNotReplicated when no replica confirmed in time, or
// the error of reaching the node.
func (s *Store) replicated(ctx context.Context, key string, write func(redis.Pipeliner)) error {
	node, err := s.nodeOf(ctx, key)
	if err != nil {
		return err
	}
	if node == nil { // a client kind without WAIT: written as it is
		pipe := s.rdb.Pipeline()
		write(pipe)
		_, _ = pipe.Exec(ctx) // errors are read per command
		return nil
	}
	pipe := node.Pipeline()
	write(pipe)
	var wait *redis.Cmd
	if s.replicaCount(ctx, node) > 0 {
		wait = pipe.Do(ctx, "WAIT", 1, ReplicaWait.Milliseconds())
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	if wait == nil {
		return nil
	}
	switch acked, err := wait.Int(); {
	case err != nil:
		return err
	case acked < 1:
		return importer.ErrNotReplicated
	}
	return nil
}

// Lineage names the history of the Redis primaries the importer writes to:
// each primary's replication id, which changes when a replica is promoted
// (a failover) or a primary restarts. For a cluster it names every
// primary's. It is "" where Redis does not tell (an in-process Redis).
func (s *Store) Lineage(ctx context.Context) (string, error) {
	replid := func(node *redis.Client) (string, error) {
		info, err := node.Info(ctx, "replication").Result()
		if err != nil {
			return "", err
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_replid:"); ok {
				return v, nil
			}
		}
		return "", nil
	}
	switch c := s.rdb.(type) {
	case *redis.Client:
		return replid(c)
	case *redis.ClusterClient:
		var mu sync.Mutex
		var ids []string
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			id, err := replid(node)
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			return err
		})
		slices.Sort(ids)
		return strings.Join(ids, ","), err
	}
	return "", nil
}

// RowsInFlight returns the rows of an import that are queued, being sent or
// followed, with their states.
func (s *Store) RowsInFlight(ctx context.Context, id string) ([]int, []importer.RowState, error) {
	all, err := s.rdb.HGetAll(ctx, keysOf(id).state).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("error reading the rows in flight of import %s: %w", id, err)
	}
	rows := make([]int, 0, len(all))
	for field := range all {
		if n, err := strconv.Atoi(field); err == nil {
			rows = append(rows, n)
		}
	}
	slices.Sort(rows)
	states := make([]importer.RowState, len(rows))
	for i, r := range rows {
		states[i] = parseState(all[strconv.Itoa(r)])
	}
	return rows, states, nil
}
