package store

import (
	"reflect"
	"testing"

	"github.com/meshtop/meshtop/data/safetext"
)

// plainStrings are the string fields of the types the store hands to the
// dashboard and the command line that may stay plain strings, with why no
// tenant, other session or other role can put text of its choosing there.
// Everything else that holds text must be a safetext.Text, whose String is
// sanitized (docs/SECURITY.md, "Database text on a terminal").
var plainStrings = map[string]string{
	"WorkflowMetrics.WorkflowID": "uuid column",
	"WorkflowMetrics.ProjectID":  "uuid column",
	"HourlyPoint.WorkflowID":     "uuid column",
	"StepMetrics.WorkflowID":     "uuid column",
	"Overview.Hourly (key)":      "workflow uuid",
	"Overview.RunningNow (key)":  "workflow uuid",
	"Overview.Changes (key)":     "workflow uuid",
	"Change.WorkflowID":          "uuid column",
	"Window":                     "one of the four window names: the views compute it from a fixed list",
	"RefreshLogEntry.View":       "refresh_begin only logs names in view_names(); refresh_log is written only by meshtop's definer functions",
	"RefreshLogEntry.Status":     "CHECK (status IN ('running','ok','failed','skipped')), or 'interrupted' from refresh_log_v",
	"RunningRefresh.View":        "as RefreshLogEntry.View",
	"ViewStatus.Name":            "view_names(): meshtop's own views",
	"ViewStatus.LastStatus":      "as RefreshLogEntry.Status",
	"CronRun.Status":             "written by pg_cron itself (starting, running, sending, connecting, succeeded, failed)",
	"Schedule.Schedule":          "pg_cron parses the schedule and rejects anything but a cron or interval expression",
	"ServerInfo.Host":            "the operator's own connection settings, not the database",
	"ServerInfo.Database":        "the operator's own connection settings",
	"ServerInfo.User":            "the operator's own connection settings",
	"ServerInfo.Version":         "server_version of the server (renderers sanitize it all the same)",
	"RefreshResult.View":         "the view name meshtop asked to refresh (CheckView)",
	"RefreshResult.Status":       "as RefreshLogEntry.Status",
	"RefreshLogEntry.Mode":       "written only by refresh_run from rollup_apply(): 'incremental' or 'full'",
	"RefreshResult.Mode":         "as RefreshLogEntry.Mode",
	"RefreshEvent.View":          "never displayed: only triggers a re-read (any role may NOTIFY)",
	"RefreshOutcome.View":        "as RefreshLogEntry.View (a metric label of meshtop serve)",
	"RefreshOutcome.Status":      "the derived state: one of running, ok, failed, skipped, interrupted (a CHECK constraint and refresh_log_v)",
	"RefreshEvent.Status":        "never displayed: only triggers a re-read",
	"RunList.WorkflowID":         "the uuid the caller asked for (checked against uuidRE)",
	"RunKind":                    "one of meshtop's two list names (ParseRunKind)",
	"RunSummary.RunID":           "uuid column (run_id::text)",
	"RunSummary.WorkflowID":      "uuid column",
	"RunInfo.RunID":              "uuid column",
	"RunInfo.WorkflowID":         "uuid column",
	"RunInfo.ProjectID":          "uuid column",
	"RunStep.Outcome":            "computed by drill_steps (070_drill.sql) from a fixed list: succeeded, failed, retrying, running, unfinished",
	"WorkflowRef.WorkflowID":     "uuid column",
	"WorkflowRef.ProjectID":      "uuid column",
}

// TestDisplayTypesCarryText walks every type the store returns to a
// renderer and fails on a string field that is neither a safetext.Text nor
// in plainStrings: adding a text column to a result type means deciding,
// here, that it cannot carry tenant text — or making it a safetext.Text.
func TestDisplayTypesCarryText(t *testing.T) {
	roots := []any{Overview{}, WorkflowDetail{}, RefreshLogEntry{}, RunningRefresh{}, Schedule{},
		ServerInfo{}, RefreshResult{}, RefreshEvent{}, ViewStatus{}, RefreshOutcome{}, RunList{}, RunTimeline{}, WorkflowRef{}}
	textType := reflect.TypeFor[safetext.Text]()
	storePkg := reflect.TypeFor[Window]().PkgPath()
	seen := map[reflect.Type]bool{}
	used := map[string]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		if typ == textType || seen[typ] {
			return
		}
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(typ.Elem(), path)
			return
		case reflect.Map:
			walk(typ.Key(), path+" (key)")
			walk(typ.Elem(), path)
			return
		case reflect.String:
			name := path
			if typ.PkgPath() == storePkg {
				name = typ.Name() // a string type of this package: Window
			}
			if _, ok := plainStrings[name]; !ok {
				t.Errorf("%s is a plain string: make it a safetext.Text, or say in plainStrings why no one but meshtop and PostgreSQL can choose its text", path)
			}
			used[name] = true
			return
		case reflect.Struct:
		default:
			return
		}
		if typ.PkgPath() != storePkg {
			return // time.Time and other foreign structs hold no database text
		}
		seen[typ] = true
		for f := range typ.Fields() {
			walk(f.Type, typ.Name()+"."+f.Name)
		}
	}
	for _, r := range roots {
		walk(reflect.TypeOf(r), reflect.TypeOf(r).Name())
	}
	for name := range plainStrings {
		if !used[name] {
			t.Errorf("plainStrings lists %s, which is not a string field of a result type any more", name)
		}
	}
	// The fields issue 16 named are Texts.
	for _, f := range []string{"ProjectName", "Name", "Slug", "Status"} {
		if fld, _ := reflect.TypeFor[WorkflowMetrics]().FieldByName(f); fld.Type != textType {
			t.Errorf("WorkflowMetrics.%s is %s", f, fld.Type)
		}
	}
	if fld, _ := reflect.TypeFor[Blocker]().FieldByName("Query"); fld.Type != textType {
		t.Errorf("Blocker.Query is %s", fld.Type)
	}
}
