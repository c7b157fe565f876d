package httpapi

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"

	"tokenledger/events"
)

// DefaultFeatures are the features the panel offers when the operator names
// none: cPanel's names for the features of an account that scripts most
// often use, with apitokens, which the Tokens functions need, first.
func DefaultFeatures() []string {
	return []string{
		TokensFeature, "popaccts", "forwarders", "autoresponders", "ftpaccts", "zoneedit", "cron",
		"mysql", "backup", "sslmanager", "webdisk", "filemanager", "subdomains", "addondomains",
	}
}

// ReadFeatures reads the features the panel offers from a file: one
// feature name a line, blank lines and lines starting with # skipped. A
// malformed name is an error with its line, never skipped; a repeat is
// kept once. A file with no feature offers none: every token the panel
// creates then has full access.
func ReadFeatures(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if err := events.CheckFeature(name); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
