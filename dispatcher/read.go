package dispatcher

import (
	"context"
	"fmt"
	"io"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// reader is the first stage: it streams rows into chunks, skipping the
// rows a checkpoint covers and checking the last of them is unchanged.
type reader struct {
	free chan *chunk // applied chunks, for the reader to reuse
}

const chunkRows = 256

// rowRec is one row as it travels the pipeline.
type rowRec struct {
	n, line int
	err     error
	raw     string            // the address field
	has     bool              // the row has the address field
	fields  map[string]string // the template's fields, when personalised

	// Set by the workers.
	rowHash    uint64 // hash of raw, for checkpoints
	reason     string // why the row is refused before dedupe
	addr       string
	hash       uint64 // hash of addr
	suppressed bool
	renderErr  error
	content    *campaigns.Content
	tzRaw      string // schedule.timezone_column's value
	tz         string // the recipient's zone for the send window ("" = the window's)
	tzDefault  bool   // the zone fell back to the window's
}

type chunk struct {
	rows []rowRec
	eof  bool
	err  error
	done chan struct{}
}

// read streams rows into chunks: every chunk goes to the workers and, in
// order, to the main loop.
func (r *run) read(ctx context.Context, src recipients.Source, jobs, ordered chan<- *chunk) {
	defer close(ordered)
	defer close(jobs)
	send := func(c *chunk, work bool) bool {
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		if !work {
			close(c.done)
			return true
		}
		select {
		case jobs <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	newChunk := func() *chunk {
		select {
		case c := <-r.reader.free:
			c.rows, c.eof, c.err, c.done = c.rows[:0], false, nil, make(chan struct{})
			return c
		default:
			return &chunk{rows: make([]rowRec, 0, chunkRows), done: make(chan struct{})}
		}
	}
	cur := newChunk()
	verified := !r.ckpt.fast || r.ckpt.ck.Row == 0
	for {
		row, err := src.Next()
		if row.N > 0 {
			if r.ckpt.fast && row.N <= r.ckpt.ck.Row {
				if row.N == r.ckpt.ck.Row {
					if addrHash(row.Fields[r.pf.addrField]) != r.ckpt.ck.RowHash {
						send(&chunk{err: r.changed(row.N), done: make(chan struct{})}, false)
						return
					}
					verified = true
				}
			} else {
				if !verified {
					send(&chunk{err: r.changed(r.ckpt.ck.Row), done: make(chan struct{})}, false)
					return
				}
				cur.rows = cur.rows[:len(cur.rows)+1]
				x := &cur.rows[len(cur.rows)-1]
				m := x.fields // a reused chunk's map
				*x = rowRec{n: row.N, line: row.Line, err: row.Err}
				x.raw, x.has = row.Fields[r.pf.addrField]
				if r.zones.column != "" {
					x.tzRaw = row.Fields[r.zones.column]
				}
				if r.personal && row.Fields != nil {
					if m == nil {
						m = make(map[string]string, len(r.needed))
					}
					clear(m)
					for _, f := range r.needed {
						if v, ok := row.Fields[f]; ok {
							m[f] = v
						}
					}
					x.fields = m
				}
			}
		}
		if err == io.EOF {
			if !verified {
				cur.err = r.changed(r.ckpt.ck.Row)
			}
			cur.eof = true
			send(cur, cur.err == nil)
			return
		}
		if err != nil {
			cur.err = fmt.Errorf("dispatch %s: read recipients: %w", r.spec.ID, err)
			send(cur, false)
			return
		}
		if len(cur.rows) == chunkRows {
			if !send(cur, true) {
				return
			}
			cur = newChunk()
		}
	}
}

func (r *run) changed(row int) error {
	return fmt.Errorf("dispatch %s: %w (row %d is not what it was); dispatch the new file under a new campaign id (--id), or restore the old file",
		r.spec.ID, ErrFileChanged, row)
}
