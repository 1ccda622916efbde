//! The parts of the Telegram Bot API we use: `Update`/`Message` as JSON, and `getUpdates` long polling.

use crate::{Ingestor, OFFSET_KEY};
use serde::Deserialize;
use std::time::Duration;
use storage::{IngestOutcome, LogLevel};

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub chat: Chat,
    /// Unix time.
    pub date: i64,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub edited_message: Option<Message>,
    #[serde(default)]
    pub channel_post: Option<Message>,
    #[serde(default)]
    pub edited_channel_post: Option<Message>,
}

impl Update {
    /// The message it carries and whether it is an edit.
    pub fn message(&self) -> Option<(&Message, bool)> {
        self.channel_post
            .as_ref()
            .map(|m| (m, false))
            .or_else(|| self.edited_channel_post.as_ref().map(|m| (m, true)))
            .or_else(|| self.message.as_ref().map(|m| (m, false)))
            .or_else(|| self.edited_message.as_ref().map(|m| (m, true)))
    }
}

#[derive(Debug, Deserialize)]
struct ApiResponse<T> {
    ok: bool,
    #[serde(default)]
    result: Option<T>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// Always without its URL: the URL of a Bot API call holds the bot token.
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    #[error("Telegram answered {code}: {description}")]
    Api { code: i64, description: String },
    #[error("storage: {0}")]
    Store(#[from] storage::StoreError),
}

impl From<reqwest::Error> for PollError {
    fn from(e: reqwest::Error) -> Self {
        PollError::Http(e.without_url())
    }
}

/// Long polling settings. `api_base` is `https://api.telegram.org` in production and a local server in tests.
#[derive(Clone)]
pub struct PollConfig {
    pub api_base: String,
    pub token: String,
    /// `timeout` of getUpdates: how long Telegram holds the request open when there is nothing new.
    pub long_poll: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl std::fmt::Debug for PollConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollConfig")
            .field("api_base", &self.api_base)
            .field("token", &redact::MASK)
            .field("long_poll", &self.long_poll)
            .finish_non_exhaustive()
    }
}

impl PollConfig {
    pub fn new(api_base: &str, token: &str) -> PollConfig {
        redact::register(token);
        PollConfig {
            api_base: api_base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            long_poll: Duration::from_secs(25),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// One `getUpdates` round: fetches from the stored offset, handles each update in order and advances the stored
/// offset past each one only after it is handled. Returns how many updates were handled.
pub async fn poll_once(client: &reqwest::Client, cfg: &PollConfig, ingestor: &Ingestor) -> Result<usize, PollError> {
    let offset: i64 = ingestor.db().setting(OFFSET_KEY).await?.and_then(|s| s.parse().ok()).unwrap_or(0);
    let url = format!("{}/bot{}/getUpdates", cfg.api_base, cfg.token);
    let allowed = r#"["channel_post","edited_channel_post","message","edited_message"]"#;
    let resp = client
        .get(&url)
        .query(&[
            ("offset", offset.to_string()),
            ("timeout", cfg.long_poll.as_secs().to_string()),
            ("allowed_updates", allowed.to_string()),
        ])
        // Telegram holds a long poll up to `timeout`; half as long again covers a slow network.
        .timeout(cfg.long_poll + cfg.long_poll / 2 + Duration::from_secs(1))
        .send()
        .await?;
    let body: ApiResponse<Vec<serde_json::Value>> = resp.json().await?;
    if !body.ok {
        return Err(PollError::Api {
            code: body.error_code.unwrap_or(0),
            description: body.description.unwrap_or_else(|| "no description".into()),
        });
    }
    let updates = body.result.unwrap_or_default();
    let mut handled = 0;
    for raw in updates {
        let update_id = raw.get("update_id").and_then(serde_json::Value::as_i64);
        match serde_json::from_value::<Update>(raw) {
            Ok(update) => {
                ingestor.handle(&update, storage::SignalSource::TelegramPolling).await?;
            }
            Err(e) => {
                // A shape we cannot read is logged and skipped; holding the offset would stall the channel.
                tracing::warn!(error = %e, ?update_id, "unreadable Telegram update skipped");
                ingestor
                    .db()
                    .log_ingest(
                        LogLevel::Error,
                        None,
                        None,
                        IngestOutcome::Failed,
                        &format!("unreadable update {update_id:?}: {e}"),
                    )
                    .await?;
                metrics::counter!("ts_tp_messages_total", "outcome" => "failed", "channel" => "unknown").increment(1);
            }
        }
        if let Some(id) = update_id {
            ingestor.db().set_setting(OFFSET_KEY, &(id + 1).to_string()).await?;
        }
        handled += 1;
    }
    Ok(handled)
}

/// Polls until the task is dropped, backing off from `backoff_min` to `backoff_max` while Telegram or the
/// database fail.
pub async fn poll_forever(cfg: PollConfig, ingestor: Ingestor) {
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; Telegram polling is off");
            return;
        }
    };
    let mut delay = cfg.backoff_min;
    loop {
        match poll_once(&client, &cfg, &ingestor).await {
            Ok(_) => delay = cfg.backoff_min,
            Err(e) => {
                metrics::counter!("ts_tp_poll_errors_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Telegram polling failed");
                let _ = ingestor
                    .db()
                    .log_ingest(LogLevel::Error, None, None, IngestOutcome::PollError, &e.to_string())
                    .await;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cfg.backoff_max);
            }
        }
    }
}
