package events

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestErrorAbout: an error says which tokens it is about through every
// wrapping, so that a transport words its reply without reading the text,
// and the text stays what the error was made with.
func TestErrorAbout(t *testing.T) {
	made := Errorf(NotFound, "no token named %q", "b").About("bob", "b", "c")
	for _, tt := range []struct {
		name string
		have error
		want []string
		says string
		code string
	}{
		{"as made", made, []string{"b", "c"}, `no token named "b"`, NotFound},
		{"wrapped", fmt.Errorf("revoke: %w", made), []string{"b", "c"}, `no token named "b"`, NotFound},
		{"about nothing", Errorf(Invalid, "bad"), nil, "bad", Invalid},
		{"not ours", errors.New("boom"), nil, "internal error", Internal},
		{"none", nil, nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := ErrorNames(tt.have); !slices.Equal(have, tt.want) {
				t.Errorf("names %q, want %q", have, tt.want)
			}
			if have := ErrorMessage(tt.have); have != tt.says {
				t.Errorf("says %q, want %q", have, tt.says)
			}
			if have := ErrorCode(tt.have); have != tt.code {
				t.Errorf("code %q, want %q", have, tt.code)
			}
		})
	}
	if made.Account != "bob" {
		t.Errorf("account %q, want bob", made.Account)
	}
}
