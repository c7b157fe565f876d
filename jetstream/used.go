package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"tokenledger/events"
)

// lastUseValue is an events.LastUse as the bucket holds it: at in Unix milliseconds.
type lastUseValue struct {
	At   int64  `json:"at"`
	IP   string `json:"ip,omitempty"`
	Node string `json:"node,omitempty"`
}

// Used keeps each token's last use in a key-value bucket beside the stream,
// written at most once per token per period by all nodes together, and
// watched by every node.
type Used struct {
	kv natsjs.KeyValue
}

// OpenUsed opens (creating if needed) the key-value bucket <stream>_USED. It
// keeps one value a key and no history: only the last use matters.
func OpenUsed(ctx context.Context, js natsjs.JetStream, cfg events.Config) (*Used, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket:      cfg.Stream + "_USED",
		Description: "tokenledger: each token's last use",
		History:     1,
		Storage:     natsjs.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("last-use bucket: %w", natsError(err))
	}
	return &Used{kv: kv}, nil
}

// Record stores u as its token's last use unless the bucket already holds one
// less than every before it, and says whether it did. Of nodes racing for the
// same token in the same period one wins (the write is conditional on the
// revision read); the others lose silently.
func (s *Used) Record(ctx context.Context, u events.LastUse, every time.Duration) (bool, error) {
	key, err := useKey(u.Account, u.TokenID)
	if err != nil {
		return false, err
	}
	v := lastUseValue{At: u.At.UnixMilli(), Node: u.Node}
	if ip, err := netip.ParseAddr(u.IP); err == nil {
		v.IP = ip.String()
	}
	value, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	e, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, natsjs.ErrKeyNotFound):
		_, err = s.kv.Create(ctx, key, value)
	case err != nil:
		return false, natsError(err)
	default:
		if prev, ok := decodeLastUse(e.Value()); ok && u.At.Sub(prev.At) < every {
			return false, nil
		}
		_, err = s.kv.Update(ctx, key, value, e.Revision())
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, natsjs.ErrKeyExists), errors.Is(err, natsjs.ErrKeyRevisionMismatch):
		return false, nil // another node recorded it first
	}
	return false, natsError(err)
}

// Last is the token's last use as the bucket holds it now, and the entry's
// revision; ok is false when there is none.
func (s *Used) Last(ctx context.Context, account, tokenID string) (u events.LastUse, revision uint64, ok bool, err error) {
	key, err := useKey(account, tokenID)
	if err != nil {
		return events.LastUse{}, 0, false, err
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return events.LastUse{}, 0, false, nil
	}
	if err != nil {
		return events.LastUse{}, 0, false, natsError(err)
	}
	u, ok = decodeEntry(e)
	return u, e.Revision(), ok, nil
}

// Watch calls fn with every last use in the bucket, with stored true, then
// with each one recorded after, with stored false, until ctx ends. Entries
// that do not decode are passed over: only nodes may write the bucket.
func (s *Used) Watch(ctx context.Context, fn func(u events.LastUse, stored bool)) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return natsError(err)
	}
	defer w.Stop()
	stored := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, open := <-w.Updates():
			switch {
			case !open:
				if ctx.Err() != nil {
					return nil
				}
				return events.Errorf(events.Unavailable, "the last-use watch ended")
			case e == nil:
				stored = false // the values stored before the watch began are in
			case e.Operation() == natsjs.KeyValuePut:
				if u, ok := decodeEntry(e); ok {
					fn(u, stored)
				}
			}
		}
	}
}

// useKey is the bucket's key for a token: <account>.<token_id>, both checked,
// since they become part of a subject.
func useKey(account, tokenID string) (string, error) {
	if err := events.CheckAccount(account); err != nil {
		return "", err
	}
	if _, err := ulid.ParseStrict(tokenID); err != nil {
		return "", events.Errorf(events.Invalid, "the token id %q is not valid", clip(tokenID))
	}
	return account + "." + tokenID, nil
}

func decodeEntry(e natsjs.KeyValueEntry) (events.LastUse, bool) {
	account, tokenID, found := strings.Cut(e.Key(), ".")
	if !found {
		return events.LastUse{}, false
	}
	if key, err := useKey(account, tokenID); err != nil || key != e.Key() {
		return events.LastUse{}, false
	}
	u, ok := decodeLastUse(e.Value())
	u.Account, u.TokenID = account, tokenID
	return u, ok
}

// decodeLastUse reads a value; an address that does not parse is dropped, as
// it may reach a terminal or a page.
func decodeLastUse(b []byte) (events.LastUse, bool) {
	var v lastUseValue
	if len(b) > 1024 || json.Unmarshal(b, &v) != nil || v.At <= 0 {
		return events.LastUse{}, false
	}
	u := events.LastUse{At: time.UnixMilli(v.At), Node: v.Node}
	if ip, err := netip.ParseAddr(v.IP); err == nil {
		u.IP = ip.String()
	}
	return u, true
}

// clip shortens what an error repeats of an outside input.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
