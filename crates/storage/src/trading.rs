//! Trading: strategy/ML signals and the state of the signal brackets (the Order Manager's orders are in its
//! journal, not here).

use crate::kinds::{get_enum, ModelDecision, SignalAction};
use crate::{fmt_ts, ts, Db, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A strategy/ML signal (`POST /api/v1/signals`). Prices in 1/10,000 units.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSignal {
    pub id: i64,
    pub symbol: String,
    pub action: SignalAction,
    pub confidence: f64,
    pub price_target: Option<i64>,
    pub stop_loss: Option<i64>,
    pub model_version: String,
    pub decision: ModelDecision,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Db {
    pub async fn insert_model_signal(&self, m: &ModelSignal) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO model_signals (symbol, action, confidence, price_target, stop_loss, model_version, decision, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&m.symbol)
        .bind(m.action.as_str())
        .bind(m.confidence)
        .bind(m.price_target)
        .bind(m.stop_loss)
        .bind(&m.model_version)
        .bind(m.decision.to_string())
        .bind(&m.created_by)
        .bind(fmt_ts(&m.created_at))
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub async fn set_model_signal_decision(&self, id: i64, decision: &ModelDecision) -> Result<(), StoreError> {
        sqlx::query("UPDATE model_signals SET decision = $1 WHERE id = $2")
            .bind(decision.to_string())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn list_model_signals(&self, limit: i64, offset: i64) -> Result<(Vec<ModelSignal>, i64), StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM model_signals").fetch_one(self.pool()).await?.try_get(0)?;
        let rows = sqlx::query("SELECT * FROM model_signals ORDER BY id DESC LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let list = rows
            .iter()
            .map(|r| {
                Ok(ModelSignal {
                    id: r.try_get("id")?,
                    symbol: r.try_get("symbol")?,
                    action: get_enum(r, "action", SignalAction::parse)?,
                    confidence: r.try_get("confidence")?,
                    price_target: r.try_get("price_target")?,
                    stop_loss: r.try_get("stop_loss")?,
                    model_version: r.try_get("model_version")?,
                    decision: get_enum(r, "decision", ModelDecision::parse)?,
                    created_by: r.try_get("created_by")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((list, total))
    }

    /// Stores a bracket's state (JSON) under its key.
    pub async fn save_bracket(&self, key: &str, closed: bool, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signal_brackets (key, closed, state, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET closed = $5, state = $6, updated_at = $7",
        )
        .bind(key)
        .bind(closed)
        .bind(state)
        .bind(fmt_ts(&Utc::now()))
        .bind(closed)
        .bind(state)
        .bind(fmt_ts(&Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn bracket(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM signal_brackets WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    pub async fn open_brackets(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT state FROM signal_brackets WHERE closed = $1")
            .bind(false)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strategy/ML signals and brackets, on SQLite and PostgreSQL.
    #[tokio::test]
    async fn trading_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
            let now = Utc::now();
            let m = ModelSignal {
                id: 0,
                symbol: "PETR4".into(),
                action: SignalAction::Buy,
                confidence: 0.72,
                price_target: Some(400_000),
                stop_loss: None,
                model_version: "v1".into(),
                decision: ModelDecision::Pending,
                created_by: "bot".into(),
                created_at: now,
            };
            let id = db.insert_model_signal(&m).await.unwrap();
            db.set_model_signal_decision(id, &ModelDecision::Rejected("stop above entry".into())).await.unwrap();
            let (list, total) = db.list_model_signals(10, 0).await.unwrap();
            assert_eq!(
                (total, &list[0].decision, list[0].action, list[0].confidence),
                (1, &ModelDecision::Rejected("stop above entry".into()), SignalAction::Buy, 0.72)
            );
            // A value this version does not know is an error naming its column, not a guess.
            sqlx::query("UPDATE model_signals SET decision = 'maybe' WHERE id = $1")
                .bind(id)
                .execute(db.pool())
                .await
                .unwrap();
            let err = db.list_model_signals(10, 0).await.unwrap_err().to_string();
            assert!(err.contains("decision"), "{err}");
            db.save_bracket("tp-1", false, "{}").await.unwrap();
            db.save_bracket("tp-1", false, "{\"a\":1}").await.unwrap();
            db.save_bracket("tp-2", true, "{}").await.unwrap();
            assert_eq!(db.open_brackets().await.unwrap(), vec!["{\"a\":1}".to_string()]);
            assert_eq!(db.bracket("tp-2").await.unwrap().as_deref(), Some("{}"));
        })
        .await;
    }
}
