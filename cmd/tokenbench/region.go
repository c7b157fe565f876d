package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"tokenledger/commands"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/natsapi"
	"tokenledger/node"
	"tokenledger/projections"
)

// regionRevokeLatency times what a region's users wait for after a revoke
// at the hub (issue 19): from the revoke's acknowledgement at the hub until
// the regional node's service refuses the token. The hub and the region run
// on this machine, each an embedded server syncing every write as serve
// runs it, the region's a leaf node of the hub's in a JetStream domain of
// its own over loopback; the revoke travels the hub's stream, the region's
// mirror and the regional node's table. n tokens are made at the hub and
// revoked there one by one; the times come back in order.
func regionRevokeLatency(ctx context.Context, dir string, signer *events.Signer, trust *events.Trust, n int) ([]time.Duration, error) {
	cfg := events.DefaultConfig()
	leaf, err := embedded.FreeAddr("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hubS, err := embedded.Start(embedded.Options{DataDir: filepath.Join(dir, "hub"), Listen: "127.0.0.1:0", Anonymous: true,
		Domain: "hub", LeafListen: leaf})
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	defer func() { hubS.Shutdown(); hubS.WaitForShutdown() }()
	euS, err := embedded.Start(embedded.Options{DataDir: filepath.Join(dir, "eu"), Listen: "127.0.0.1:0", Anonymous: true,
		Domain: "eu", Hub: []string{"nats-leaf://" + leaf}})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	defer func() { euS.Shutdown(); euS.WaitForShutdown() }()
	for deadline := time.Now().Add(30 * time.Second); !embedded.HubLinked(euS); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, errors.New("the region's server did not link to the hub's within 30 s")
		}
	}

	hub, err := runNode(ctx, node.Config{Join: hubS.ClientURL(), Stream: cfg, Signer: signer, Trust: trust, Warn: projections.DefaultWarn})
	if err != nil {
		return nil, fmt.Errorf("hub node: %w", err)
	}
	defer hub.stop()
	// The region's node is the only one with the service: every answer is
	// the region's.
	region, err := runNode(ctx, node.Config{Join: euS.ClientURL(), Stream: cfg, Signer: signer, Trust: trust, Warn: projections.DefaultWarn,
		Region: &node.Region{Name: "eu", HubDomain: "hub"}, Parts: node.Service, Version: "0.0.0-bench"})
	if err != nil {
		return nil, fmt.Errorf("regional node: %w", err)
	}
	defer region.stop()

	secrets := make([]string, n)
	for i := range secrets {
		made, err := hub.ledger.Create(ctx, commands.Create{Account: fmt.Sprintf("region%d", i%10), Name: fmt.Sprintf("r%d", i),
			Actor: events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}})
		if err != nil {
			return nil, err
		}
		secrets[i] = made.Secret
	}
	client, err := nats.Connect(euS.ClientURL())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ask := func(secret string) (natsapi.ValidateReply, error) {
		var rep natsapi.ValidateReply
		m, err := client.Request("tokens.validate", []byte(secret), 5*time.Second)
		if err != nil {
			return rep, err
		}
		return rep, json.Unmarshal(m.Data, &rep)
	}
	// Every token made is valid in the region before the first revoke.
	for deadline := time.Now().Add(time.Minute); ; {
		rep, err := ask(secrets[n-1])
		if err == nil && rep.Valid {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the hub's tokens not valid in the region a minute on: %+v, %v", rep, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	lat := make([]time.Duration, 0, n)
	for i, secret := range secrets {
		err := hub.ledger.Revoke(ctx, commands.Revoke{Account: fmt.Sprintf("region%d", i%10), Names: []string{fmt.Sprintf("r%d", i)},
			Actor: events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}})
		if err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			rep, err := ask(secret)
			if err != nil {
				return nil, err
			}
			if rep.Reason == projections.ReasonRevoked {
				break
			}
			if time.Since(acked) > 10*time.Second {
				return nil, fmt.Errorf("region%d/r%d still %+v in the region 10s after its revoke at the hub", i%10, i, rep)
			}
		}
		lat = append(lat, time.Since(acked))
	}
	slices.Sort(lat)
	return lat, nil
}

// runNode runs a node with cfg until stop, and returns once its
// table has caught up (and before it settles: see ledgerNode.settle).
func runNode(ctx context.Context, cfg node.Config) (*ledgerNode, error) {
	n, err := node.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	restored := n.Table().Applied()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.Run(runCtx) }()
	bn := &ledgerNode{conn: n.Conn(), stream: n.Stream(), table: n.Table(), ledger: n.Ledger(), restored: restored,
		paged: n.HugePaged(), pages: n.HugePages, stop: sync.OnceFunc(func() { cancel(); <-done })}
	if err := n.Follower().WaitReady(ctx); err != nil {
		bn.stop()
		return nil, err
	}
	return bn, nil
}

// regionDir is a directory of the region measurement's own, removed after.
func regionDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "tokenbench-region-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
