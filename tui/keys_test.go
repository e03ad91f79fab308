package tui

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEKeysMatchKeyMap: the README's keys table and the key map (what
// ? shows and what the dashboard does) agree: every binding's keys are in
// the table, on a row that says what the help says, and the table lists no
// key the dashboard does not have.
func TestREADMEKeysMatchKeyMap(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "## Keys")
	if i < 0 {
		t.Fatal("README has no ## Keys section")
	}
	section := text[i:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	tick := regexp.MustCompile("`([^`]+)`")
	type row struct{ keys, does string }
	var rows []row
	for _, l := range strings.Split(section, "\n") {
		cells := strings.Split(l, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "key" {
			continue
		}
		rows = append(rows, row{cells[1], cells[2]})
	}
	if len(rows) == 0 {
		t.Fatal("no rows in the README's keys table")
	}
	known := map[string]bool{}
	for _, g := range allBindings(newModel(t0ctx(), Options{})) {
		for _, k := range g {
			h := k.Help()
			for _, kk := range k.Keys() {
				known[kk] = true
			}
			toks := strings.Split(h.Key, "/")
			if h.Key == "/" {
				toks = []string{"/"}
			}
			for _, tok := range toks {
				known[tok] = true
				found := false
				for _, r := range rows {
					if slices.ContainsFunc(tick.FindAllStringSubmatch(r.keys, -1), func(m []string) bool { return m[1] == tok }) {
						found = true
						if !strings.Contains(r.does, h.Desc) {
							t.Errorf("README row for %s says %q; the help says %q", tok, strings.TrimSpace(r.does), h.Desc)
						}
					}
				}
				if !found {
					t.Errorf("key %s (%s) is not in the README's keys table", tok, h.Desc)
				}
			}
		}
	}
	for _, r := range rows {
		for _, m := range tick.FindAllStringSubmatch(r.keys, -1) {
			if !known[m[1]] {
				t.Errorf("the README lists key %s, which the dashboard does not have", m[1])
			}
		}
	}
}
