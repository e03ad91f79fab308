package tui

// LayoutColumns names the overview's columns shown at a width with the
// default sort (for tui_test's layout checks).
func LayoutColumns(width int) []string {
	l := layoutFor(width, colFailure)
	out := []string{columnTitles[colName]}
	for c := colProject; c < numSortable; c++ {
		if l.w[c] > 0 {
			out = append(out, columnTitles[c])
		}
	}
	return out
}
