package storage

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OneRouteCampaign is one accepted request of a whatsapp_campaign: the
// campaign id OneRoute returned for one batch's messages.
type OneRouteCampaign struct {
	// ID is OneRoute's campaign_id.
	ID string `json:"campaign_id"`
	// Batch is the fanout batch key whose request it was (b12, b12r1-<hash>).
	Batch string `json:"batch"`
	// Messages is how many messages the request carried.
	Messages int `json:"messages"`
	// At is when the request was accepted.
	At time.Time `json:"at"`
}

// AddOneRouteCampaign records the campaign id OneRoute returned for a
// request of campaign id. Recording the same id again changes nothing but
// its fields.
func (s *Store) AddOneRouteCampaign(ctx context.Context, id string, c OneRouteCampaign) error {
	v := fmt.Sprintf("%s|%d|%d", c.Batch, c.At.UnixMilli(), c.Messages)
	if err := s.rdb.HSet(ctx, orcKey(id), c.ID, v).Err(); err != nil {
		return fmt.Errorf("record OneRoute campaign of %s: %w", id, err)
	}
	return nil
}

// OneRouteCampaigns lists the OneRoute campaigns recorded for campaign id,
// oldest first; none for other channels.
func (s *Store) OneRouteCampaigns(ctx context.Context, id string) ([]OneRouteCampaign, error) {
	m, err := s.rdb.HGetAll(ctx, orcKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read OneRoute campaigns of %s: %w", id, err)
	}
	out := make([]OneRouteCampaign, 0, len(m))
	for k, v := range m {
		parts := strings.SplitN(v, "|", 3)
		c := OneRouteCampaign{ID: k, Batch: parts[0]}
		if len(parts) == 3 {
			ms, _ := strconv.ParseInt(parts[1], 10, 64)
			c.At = time.UnixMilli(ms).UTC()
			c.Messages, _ = strconv.Atoi(parts[2])
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
