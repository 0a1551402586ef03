package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A detached dispatch uploads its recipient file to Redis, beside the
// campaign and under its hash tag, so any worker can expand it: an index
// (fanout:{id}:src) and the file in chunks of uploadChunk bytes, each
// gzip-compressed on its own (fanout:{id}:src:<n>). The suppressed
// addresses' hashes go to fanout:{id}:sup. DeleteUpload removes all of
// them once the expansion is done (keys.go).

// uploadChunk is the raw size of one uploaded chunk.
const uploadChunk = 1 << 20

// Upload writes a recipient file to Redis in compressed chunks. Get one
// from NewUpload, write it like a file, then Close; nothing is usable
// before Close stores the index. It is not safe for concurrent use.
type Upload struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	id    string
	buf   bytes.Buffer
	n     int
	size  int64
	zbuf  bytes.Buffer
	zw    *gzip.Writer
	meta  map[string]any
	err   error
	wrote bool
}

// NewUpload starts uploading the recipient file of campaign id. meta is
// stored with the index (format, delimiter, options) and comes back from
// OpenUpload.
func (s *Store) NewUpload(ctx context.Context, id string, meta map[string]any) *Upload {
	u := &Upload{ctx: ctx, rdb: s.rdb, id: id, meta: meta}
	u.zw, _ = gzip.NewWriterLevel(&u.zbuf, gzip.BestSpeed)
	return u
}

// Write buffers p and stores every full chunk.
func (u *Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if !u.wrote {
		u.wrote = true
		// A re-upload replaces an earlier, unfinished one.
		if err := u.rdb.Del(u.ctx, srcKey(u.id)).Err(); err != nil {
			u.err = fmt.Errorf("upload recipients of %s: %w", u.id, err)
			return 0, u.err
		}
	}
	written := 0
	for len(p) > 0 {
		k := min(len(p), uploadChunk-u.buf.Len())
		u.buf.Write(p[:k])
		p = p[k:]
		written += k
		if u.buf.Len() == uploadChunk {
			if err := u.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (u *Upload) flush() error {
	if u.buf.Len() == 0 {
		return nil
	}
	u.zbuf.Reset()
	u.zw.Reset(&u.zbuf)
	u.zw.Write(u.buf.Bytes()) //nolint:errcheck // gzip.Writer keeps a write error and Close, checked below, returns it
	if err := u.zw.Close(); err != nil {
		u.err = err
		return err
	}
	if err := u.rdb.Set(u.ctx, chunkKey(u.id, u.n), u.zbuf.Bytes(), 0).Err(); err != nil {
		u.err = fmt.Errorf("upload recipients of %s: chunk %d: %w", u.id, u.n, err)
		return u.err
	}
	u.size += int64(u.buf.Len())
	u.n++
	u.buf.Reset()
	return nil
}

// Close stores the last chunk and the index.
func (u *Upload) Close() error {
	if u.err != nil {
		return u.err
	}
	if err := u.flush(); err != nil {
		return err
	}
	fields := map[string]any{"chunks": u.n, "bytes": u.size}
	for k, v := range u.meta {
		fields[k] = v
	}
	if err := u.rdb.HSet(u.ctx, srcKey(u.id), fields).Err(); err != nil {
		return fmt.Errorf("upload recipients of %s: %w", u.id, err)
	}
	return nil
}

// Size is the number of bytes uploaded so far.
func (u *Upload) Size() int64 { return u.size + int64(u.buf.Len()) }

// UploadReader reads an uploaded file back, one chunk in memory at a time.
// Get one from OpenUpload.
type UploadReader struct {
	ctx    context.Context
	rdb    redis.UniversalClient
	id     string
	chunks int
	next   int
	cur    *bytes.Reader
}

// ErrNoUpload is returned when a detached campaign's file is not in Redis.
var ErrNoUpload = errors.New("recipient file not uploaded")

// OpenUpload opens the recipient file uploaded for campaign id, and
// returns it with the meta stored by NewUpload (as strings). It returns
// ErrNoUpload when there is none (never uploaded, or deleted).
func (s *Store) OpenUpload(ctx context.Context, id string) (*UploadReader, map[string]string, error) {
	meta, err := s.rdb.HGetAll(ctx, srcKey(id)).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read upload of %s: %w", id, err)
	}
	if len(meta) == 0 {
		return nil, nil, fmt.Errorf("campaign %s: %w", id, ErrNoUpload)
	}
	n, _ := strconv.Atoi(meta["chunks"])
	return &UploadReader{ctx: ctx, rdb: s.rdb, id: id, chunks: n, cur: bytes.NewReader(nil)}, meta, nil
}

// Chunks is the number of chunks the upload is stored in; pass it to
// DeleteUpload.
func (r *UploadReader) Chunks() int { return r.chunks }

// Read reads the file, fetching and decompressing one chunk at a time.
func (r *UploadReader) Read(p []byte) (int, error) {
	for r.cur.Len() == 0 {
		if r.next >= r.chunks {
			return 0, io.EOF
		}
		z, err := r.rdb.Get(r.ctx, chunkKey(r.id, r.next)).Bytes()
		if err != nil {
			return 0, fmt.Errorf("read upload of %s: chunk %d: %w", r.id, r.next, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			return 0, fmt.Errorf("read upload of %s: chunk %d: %w", r.id, r.next, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return 0, fmt.Errorf("read upload of %s: chunk %d: %w", r.id, r.next, err)
		}
		r.cur = bytes.NewReader(raw)
		r.next++
	}
	return r.cur.Read(p)
}

// DeleteUpload removes a campaign's uploaded file, in chunks chunks, and
// its suppression hashes.
func (s *Store) DeleteUpload(ctx context.Context, id string, chunks int) error {
	keys := []string{srcKey(id), supKey(id)}
	for i := 0; i < chunks; i++ {
		keys = append(keys, chunkKey(id, i))
		if len(keys) >= 512 {
			if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	return s.rdb.Del(ctx, keys...).Err()
}

// SaveSuppressed stores the hashes of a detached dispatch's suppressed
// addresses, replacing any stored before, for the expansion to read back
// with Suppressed.
func (s *Store) SaveSuppressed(ctx context.Context, id string, hashes []uint64) error {
	buf := make([]byte, 0, 8*len(hashes))
	for _, h := range hashes {
		buf = binary.LittleEndian.AppendUint64(buf, h)
	}
	return s.rdb.Set(ctx, supKey(id), buf, 0).Err()
}

// Suppressed reads the hashes SaveSuppressed stored; none when there are
// none.
func (s *Store) Suppressed(ctx context.Context, id string) ([]uint64, error) {
	b, err := s.rdb.Get(ctx, supKey(id)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	hashes := make([]uint64, len(b)/8)
	for i := range hashes {
		hashes[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return hashes, nil
}
