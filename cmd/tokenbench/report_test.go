package main

import (
	"strings"
	"testing"
)

// TestResultsKeepEachRunsSection: a run replaces its own section of the
// results file and keeps the others, in the order they were first written;
// the file written before sections (a title and one table) becomes the
// title alone.
func TestResultsKeepEachRunsSection(t *testing.T) {
	doc := []byte("# Benchmark results\n\nan old preamble\n\n| a | b |\n")
	doc = withSection(doc, "full", []byte("## full\n\nfirst full\n"))
	doc = withSection(doc, "scale", []byte("## scale\n\nfirst scale\n"))
	doc = withSection(doc, "full", []byte("## full\n\nsecond full\n"))
	want := resultsTitle + "\n## full\n\nsecond full\n\n## scale\n\nfirst scale\n"
	if string(doc) != want {
		t.Errorf("results file:\n%s\nwant:\n%s", doc, want)
	}
	if strings.Contains(string(doc), "old preamble") {
		t.Error("the old preamble stayed")
	}
}
