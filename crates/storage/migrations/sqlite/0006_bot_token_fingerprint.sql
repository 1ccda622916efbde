-- A registered bot's token is not kept: `token` holds `sha256:<hex>` of it (rewritten from any plaintext by
-- `Db::migrate`), `token_hint` what the API shows of it.
ALTER TABLE tp_bots ADD COLUMN token_hint TEXT NOT NULL DEFAULT '';
