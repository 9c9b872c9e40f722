import PortalStorage

/// The audit database schema: an append-only event table, its full-text index and per-organization
/// hash-chain heads.
enum AuditMigrations {
    static let all: [SQLMigration] = [
        SQLMigration(
            version: 1, name: "events, full-text index, chain heads",
            statements: [
                """
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL UNIQUE,
                    org_id TEXT NOT NULL,
                    org_sequence BIGINT NOT NULL,
                    time BIGINT NOT NULL,
                    event_type TEXT NOT NULL,
                    action TEXT NOT NULL,
                    message TEXT NOT NULL,
                    user_name TEXT NOT NULL,
                    actor_member_id TEXT NOT NULL,
                    subject_kind TEXT NOT NULL,
                    subject_id TEXT NOT NULL,
                    previous_hash BLOB NOT NULL,
                    hash BLOB NOT NULL,
                    recorded_at BIGINT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX events_org_sequence ON events (org_id, org_sequence)",
                "CREATE INDEX events_org_time ON events (org_id, time, event_id)",
                "CREATE INDEX events_org_type_time ON events (org_id, event_type, time, event_id)",
                "CREATE INDEX events_org_user_time ON events (org_id, user_name, time, event_id)",
                "CREATE VIRTUAL TABLE events_fts USING fts5(message, user_name, content='events', content_rowid='seq')",
                """
                CREATE TRIGGER events_index_text AFTER INSERT ON events BEGIN
                    INSERT INTO events_fts (rowid, message, user_name) VALUES (new.seq, new.message, new.user_name);
                END
                """,
                "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
                "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
                """
                CREATE TABLE chain_heads (
                    org_id TEXT PRIMARY KEY,
                    last_sequence BIGINT NOT NULL,
                    last_hash BLOB NOT NULL
                )
                """,
            ],
            postgres: [
                """
                CREATE TABLE events (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    event_id TEXT NOT NULL UNIQUE,
                    org_id TEXT NOT NULL,
                    org_sequence BIGINT NOT NULL,
                    time BIGINT NOT NULL,
                    event_type TEXT NOT NULL,
                    action TEXT NOT NULL,
                    message TEXT NOT NULL,
                    user_name TEXT NOT NULL,
                    actor_member_id TEXT NOT NULL,
                    subject_kind TEXT NOT NULL,
                    subject_id TEXT NOT NULL,
                    previous_hash BYTEA NOT NULL,
                    hash BYTEA NOT NULL,
                    recorded_at BIGINT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX events_org_sequence ON events (org_id, org_sequence)",
                "CREATE INDEX events_org_time ON events (org_id, time, event_id)",
                "CREATE INDEX events_org_type_time ON events (org_id, event_type, time, event_id)",
                "CREATE INDEX events_org_user_time ON events (org_id, user_name, time, event_id)",
                """
                CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'audit events are append-only';
                END
                $$
                """,
                "CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only()",
                """
                CREATE TABLE chain_heads (
                    org_id TEXT PRIMARY KEY,
                    last_sequence BIGINT NOT NULL,
                    last_hash BYTEA NOT NULL
                )
                """,
            ]),
        SQLMigration(
            version: 2, name: "event counts per organization, type and user",
            statements: [
                """
                CREATE TABLE event_counts (
                    org_id TEXT NOT NULL,
                    dimension TEXT NOT NULL,
                    value TEXT NOT NULL,
                    n BIGINT NOT NULL,
                    PRIMARY KEY (org_id, dimension, value)
                )
                """,
                "INSERT INTO event_counts SELECT org_id, 'all', '', COUNT(*) FROM events GROUP BY org_id",
                "INSERT INTO event_counts SELECT org_id, 'type', event_type, COUNT(*) FROM events GROUP BY org_id, event_type",
                "INSERT INTO event_counts SELECT org_id, 'user', user_name, COUNT(*) FROM events GROUP BY org_id, user_name",
                """
                INSERT INTO event_counts SELECT org_id, 'type_user', event_type || '|' || user_name, COUNT(*) FROM events
                GROUP BY org_id, event_type, user_name
                """,
            ]),
        SQLMigration(
            version: 3, name: "full-text index scoped by organization",
            statements: [
                // A contentless index whose documents carry their organization as a token, so a search
                // can be counted and driven within one organization by the index alone.
                "DROP TRIGGER events_index_text",
                "DROP TABLE events_fts",
                "CREATE VIRTUAL TABLE events_fts USING fts5(message, user_name, org, content='')",
                "INSERT INTO events_fts (rowid, message, user_name, org) SELECT seq, message, user_name, 'o' || lower(hex(org_id)) FROM events",
                """
                CREATE TRIGGER events_index_text AFTER INSERT ON events BEGIN
                    INSERT INTO events_fts (rowid, message, user_name, org) VALUES (new.seq, new.message, new.user_name, 'o' || lower(hex(new.org_id)));
                END
                """,
            ],
            postgres: [
                // Words as SQLite's FTS5 tokenizer sees them (runs of letters and digits, any case), in a
                // GIN index led by the organization (btree_gin), so a search stays within one organization.
                "CREATE EXTENSION IF NOT EXISTS btree_gin",
                """
                ALTER TABLE events ADD COLUMN search_words tsvector GENERATED ALWAYS AS
                    (to_tsvector('simple'::regconfig, regexp_replace(message || ' ' || user_name, '[^[:alnum:]]+', ' ', 'g'))) STORED
                """,
                "CREATE INDEX events_search ON events USING GIN (org_id, search_words)",
            ]),
        SQLMigration(
            version: 4, name: "webhooks and their delivery queue",
            statements: webhookTables(bytes: "BLOB", key: "INTEGER PRIMARY KEY AUTOINCREMENT"),
            postgres: webhookTables(bytes: "BYTEA", key: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")),
    ]

    /// The webhook tables in an engine's words for binary columns and an increasing key.
    private static func webhookTables(bytes: String, key: String) -> [String] {
        [
            """
            CREATE TABLE webhooks (
                webhook_id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                url TEXT NOT NULL,
                event_types TEXT NOT NULL,
                description TEXT NOT NULL,
                enabled INTEGER NOT NULL,
                secret \(bytes) NOT NULL,
                previous_secret \(bytes),
                previous_secret_expires_at BIGINT,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX webhooks_org ON webhooks (org_id, created_at)",
            """
            CREATE TABLE webhook_deliveries (
                seq \(key),
                delivery_id TEXT NOT NULL UNIQUE,
                webhook_id TEXT NOT NULL,
                org_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                org_sequence BIGINT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                last_status INTEGER NOT NULL,
                last_error TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                next_attempt_at BIGINT NOT NULL,
                finished_at BIGINT
            )
            """,
            "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq)",
            "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, seq) WHERE state = 'pending'",
        ]
    }
}
