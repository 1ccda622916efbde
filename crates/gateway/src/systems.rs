//! Health probes of the systems registry: each registered URL is asked for, and its status stored.

use chrono::Utc;
use storage::{Db, SystemRow, SystemStatus};

/// The HTTP client of the probes: no redirects are followed beyond reqwest's default, every probe times out.
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Probes `url`: 2xx/3xx online, another status error, no answer offline.
pub async fn probe(client: &reqwest::Client, url: &str) -> SystemStatus {
    match client.get(url).timeout(std::time::Duration::from_secs(3)).send().await {
        Ok(r) if r.status().is_success() || r.status().is_redirection() => SystemStatus::Online,
        Ok(_) => SystemStatus::Error,
        Err(_) => SystemStatus::Offline,
    }
}

/// Probes every registered system once and stores what each answered (`serve` runs this every minute).
pub async fn probe_all(db: Db, client: reqwest::Client) {
    let systems = match db.list_systems().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "system health probes: cannot read the registry");
            return;
        }
    };
    for s in systems {
        let status = probe(&client, &s.url).await;
        let s = SystemRow { status, last_check: Some(Utc::now()), ..s };
        if let Err(e) = db.update_system(&s).await {
            tracing::warn!(error = %e, "system health probe not stored");
        }
    }
}
