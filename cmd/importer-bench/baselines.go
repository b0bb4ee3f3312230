package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/source"
	"github.com/propexo-importer/importer/jobs"
)

// bareAsynqFloor is what Asynq alone costs per row: rows no-op submit
// tasks, each queuing one no-op check delayed by checkDelay (rounded up to
// the second, as the importer's checks are), on the
// importer's queues and server settings, with as many servers and slots as
// the importer's workers. It returns the time from the first enqueue to the
// last check.
func bareAsynqFloor(rdb *redis.Client, rows, servers, concurrency int, checkDelay time.Duration) (time.Duration, error) {
	client := asynq.NewClientFromRedisClient(rdb)
	var checked atomic.Int64
	finished := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("floor:submit", func(ctx context.Context, t *asynq.Task) error {
		// Delayed as the importer delays its checks: Asynq keeps whole
		// seconds, and a check must not run before its time.
		_, err := client.EnqueueContext(ctx, asynq.NewTask("floor:check", t.Payload()),
			asynq.TaskID("floor-check:"+string(t.Payload())), asynq.Queue(jobs.QueueCheck), asynq.ProcessAt(jobs.CheckAt(time.Now(), checkDelay)))
		return err
	})
	mux.HandleFunc("floor:check", func(ctx context.Context, t *asynq.Task) error {
		if checked.Add(1) == int64(rows) {
			close(finished)
		}
		return nil
	})
	for range servers {
		cfg := jobs.ServerConfig(concurrency, nil)
		cfg.LogLevel = asynq.FatalLevel
		srv := asynq.NewServerFromRedisClient(rdb, cfg)
		if err := srv.Start(mux); err != nil {
			return 0, err
		}
		defer srv.Shutdown()
	}
	began := time.Now()
	// Enqueued as the importer's feed does: several at once.
	var wg sync.WaitGroup
	var enqErr atomic.Value
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(rows) {
					return
				}
				id := strconv.FormatInt(n, 10)
				if _, err := client.Enqueue(asynq.NewTask("floor:submit", []byte(id)), asynq.TaskID("floor-submit:"+id), asynq.Queue(jobs.QueueSubmit)); err != nil {
					enqErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := enqErr.Load().(error); err != nil {
		return 0, err
	}
	select {
	case <-finished:
		return time.Since(began), nil
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("the floor's %d rows did not finish within 10 minutes (%d did)", rows, checked.Load())
	}
}

// blockingImport is the straightforward importer: goroutines that each
// POST a row and then poll its job once a second, in the same goroutine,
// until it resolves. It returns how long the file took.
func blockingImport(file, apiURL string, goroutines int) (time.Duration, error) {
	opts, err := importer.Options{}.Normalize()
	if err != nil {
		return 0, err
	}
	client, err := propexo.New(propexo.Config{BaseURL: apiURL, APIKey: apiKey})
	if err != nil {
		return 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rd, err := source.Open(f, "csv")
	if err != nil {
		return 0, err
	}
	began := time.Now()
	work := make(chan importer.Resident)
	var failed atomic.Value
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for r := range work {
				job, err := client.CreateResident(ctx, opts.Vendor, r)
				if err != nil {
					failed.Store(err)
					continue
				}
				for {
					time.Sleep(time.Second)
					st, err := client.WriteStatus(ctx, job)
					if err != nil {
						failed.Store(err)
						break
					}
					if st.State != importer.WritePending {
						break
					}
				}
			}
		}()
	}
	v := importer.NewValidator(opts)
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			close(work)
			return 0, err
		}
		if r, problems, _ := v.Check(row); len(problems) == 0 {
			work <- r
		}
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, fmt.Errorf("the blocking baseline failed: %w", err)
	}
	return time.Since(began), nil
}
