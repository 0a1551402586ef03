package storage

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// Every Redis script of the store, one embedded .lua file each. A script
// that needs a shared function (now_ms, maybe_complete, owner) is the
// function's file followed by its own, joined here; each file starts with
// a comment naming its KEYS and ARGV and what it returns.
var (
	//go:embed now.lua
	nowLua string // now_ms(): Redis' clock in ms
	//go:embed complete.lua
	completeLua string // maybe_complete(c, now): completes a finished campaign
	//go:embed owner.lua
	ownerLua string // owner(v): parses a claimed or sending ledger value
	//go:embed view.lua
	viewLua string // view(first, stride): the ledger rows a script names, read and written per bucket

	//go:embed create.lua
	createLua    string
	createScript = redis.NewScript(createLua)

	//go:embed add_batch.lua
	addBatchLua    string
	addBatchScript = redis.NewScript(addBatchLua)

	//go:embed finish_dispatch.lua
	finishDispatchLua    string
	finishDispatchScript = redis.NewScript(completeLua + finishDispatchLua)

	//go:embed claim.lua
	claimLua    string
	claimScript = redis.NewScript(nowLua + ownerLua + viewLua + claimLua)

	//go:embed stamp.lua
	stampLua    string
	stampScript = redis.NewScript(nowLua + ownerLua + viewLua + stampLua)

	//go:embed record.lua
	recordLua    string
	recordScript = redis.NewScript(nowLua + completeLua + ownerLua + viewLua + recordLua)

	//go:embed transition.lua
	transitionLua    string
	transitionScript = redis.NewScript(nowLua + completeLua + transitionLua)

	//go:embed rows_of.lua
	rowsOfLua    string
	rowsOfScript = redis.NewScript(rowsOfLua)

	//go:embed claim_gen.lua
	claimGenLua string
	claimGen    = redis.NewScript(claimGenLua)

	//go:embed retry.lua
	retryLua    string
	retryScript = redis.NewScript(nowLua + completeLua + retryLua)
	//go:embed skip_opted_out.lua
	skipOptedOutLua    string
	skipOptedOutScript = redis.NewScript(nowLua + completeLua + ownerLua + skipOptedOutLua)
)
