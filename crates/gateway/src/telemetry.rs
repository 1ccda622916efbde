//! The Prometheus recorder and the help text of every metric the services emit.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Installs the global recorder (once per process) and describes every metric.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    let seconds =
        [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    let counts = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("ts_journal_batch_records".into()), &counts))
        .and_then(|b| b.install_recorder())
        .map_err(|e| e.to_string())?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!("ts_http_requests_total", "HTTP requests by route, method and status.");
    describe_histogram!("ts_http_request_duration_seconds", Unit::Seconds, "HTTP request latency by route and method.");
    describe_counter!("ts_login_failures_total", "Failed logins.");
    describe_counter!("ts_orders_total", "Order submissions by result (accepted, rejected, invalid).");
    describe_counter!("ts_risk_rejections_total", "Orders rejected by the risk engine, by check code.");
    describe_counter!("ts_order_events_total", "Broker events applied to orders, by kind.");
    describe_counter!("ts_order_modifies_total", "Order modifies sent to the broker (cancel/replace).");
    describe_gauge!("ts_fix_logged_on", "1 while the FIX session is logged on, by session.");
    describe_counter!(
        "ts_fix_garbled_total",
        "Bytes from the FIX counterparty that were not a valid message (logout, reconnect)."
    );
    describe_counter!("ts_fix_rejects_sent_total", "Session-level Rejects (3) we sent.");
    describe_counter!("ts_fix_rejects_received_total", "Session-level Rejects (3) of our messages.");
    describe_counter!("ts_fix_resend_requests_sent_total", "ResendRequests we sent on a sequence gap.");
    describe_counter!("ts_fix_resend_requests_received_total", "ResendRequests the counterparty sent us.");
    describe_counter!(
        "ts_fix_sends_dropped_total",
        "Application messages not sent because the session went down first."
    );
    describe_counter!("ts_fix_log_errors_total", "Failed writes to the FIX message log.");
    describe_counter!("ts_fix_unknown_orders_total", "FIX messages about orders we do not know.");
    describe_counter!(
        "ts_fix_unbookable_fills_total",
        "FIX fills that could not be booked (missing or malformed fields)."
    );
    describe_counter!(
        "ts_fix_derived_fills_total",
        "Fills derived from a status answer because their report never arrived."
    );
    describe_counter!("ts_illegal_transitions_total", "Order events refused by the state machine.");
    describe_counter!("ts_duplicate_fills_total", "Fills ignored because their execution id was already applied.");
    describe_gauge!("ts_orders", "Orders by current status.");
    describe_gauge!("ts_open_orders", "Orders working at the broker or on their way there.");
    describe_gauge!("ts_kill_switch_active", "1 while the kill switch is active.");
    describe_gauge!("ts_daily_pnl_brl", "Daily P&L in BRL: realized today plus unrealized at the last trade.");
    describe_histogram!("ts_journal_fsync_seconds", Unit::Seconds, "Time to write and fdatasync one journal batch.");
    describe_histogram!("ts_journal_batch_records", "Records made durable by one fsync (group commit size).");
    describe_gauge!("ts_ws_clients", "Connected WebSocket clients.");
    describe_counter!("ts_ws_slow_consumers_total", "WebSocket clients disconnected for not reading fast enough.");
    describe_counter!("ts_bus_dropped_total", "Bus messages dropped because a subscriber's queue was full.");
    describe_counter!("ts_md_parquet_rows_total", "Market data rows written to Parquet, by dataset.");
    describe_counter!("ts_md_parquet_errors_total", "Failed Parquet writes, by dataset.");
    describe_histogram!(
        "ts_md_parquet_write_seconds",
        Unit::Seconds,
        "Time to write one batch of market data to Parquet."
    );
    describe_counter!("ts_md_trades_total", "Trades processed by Data Capture, by symbol and outcome.");
    describe_histogram!(
        "ts_md_tick_to_publish_seconds",
        Unit::Seconds,
        "From a trade's receive time to its publication on the bus."
    );
    describe_counter!("ts_md_gaps_total", "Trade-id sequence gaps detected, by symbol.");
    describe_counter!(
        "ts_md_book_gaps_total",
        "Book updates received after a missed one (book stale until the next snapshot), by symbol."
    );
    describe_gauge!("ts_md_feed_connected", "1 while the feed's market-data dimension is connected.");
    describe_gauge!("ts_md_trades_per_second", "Trades processed per second over the last 5 s, by symbol.");
    describe_counter!("ts_http_rate_limited_total", "Requests answered 429, by scope (api, login).");
    describe_counter!("ts_http_timeouts_total", "Requests answered 503 TIMEOUT.");
    describe_histogram!("ts_signal_parse_seconds", Unit::Seconds, "Time to parse one signal message.");
    describe_histogram!("ts_docs_search_seconds", Unit::Seconds, "Documentation search latency.");
    describe_counter!(
        "ts_tp_messages_total",
        "Telegram messages by outcome (parsed, updated, duplicate, ignored, unregistered, failed) and registered channel \
         (every chat that is not one shares the label 'unregistered')."
    );
    describe_counter!("ts_alerts_total", "Alerts raised for a person to look at now, by kind (unprotected_position).");
    describe_counter!(
        "ts_paper_broker_tape_lagged_total",
        "Tape events the paper broker skipped because it fell behind."
    );
    describe_counter!(
        "ts_oms_bus_updates_lagged_total",
        "Order Manager updates the bus bridge missed because it fell behind."
    );
    describe_counter!(
        "ts_auto_trade_refused_total",
        "Auto-traded signals refused because the auto-trade queue was full."
    );
    describe_counter!("ts_tp_poll_errors_total", "Failed Telegram getUpdates rounds (each followed by a backoff).");
    describe_histogram!(
        "ts_tp_ingest_lag_seconds",
        Unit::Seconds,
        "From a Telegram message's date to its ingestion, by source (polling, webhook)."
    );
}
