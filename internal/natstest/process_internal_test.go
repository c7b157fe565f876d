package natstest

import "testing"

// A deployment's listener moves to a loopback port only where the file
// names it once, as written: a file that names it twice, or not as parsed,
// stops the test rather than leave a server on the deployment's own port.
func TestMoveAddr(t *testing.T) {
	for _, c := range []struct {
		name, have, want string
		fails            bool
	}{
		{"once", "leafnodes { listen: 0.0.0.0:7422 }", "leafnodes { listen: 127.0.0.1:5555 }", false},
		{"twice", "listen: 0.0.0.0:7422\n# 0.0.0.0:7422", "", true},
		{"absent", "leafnodes { listen: 7422 }", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			have, err := moveAddr(c.have, "hub.conf", "leafnode", "0.0.0.0", 7422, 5555)
			if (err != nil) != c.fails {
				t.Fatalf("error %v, want one: %v", err, c.fails)
			}
			if have != c.want {
				t.Fatalf("have %q, want %q", have, c.want)
			}
		})
	}
}
