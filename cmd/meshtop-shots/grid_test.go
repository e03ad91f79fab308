package main

import (
	"strings"
	"testing"
)

func TestPinToGrid(t *testing.T) {
	in := `<g><rect x="1"/><text x="20.00px" y="64.04px" xml:space="preserve">` +
		`<tspan xml:space="preserve" fill="#58a6ff">a&amp;b</tspan><tspan xml:space="preserve"/>` +
		`<tspan xml:space="preserve" dx="4.40px">⣿⟳</tspan></text>` +
		`<text x="20.00px" y="90.00px" xml:space="preserve"><tspan xml:space="preserve">x</tspan></text></g>`
	got, err := pinToGrid([]byte(in), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := `<g><rect x="1"/><text x="20.00px" y="64.04px" xml:space="preserve">` +
		`<tspan x="20.00 30.00 40.00" xml:space="preserve" fill="#58a6ff">a&amp;b</tspan><tspan xml:space="preserve"/>` +
		`<tspan x="50.00 60.00" xml:space="preserve">⣿⟳</tspan></text>` +
		`<text x="20.00px" y="90.00px" xml:space="preserve"><tspan x="20.00" xml:space="preserve">x</tspan></text></g>`
	if string(got) != want {
		t.Fatalf("pinToGrid:\n got %s\nwant %s", got, want)
	}
	if _, err := pinToGrid([]byte(`<text x="1..2px">`+strings.Repeat("x", 3)+`</text>`), 10); err == nil {
		t.Fatal("an unparsable x was accepted")
	}
}
