package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestScheduleAsReaderOnSupabase: on a database shaped like Supabase's
// (pg_cron installed, a non-superuser owner that installed meshtop and
// scheduled the refresh), a login with meshtop_reader alone reads the
// schedule — it has no privilege on schema cron — and when even the owner
// is denied, the schedule is unknown with the grant that would show it,
// not an error.
func TestScheduleAsReaderOnSupabase(t *testing.T) {
	t.Parallel()
	db := pgtest.NewCronDatabase(t)
	ctx := ctxT(t)
	if _, err := db.Pool.Exec(ctx, `create extension pg_cron`); err != nil {
		t.Fatal(err)
	}
	owner, ownerDSN := db.SupabaseOwner(t)
	opool := connect(t, ownerDSN)
	if _, err := install.New(opool, schema).Apply(ctx, nil); err != nil {
		t.Fatalf("installing as the non-superuser owner: %v", err)
	}
	ost := store.New(opool, nil, store.Options{Schema: schema})
	want, err := ost.SetSchedule(ctx, time.Minute)
	if err != nil {
		t.Fatalf("scheduling as the owner: %v", err)
	}

	reader := store.New(connect(t, db.LoginRole(t, "reader_"+db.Name, "meshtop_reader")), nil, store.Options{Schema: schema})
	sc, err := reader.Schedule(ctx)
	if err != nil {
		t.Fatalf("Schedule as a reader: %v", err)
	}
	if !sc.CronAvailable || !sc.Scheduled || sc.JobID != want.JobID || sc.Every != time.Minute || !sc.Active || !sc.Unknown.IsEmpty() {
		t.Errorf("Schedule as a reader = %+v; want job %d every 1m", sc, want.JobID)
	}
	if _, err := reader.Views(ctx); err != nil {
		t.Errorf("Views as a reader: %v", err)
	}

	// The owner denied on pg_cron: unknown, with the grant, and no error.
	if _, err := db.Pool.Exec(ctx, `revoke usage on schema cron from `+owner); err != nil {
		t.Fatal(err)
	}
	sc, err = reader.Schedule(ctx)
	if err != nil {
		t.Fatalf("Schedule with the owner denied: %v", err)
	}
	if !sc.CronAvailable || sc.Scheduled || !strings.Contains(sc.Unknown.Raw(), "GRANT USAGE ON SCHEMA cron") {
		t.Errorf("Schedule with the owner denied = %+v; want unknown with the grant", sc)
	}

	// A login that is not a reader is told which role it lacks.
	nobody := store.New(connect(t, db.LoginRole(t, "nobody_"+db.Name)), nil, store.Options{Schema: schema})
	if _, err := nobody.Schedule(ctx); err == nil || !strings.Contains(err.Error(), "meshtop_reader") {
		t.Errorf("Schedule as a login without meshtop_reader: err = %v; want one naming meshtop_reader", err)
	}
}
