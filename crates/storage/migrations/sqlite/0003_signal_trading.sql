-- Signals into orders: per-channel auto-trading (off by default), strategy/ML signals, and the brackets (entry,
-- protective stop, take-profits) each signal opened, as JSON state.
ALTER TABLE tp_channels ADD COLUMN auto_trade INTEGER NOT NULL DEFAULT 0;

CREATE TABLE model_signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    confidence REAL NOT NULL,
    price_target BIGINT,
    stop_loss BIGINT,
    model_version TEXT NOT NULL,
    decision TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE signal_brackets (
    key TEXT PRIMARY KEY,
    closed INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
