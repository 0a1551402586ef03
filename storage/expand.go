package storage

import (
	"context"
)

// A detached dispatch is expanded by a chain of campaign:expand tasks, one
// generation after the other:
//
//	fanout:{id}:expand  hash: gen, the current generation
func genKey(id string) string { return "fanout:{" + id + "}:expand" }

// ClaimGeneration makes gen the current expansion generation of campaign id,
// unless a later generation already is: it reports whether the task of
// generation gen may expand.
func (s *Store) ClaimGeneration(ctx context.Context, id string, gen int) (bool, error) {
	ok, err := claimGen.Run(ctx, s.rdb, []string{genKey(id)}, gen).Int()
	if err != nil {
		return false, err
	}
	return ok == 1, nil
}
