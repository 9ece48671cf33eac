package audit

import (
	"context"
	"sync"

	"github.com/finchconnect/finchconnect"
)

// maxBatch bounds how many records one store write carries.
const maxBatch = 256

// Queue writes audit records in the background, so that a request does not
// wait for its record's store write, and in batches: the writer takes every
// record that queued while its previous write ran (at most 256) and writes
// them with [Log.RecordAll], one round trip and one commit for all of them.
// A lone record is never delayed. Records are never dropped: when the queue
// is full, or closed, Add writes the record in the caller's time.
type Queue struct {
	log   *Log
	onErr func(error, []finchconnect.AuditRecord)
	ch    chan finchconnect.AuditRecord
	done  chan struct{}

	// mu orders Add's sends before Close's close of ch: Adds hold it
	// shared (a send to ch never blocks, so they hold it briefly) and Close
	// holds it exclusively to set closed and close ch.
	mu     sync.RWMutex
	closed bool
}

// NewQueue starts a queue of up to size records in front of l. onErr, if
// not nil, is told of every write that failed and the records it held (they
// are not retried). Close must be called.
func NewQueue(l *Log, size int, onErr func(error, []finchconnect.AuditRecord)) *Queue {
	q := &Queue{log: l, onErr: onErr, ch: make(chan finchconnect.AuditRecord, size), done: make(chan struct{})}
	go q.run()
	return q
}

// Add queues r. After Close, which a request that outlives the server's
// graceful shutdown may see, Add writes r in the caller's time.
func (q *Queue) Add(ctx context.Context, r finchconnect.AuditRecord) {
	q.mu.RLock()
	if !q.closed {
		select {
		case q.ch <- r:
			q.mu.RUnlock()
			return
		default:
		}
	}
	q.mu.RUnlock()
	q.write(context.WithoutCancel(ctx), []finchconnect.AuditRecord{r})
}

// Close writes the records still queued and returns when they are written.
// Calling it again is harmless.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *Queue) run() {
	defer close(q.done)
	batch := make([]finchconnect.AuditRecord, 0, maxBatch)
	for r := range q.ch {
		batch = append(batch[:0], r)
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-q.ch:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		q.write(context.Background(), batch)
	}
}

func (q *Queue) write(ctx context.Context, rs []finchconnect.AuditRecord) {
	if err := q.log.RecordAll(ctx, rs); err != nil && q.onErr != nil {
		q.onErr(err, rs)
	}
}
