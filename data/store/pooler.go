package store

import "errors"

// ErrNeedsSession is what every command that needs a server session
// answers through a transaction pooler (Supabase's port 6543), before it
// touches anything: a refresh takes a session advisory lock (the guard) in
// one transaction and refreshes in the next, which a pooler may run on
// another server session, leaving the lock on a pooled one; LISTEN hears
// nothing once its transaction's session goes back to the pool; install and
// uninstall take session locks too. Reads do work (see conn.OpenDetect).
var ErrNeedsSession = errors.New("through a transaction pooler: reading works; refresh, cancel, install and LISTEN need a session — use the direct or session-pooler URL, port 5432")

// ErrPreparedStatements is a prepared statement that a pooler lost or
// duplicated (SQLSTATE 26000 or 42P05 on pgx's own stmtcache_… statements):
// a transaction pooler that conn.OpenDetect did not recognise. The wrapped
// error names neither pgx's statement nor the SQLSTATE.
var ErrPreparedStatements = errors.New("prepared statements do not survive this connection's pooler (a transaction pooler): add default_query_exec_mode=exec to the connection string, or use the direct or session-pooler URL, port 5432")

// ThroughTransactionPooler reports whether Options.TransactionPooler is set:
// the Store only reads.
func (s *Store) ThroughTransactionPooler() bool { return s.opts.TransactionPooler }

// needSession returns ErrNeedsSession through a transaction pooler.
func (s *Store) needSession() error {
	if s.opts.TransactionPooler {
		return ErrNeedsSession
	}
	return nil
}
