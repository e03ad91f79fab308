package bench

import (
	"strings"
	"testing"
)

func TestEveryNamedFileIsEmbeddedAndCommented(t *testing.T) {
	for _, name := range []string{ScreenViews, ScreenHourly, Setup, NaiveRefresh, InsertRuns, RemoveWritten, StatementsOfApp, TopStatements} {
		text := SQL(name)
		if !strings.HasPrefix(text, "--") {
			t.Errorf("%s does not start with a comment explaining it", name)
		}
		if strings.Contains(text, "secrets") {
			t.Errorf("%s mentions public.secrets, which meshtop must never read", name)
		}
	}
	if !strings.Contains(SQL(ScreenViews), "@schema@") || !strings.Contains(SQL(ScreenHourly), "@workflow@") {
		t.Error("the screen queries lost their @schema@/@workflow@ tokens")
	}
}
