package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestServeFlagsRegion: the region settings come from flags or their
// variables, and settings that cannot work together are refused as usage
// (exit 2) with the reason, before anything starts.
func TestServeFlagsRegion(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string // "" : accepted
	}{
		{name: "none", args: nil},
		{name: "region", args: []string{"--region", "eu", "--hub", "nats-leaf://hub:7422", "--hub-creds", "eu.nk"}},
		{name: "region from the environment", env: map[string]string{"TOKENLEDGER_REGION": "eu", "TOKENLEDGER_HUB": "nats-leaf://hub:7422", "TOKENLEDGER_HUB_DOMAIN": "central"}},
		{name: "hub", args: []string{"--leaf-listen", "127.0.0.1:7422", "--hub-domain", "central"}},
		{name: "region joined", args: []string{"--region", "eu", "--nats", "nats://leaf:4222"}},
		{name: "region without hub", args: []string{"--region", "eu"}, want: "--region needs --hub"},
		{name: "bad region", args: []string{"--region", "e.u", "--hub", "nats-leaf://hub:7422"}, want: "--region \"e.u\""},
		{name: "region is the hub", args: []string{"--region", "hub", "--hub", "nats-leaf://hub:7422"}, want: "must differ"},
		{name: "hub without region", args: []string{"--hub", "nats-leaf://hub:7422"}, want: "give --region too"},
		{name: "hub with join", args: []string{"--region", "eu", "--nats", "nats://leaf:4222", "--hub", "nats-leaf://hub:7422"}, want: "with --nats"},
		{name: "leaf listen in a region", args: []string{"--region", "eu", "--hub", "nats-leaf://hub:7422", "--leaf-listen", "127.0.0.1:7422"}, want: "--leaf-listen is a hub's"},
		{name: "bad hub domain", args: []string{"--hub-domain", "a b"}, want: "--hub-domain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &cli{getenv: func(k string) string { return c.env[k] }, stdout: io.Discard, stderr: io.Discard}
			cfg, err := e.serveFlags(c.args)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.env["TOKENLEDGER_HUB_DOMAIN"] != "" && cfg.HubDomain != c.env["TOKENLEDGER_HUB_DOMAIN"] {
					t.Errorf("hub domain %q, want the variable's", cfg.HubDomain)
				}
				return
			}
			var usage *usageError
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal with %q", err, c.want)
			}
			if !errors.As(err, &usage) {
				t.Errorf("%v is not a usage error (exit 2)", err)
			}
		})
	}
}
