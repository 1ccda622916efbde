//! The CSV export in the original system's layout: `;`-separated, pt-BR decimals, São Paulo local time.

use chrono_tz::America::Sao_Paulo;
use storage::SignalRow;

pub const HEADER: &str = "DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP";

/// `1,04`, `127850,00`, `0,2505`: at least two decimals, at most the four a price has, comma separated.
pub fn decimal(units: Option<i64>) -> String {
    let Some(u) = units else { return String::new() };
    let sign = if u < 0 { "-" } else { "" };
    let u = u.unsigned_abs();
    let mut frac = format!("{:04}", u % 10_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{},{frac}", u / 10_000)
}

pub fn line(s: &SignalRow) -> String {
    let when = s.ts.with_timezone(&Sao_Paulo).format("%d/%m/%Y %H:%M:%S");
    // A ticker never holds the separator, but a stored value is not trusted to be one.
    let asset = s.asset.replace([';', '\n', '\r'], " ");
    format!(
        "{when};{asset};{};{};{};{};{};{}",
        decimal(s.buy_min),
        decimal(s.buy_max),
        decimal(s.target_1),
        decimal(s.target_2),
        decimal(s.target_final),
        decimal(s.stop)
    )
}

pub fn export(rows: &[SignalRow]) -> String {
    let mut out = String::with_capacity(64 * (rows.len() + 1));
    out.push_str(HEADER);
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&line(r));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn pt_br_decimals_and_sao_paulo_time() {
        assert_eq!(decimal(Some(10_400)), "1,04");
        assert_eq!(decimal(Some(1_278_500_000)), "127850,00");
        assert_eq!(decimal(Some(2_505)), "0,2505");
        assert_eq!(decimal(None), "");
        let row = SignalRow {
            id: 1,
            channel_id: "-100".into(),
            message_id: 7,
            source: storage::SignalSource::TelegramWebhook,
            ts: chrono::Utc.with_ymd_and_hms(2025, 10, 7, 20, 25, 59).unwrap(),
            ingested_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            asset: "BEEFW655".into(),
            side: domain::order::Side::Buy,
            signal_type: storage::SignalType::Swing,
            buy_min: Some(2_500),
            buy_max: Some(2_700),
            target_1: Some(3_500),
            target_2: None,
            target_final: Some(20_000),
            stop: Some(1_600),
            targets: vec![3_500, 20_000],
            raw_message: String::new(),
        };
        assert_eq!(line(&row), "07/10/2025 17:25:59;BEEFW655;0,25;0,27;0,35;;2,00;0,16");
        assert!(export(&[row]).starts_with("DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP\r\n"));
    }
}
