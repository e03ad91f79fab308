package tui

import (
	"context"
	"testing"

	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func t0ctx() context.Context { return context.Background() }
