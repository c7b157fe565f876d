package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
)

// Claims lets one node of many do a thing once: the first to create a key
// wins. Expiry notices use it so that every token's notice goes out once,
// whichever node sees the expiry first.
type Claims struct {
	kv natsjs.KeyValue
}

// OpenClaims opens (creating if needed) the key-value bucket <stream>_CLAIMS.
// Keys are kept for a year and a day: a notice is never sent twice while its
// token could still be listed.
func OpenClaims(ctx context.Context, js natsjs.JetStream, cfg events.Config) (*Claims, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket:      cfg.Stream + "_CLAIMS",
		Description: "tokenledger: which node did a once-only thing",
		TTL:         366 * 24 * time.Hour,
		Storage:     natsjs.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("claims bucket: %w", natsError(err))
	}
	return &Claims{kv: kv}, nil
}

// Claim reports whether this caller is the first to claim key.
func (c *Claims) Claim(ctx context.Context, key, by string) (bool, error) {
	_, err := c.kv.Create(ctx, key, []byte(by))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, natsjs.ErrKeyExists):
		return false, nil
	}
	return false, natsError(err)
}
