-- placeholder.sql keeps the //go:embed queries/*.sql pattern non-empty.
SELECT 1;
