// Package reliability holds meshtop's fault-injection and security suite: it
// has no code of its own, only tests (run by `make test`) that interrupt
// refreshes in every way PostgreSQL allows (cancel, terminate, lock_timeout,
// statement_timeout, an immediate server restart), restart the database
// under the dashboard and `meshtop refresh --every`, run concurrent refresh
// callers against live traffic, read from a streaming replica, probe every
// meshtop object's privileges, plant hostile objects in a caller's
// search_path, feed hostile schema names and password-carrying DSNs through
// every error path, and fuzz the parsers of user input.
//
// Set RELIABILITY_REPORT=path to have the tests write their counts as JSON;
// `go run ./data/reliability/gendoc` runs the suite and the fuzz targets and
// rewrites docs/RELIABILITY.md from those counts.
package reliability
