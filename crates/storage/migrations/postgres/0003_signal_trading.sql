-- Signals into orders: per-channel auto-trading (off by default), strategy/ML signals, and the brackets (entry,
-- protective stop, take-profits) each signal opened, as JSON state.
ALTER TABLE tp_channels ADD COLUMN auto_trade BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE model_signals (
    id BIGSERIAL PRIMARY KEY,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    confidence DOUBLE PRECISION NOT NULL,
    price_target BIGINT,
    stop_loss BIGINT,
    model_version TEXT NOT NULL,
    decision TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE signal_brackets (
    key TEXT PRIMARY KEY,
    closed BOOLEAN NOT NULL DEFAULT FALSE,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
