package worker

import (
	"context"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/tasks"
)

// LogMiddleware puts a per-task logger (task id, type, campaign, retry) in
// the context; handlers use zerolog.Ctx(ctx).
func LogMiddleware(base zerolog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			retry, _ := asynq.GetRetryCount(ctx)
			l := base.With().Str("task", id).Str("type", t.Type()).Str("campaign", tasks.CampaignOf(id)).Int("retry", retry).Logger()
			return next.ProcessTask(l.WithContext(ctx), t)
		})
	}
}
