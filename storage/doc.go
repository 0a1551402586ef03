// Package storage owns every Redis key and Lua script of fanout's campaigns:
// the campaign hash and its counters, the per-recipient send ledger, the
// dispatcher's checkpoints, the uploads of detached dispatches and their
// expansion state. keys.go lays out the whole key space; every script is an
// embedded .lua file. Nothing else builds a campaign key: the dispatcher,
// the worker and the command line go through a *Store. (The rate limiter
// keeps its own keys, in package ratelimit; keys.go lists them too.)
//
// Every change to a campaign's state, counters or ledger is one atomic
// script on Redis' clock, so a task that runs twice, or a command that is
// retried, changes nothing twice:
//
//	store := storage.New(rdb)
//	created, err := store.Create(ctx, spec)
//	reply, err := store.Claim(ctx, spec.ID, token, rows, staleAfter) // one attempt owns each row
//	owned, err := store.Stamp(ctx, spec.ID, token, rows)             // just before the request
//	n, err := store.Record(ctx, spec.ID, storage.ModeSend, token, outcomes)
//	p, err := store.Progress(ctx, spec.ID) // state and counters
//
// The values it reads and writes (Spec, State, Progress, Outcome) are
// package campaigns'; storage adds only what is about Redis.
package storage
