-- Changes a follower of the change feed (the Tyk gateway outbox) gave up
-- applying, kept until `keylens tyk sync --fix` applies them: by the
-- change's sequence number, with why it was skipped.
CREATE TABLE skipped_changes (
	seq          BIGINT PRIMARY KEY,
	at           TEXT NOT NULL,
	kind         TEXT NOT NULL,
	developer_id TEXT NOT NULL,
	key_hash     TEXT NOT NULL,
	client_id    TEXT NOT NULL,
	reason       TEXT NOT NULL
);
