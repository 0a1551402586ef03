package worker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Completion notices. A campaign whose spec sets notify_url gets a POST of
// a JSON summary each time it completes (once, and once more after each
// fanout retry-failed that completes again). The auditor, which already
// sees every campaign with batch copies every 10 s, enqueues a
// campaign:notify task when it finds one completed, before it drops the
// copies (so at most one audit interval late); the task id
// <cid>:notify:<retries> makes each completion one notice. asynq retries a
// notice with backoff until the URL answers 2xx (notifyRetries times).

// SignatureHeader carries the hex HMAC-SHA512 of a notice's body, keyed by
// FANOUT_NOTIFY_SECRET.
const SignatureHeader = "X-Fanout-Signature"

// notifyRetries is asynq's retry budget for a completion notice: with
// RetryDelay's backoff (capped at 5 minutes) about an hour of tries.
const notifyRetries = 20

// Notice is the body of a completion notice. Field names are a contract
// with receivers.
type Notice struct {
	// Event is "campaign.completed".
	Event string `json:"event"`
	// Retries is the campaign's retry rounds when it completed.
	Retries int `json:"retries"`
	// Campaign is the campaign's status, as fanout status --json prints it.
	Campaign campaigns.Progress `json:"campaign"`
}

// Sign returns the hex HMAC-SHA512 of body keyed by secret: the value of
// SignatureHeader. A receiver recomputes it over the raw body and compares
// in constant time (hmac.Equal).
func Sign(secret, body []byte) string {
	m := hmac.New(sha512.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// NotifyHandler posts completion notices (campaign:notify).
type NotifyHandler struct {
	store  *storage.Store
	client *http.Client
	secret []byte
}

// ProcessTask posts the notice of one completion. A campaign that is gone,
// has no notify_url, or is no longer the completion the task names (a
// retry sent it running again) is dropped: that completion is notified by
// its own task.
func (h *NotifyHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p tasks.Notify
	if err := tasks.Decode(t.Payload(), &p); err != nil {
		return skip(err)
	}
	log := zerolog.Ctx(ctx)
	spec, err := h.store.Spec(ctx, p.Campaign)
	if errors.Is(err, storage.ErrNotFound) {
		return skip(err)
	}
	if err != nil {
		return err
	}
	prog, err := h.store.Progress(ctx, p.Campaign)
	if err != nil {
		return err
	}
	retries, err := h.store.Retries(ctx, p.Campaign)
	if err != nil {
		return err
	}
	if spec.NotifyURL == "" || prog.State != campaigns.StateCompleted || retries != p.Retries {
		log.Info().Str("state", string(prog.State)).Int("retries", retries).Msg("completion notice no longer current; dropped")
		return nil
	}
	body, err := json.Marshal(Notice{Event: "campaign.completed", Retries: retries, Campaign: prog})
	if err != nil {
		return skip(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, spec.NotifyURL, bytes.NewReader(body))
	if err != nil {
		return skip(fmt.Errorf("notify_url: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Fanout-Event", "campaign.completed")
	req.Header.Set("Idempotency-Key", p.ID())
	if len(h.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(h.secret, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post completion notice: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post completion notice: %s answered %d", req.URL.Redacted(), resp.StatusCode)
	}
	log.Info().Int("retries", retries).Msg("completion notice posted")
	return nil
}

// notifyCompleted enqueues the completion notice of a completed campaign
// whose spec has a notify_url (a no-op while the same completion's notice
// exists).
func (a *Auditor) notifyCompleted(ctx context.Context, id string) error {
	spec, err := a.store.Spec(ctx, id)
	if err != nil || spec.NotifyURL == "" {
		return err
	}
	retries, err := a.store.Retries(ctx, id)
	if err != nil {
		return err
	}
	return tasks.Enqueue(ctx, a.enq, tasks.NewNotify(tasks.Notify{Campaign: id, Retries: retries},
		tasks.Options{MaxRetry: notifyRetries, Timeout: time.Minute}))
}
