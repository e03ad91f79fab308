package workersim

import (
	"context"
	"fmt"
	"time"
)

// BulkSpec describes a history written set-based by Bulk.
type BulkSpec struct {
	// Project and Workflows: existing ids (Workflow inserts them); every
	// definition has the nodes of BulkNodes.
	Project   string
	Workflows []string
	// Runs started evenly over the Days before Anchor.
	Runs   int
	Days   int
	Anchor time.Time
	// Busy is the share of runs (0–1) the first workflow gets; the others
	// share the rest evenly. Default 0.1.
	Busy float64
	// Seed makes the ids and choices of one history differ from another's.
	Seed int
}

// BulkNodes are the nodes of every workflow Bulk writes runs of.
var BulkNodes = []Node{{"prepare", "transform"}, {"callApi", "http_call"}, {"notify", "http_call"}, {"finish", "transform"}}

// Bulk writes spec.Runs finished runs with MeshHook's events, in one
// statement per table (not the workers' statement-per-event: this is
// volume for plans and benchmarks; Write is the exact shape). Each run, by
// a hash of its number: 3% fail (callApi's 5 attempts get 503, each
// followed by its step_failed, the run updated to failed), 10% succeed
// after one failed attempt of callApi (503, step_failed, the back-off,
// then 200), 1% are canceled after prepare, the rest succeed at the first
// attempt; step durations vary by a per-run factor of 0.5–8. The events of
// every run have exactly the types and payload fields Write gives them, and
// are inserted in time order, as the workers append them (the events of
// runs that overlap in time interleave in the heap). The project's open
// runs are taken to be Bulk's: give it a project of its own.
func Bulk(ctx context.Context, db Execer, spec BulkSpec) error {
	if spec.Busy <= 0 {
		spec.Busy = 0.1
	}
	if len(spec.Workflows) == 0 || spec.Runs <= 0 || spec.Days <= 0 {
		return fmt.Errorf("workersim: Bulk needs workflows, runs and days")
	}
	if err := Partitions(ctx, db, spec.Anchor.Add(-time.Duration(spec.Days)*24*time.Hour-time.Hour), spec.Anchor.Add(24*time.Hour)); err != nil {
		return err
	}
	// Runs: number i starts at anchor − days·(1 − i/n); its workflow and
	// kind come from hashes of (seed, i).
	_, err := db.Exec(ctx, `
insert into public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at, created_at, updated_at)
select x.id, $1::uuid, x.wf, 'running', x.started_at, null, x.started_at, x.started_at
from (
  select md5($6::text || ':bulk:' || i)::uuid as id,
         case when h1 < $5::float8 or cardinality($2::uuid[]) = 1 then ($2::uuid[])[1]
              else ($2::uuid[])[2 + (h2 % (cardinality($2::uuid[]) - 1))::int] end as wf,
         $4::timestamptz - ($3::int * interval '24 hours') * (1 - i::float8 / $7::int) as started_at
  from generate_series(1, $7::int) i,
       lateral (select ('x' || substr(md5($6::text || ':wf:' || i), 1, 8))::bit(32)::bigint::float8 / 4294967296.0 as h1,
                       ('x' || substr(md5($6::text || ':w2:' || i), 1, 8))::bit(32)::bigint as h2) h
) x
`, spec.Project, spec.Workflows, spec.Days, spec.Anchor, spec.Busy, fmt.Sprint(spec.Seed), spec.Runs)
	if err != nil {
		return fmt.Errorf("workersim: bulk runs: %w", err)
	}
	// Events: per kind, the (type, node, offset in ms at factor 1, extra)
	// of each event; a run's offsets are multiplied by its factor, except
	// the back-offs, which are MeshHook's.
	_, err = db.Exec(ctx, `
with runs as materialized (
  select r.id, r.started_at,
         case when k < 0.03 then 'failed' when k < 0.13 then 'retried' when k < 0.14 then 'canceled' else 'ok' end as kind,
         0.5 * power(16, f) as factor
  from public.workflow_runs r,
       lateral (select ('x' || substr(md5(r.id::text || ':kind'), 1, 8))::bit(32)::bigint::float8 / 4294967296.0 as k,
                       ('x' || substr(md5(r.id::text || ':factor'), 1, 8))::bit(32)::bigint::float8 / 4294967296.0 as f) h
  where r.project_id = $1::uuid and r.status = 'running' and r.finished_at is null
), tmpl0(kind, seq, type, node, node_type, ms, backoff_ms, attempt, status) as (values
  -- every kind starts with prepare
  ('*', 1, 'step_started', 'prepare', 'transform', 1, 0, null::int, null::int),
  ('*', 2, 'step_succeeded', 'prepare', 'transform', 20, 0, null, null),
  -- ok: callApi and notify at the first attempt, finish, run_completed
  ('ok', 3, 'step_started', 'callApi', 'http_call', 22, 0, null, null),
  ('ok', 4, 'http_attempted', 'callApi', 'http_call', 222, 0, null, 200),
  ('ok', 5, 'step_succeeded', 'callApi', 'http_call', 223, 0, null, null),
  ('ok', 6, 'step_started', 'notify', 'http_call', 225, 0, null, null),
  ('ok', 7, 'http_attempted', 'notify', 'http_call', 325, 0, null, 202),
  ('ok', 8, 'step_succeeded', 'notify', 'http_call', 326, 0, null, null),
  ('ok', 9, 'step_started', 'finish', 'transform', 328, 0, null, null),
  ('ok', 10, 'step_succeeded', 'finish', 'transform', 338, 0, null, null),
  ('ok', 11, 'run_completed', null, null, 340, 0, null, null),
  -- retried: callApi fails once (503), waits 500 ms, succeeds
  ('retried', 3, 'step_started', 'callApi', 'http_call', 22, 0, null, null),
  ('retried', 4, 'http_attempted', 'callApi', 'http_call', 222, 0, null, 503),
  ('retried', 5, 'step_failed', 'callApi', 'http_call', 223, 0, 1, null),
  ('retried', 6, 'http_attempted', 'callApi', 'http_call', 423, 500, null, 200),
  ('retried', 7, 'step_succeeded', 'callApi', 'http_call', 424, 500, null, null),
  ('retried', 8, 'step_started', 'notify', 'http_call', 426, 500, null, null),
  ('retried', 9, 'http_attempted', 'notify', 'http_call', 526, 500, null, 202),
  ('retried', 10, 'step_succeeded', 'notify', 'http_call', 527, 500, null, null),
  ('retried', 11, 'step_started', 'finish', 'transform', 529, 500, null, null),
  ('retried', 12, 'step_succeeded', 'finish', 'transform', 539, 500, null, null),
  ('retried', 13, 'run_completed', null, null, 541, 500, null, null),
  -- failed: callApi gets 503 five times (back-offs 0.5, 1, 2, 4 s)
  ('failed', 3, 'step_started', 'callApi', 'http_call', 22, 0, null, null),
  ('failed', 4, 'http_attempted', 'callApi', 'http_call', 222, 0, null, 503),
  ('failed', 5, 'step_failed', 'callApi', 'http_call', 223, 0, 1, null),
  ('failed', 6, 'http_attempted', 'callApi', 'http_call', 423, 500, null, 503),
  ('failed', 7, 'step_failed', 'callApi', 'http_call', 424, 500, 2, null),
  ('failed', 8, 'http_attempted', 'callApi', 'http_call', 624, 1500, null, 503),
  ('failed', 9, 'step_failed', 'callApi', 'http_call', 625, 1500, 3, null),
  ('failed', 10, 'http_attempted', 'callApi', 'http_call', 825, 3500, null, 503),
  ('failed', 11, 'step_failed', 'callApi', 'http_call', 826, 3500, 4, null),
  ('failed', 12, 'http_attempted', 'callApi', 'http_call', 1026, 7500, null, 503),
  ('failed', 13, 'step_failed', 'callApi', 'http_call', 1027, 7500, 5, null)
  -- canceled: nothing after prepare
), tmpl as (
  select k.kind, t.seq, t.type, t.node, t.node_type, t.ms, t.backoff_ms, t.attempt, t.status
  from tmpl0 t cross join (values ('ok'), ('retried'), ('failed'), ('canceled')) k(kind) where t.kind = '*'
  union all
  select * from tmpl0 t where t.kind <> '*'
), ev as (
  select r.id as run_id, t.seq, t.type,
         r.started_at + (t.ms * r.factor + t.backoff_ms) * interval '1 millisecond' as ts,
         case when t.type = 'run_completed' then '{}'::jsonb
              else jsonb_build_object('node', jsonb_build_object('id', t.node, 'type', t.node_type)) end
         || case t.type
              when 'http_attempted' then jsonb_build_object('status', t.status)
              when 'step_failed' then jsonb_build_object('attempt', t.attempt, 'error', 'Error: HTTP 503')
              when 'step_succeeded' then
                case when t.node_type = 'http_call'
                     then jsonb_build_object('next', '[]'::jsonb, 'response', jsonb_build_object('ok', true))
                     else jsonb_build_object('next', '[]'::jsonb, 'output', jsonb_build_object('ok', true)) end
              else '{}'::jsonb end as payload
  from runs r join tmpl t on t.kind = r.kind
)
insert into public.workflow_events (run_id, ts, type, payload, created_at)
select ev.run_id, ev.ts, ev.type, ev.payload, ev.ts from ev order by ev.ts, ev.run_id, ev.seq`, spec.Project)
	if err != nil {
		return fmt.Errorf("workersim: bulk events: %w", err)
	}
	// The run updates: finished 3 ms after its last event (the templates'
	// last offsets: ok 340 ms, retried 541 ms + 500 ms back-off, failed
	// 1027 ms + 7.5 s of back-offs, canceled 20 ms).
	_, err = db.Exec(ctx, `
update public.workflow_runs r
set status = x.status, finished_at = x.fin, updated_at = x.fin
from (
  select r.id,
         case when k < 0.03 then 'failed' when k >= 0.13 and k < 0.14 then 'canceled' else 'succeeded' end as status,
         r.started_at + (case when k < 0.03 then 1027 * factor + 7500
                              when k < 0.13 then 541 * factor + 500
                              when k < 0.14 then 20 * factor
                              else 340 * factor end + 3) * interval '1 millisecond' as fin
  from public.workflow_runs r,
       lateral (select ('x' || substr(md5(r.id::text || ':kind'), 1, 8))::bit(32)::bigint::float8 / 4294967296.0 as k,
                       0.5 * power(16, ('x' || substr(md5(r.id::text || ':factor'), 1, 8))::bit(32)::bigint::float8 / 4294967296.0) as factor) h
  where r.project_id = $1::uuid and r.status = 'running' and r.finished_at is null
) x
where r.id = x.id`, spec.Project)
	if err != nil {
		return fmt.Errorf("workersim: bulk run updates: %w", err)
	}
	return nil
}
