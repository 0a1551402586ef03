package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
)

// Handlers get a logger carrying the task's id, type and campaign.
func TestLogMiddlewareTagsTheTask(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := LogMiddleware(zerolog.New(&buf))(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		zerolog.Ctx(ctx).Info().Msg("hello")
		return nil
	}))
	if err := h.ProcessTask(context.Background(), asynq.NewTask("sms:send", nil)); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if line["type"] != "sms:send" || line["message"] != "hello" {
		t.Fatalf("log line %v", line)
	}
}
