-- TP-Capital: Telegram channels and bots, parsed signals (prices in 1/10,000 units), the deleted archive, the
-- ingestion log.
CREATE TABLE tp_channels (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    channel_id TEXT NOT NULL UNIQUE,
    channel_type TEXT NOT NULL CHECK (channel_type IN ('source', 'destination')),
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tp_bots (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL,
    bot_type TEXT NOT NULL CHECK (bot_type IN ('sender', 'forwarder', 'ingestion', 'monitor')),
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tp_signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    ts TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    asset TEXT NOT NULL,
    side TEXT NOT NULL,
    signal_type TEXT NOT NULL,
    buy_min BIGINT,
    buy_max BIGINT,
    target_1 BIGINT,
    target_2 BIGINT,
    target_final BIGINT,
    stop BIGINT,
    targets TEXT NOT NULL,
    raw_message TEXT NOT NULL,
    UNIQUE (channel_id, message_id)
);
CREATE INDEX tp_signals_ts ON tp_signals (ts);

CREATE TABLE tp_signals_deleted (
    id BIGINT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    ts TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    asset TEXT NOT NULL,
    side TEXT NOT NULL,
    signal_type TEXT NOT NULL,
    buy_min BIGINT,
    buy_max BIGINT,
    target_1 BIGINT,
    target_2 BIGINT,
    target_final BIGINT,
    stop BIGINT,
    targets TEXT NOT NULL,
    raw_message TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    deleted_by TEXT NOT NULL
);

CREATE TABLE tp_ingest_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    level TEXT NOT NULL,
    channel_id TEXT,
    message_id BIGINT,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL
);
