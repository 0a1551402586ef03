package storage

import "context"

// ClaimGeneration makes gen the current expansion generation of campaign id,
// unless a later generation already is, and reports whether the task of
// generation gen may expand. A detached dispatch is expanded by a chain of
// campaign:expand tasks, one generation after the other; a task that runs
// late, after its continuation started, must do nothing.
func (s *Store) ClaimGeneration(ctx context.Context, id string, gen int) (bool, error) {
	ok, err := claimGen.Run(ctx, s.rdb, []string{genKey(id)}, gen).Int()
	if err != nil {
		return false, err
	}
	return ok == 1, nil
}
