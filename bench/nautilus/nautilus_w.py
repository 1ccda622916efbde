"""W1-W3 on NautilusTrader 1.231.0, reading the same Parquet files our backtest reads.

W1: quote ticks, SMA(100) of the mid, go long above / short below on a cross with a market order for the
difference to +-1 lot (a flip is twice the size), at least `hold` ticks between signals. W2: the same quotes, a
strategy that does nothing. W3: W1 on trade ticks (the SMA of the trade price).

Prints one JSON line: events, run-phase seconds (engine.run only), events/s, orders, load seconds.
Usage: python nautilus_w.py W1|W2|W3 MARKET_DIR [SYMBOL]
"""

import json
import sys
import time
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.model.currencies import BRL
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler, TradeTickDataWrangler
from nautilus_trader.trading.strategy import Strategy


class CrossConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    period: int = 100
    hold: int = 1000
    lot: int = 100
    trades: bool = False
    idle: bool = False


class SmaCross(Strategy):
    def __init__(self, config: CrossConfig) -> None:
        super().__init__(config)
        self.sma = SimpleMovingAverage(config.period)
        self.side = 0
        self.since = 0
        self.signalled = False
        self.position = 0
        self.orders = 0

    def on_start(self) -> None:
        if self.config.trades:
            self.subscribe_trade_ticks(self.config.instrument_id)
        else:
            self.subscribe_quote_ticks(self.config.instrument_id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self.config.idle:
            return
        self.on_price((tick.bid_price.as_double() + tick.ask_price.as_double()) / 2.0)

    def on_trade_tick(self, tick: TradeTick) -> None:
        if self.config.idle:
            return
        self.on_price(tick.price.as_double())

    def on_price(self, price: float) -> None:
        # The same rule as our sma_cross with fast=1 (the price itself) and slow=period.
        self.since += 1
        self.sma.update_raw(price)
        if not self.sma.initialized:
            return
        slow = self.sma.value
        if price > slow:
            side = 1
        elif price < slow:
            side = -1
        else:
            return
        crossed = self.side != 0 and side != self.side
        self.side = side
        if not crossed or (self.signalled and self.since < self.config.hold):
            return
        self.signalled = True
        self.since = 0
        delta = self.config.lot * side - self.position
        if delta == 0:
            return
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY if delta > 0 else OrderSide.SELL,
            quantity=Quantity.from_int(abs(delta)),
        )
        self.submit_order(order)
        self.position += delta
        self.orders += 1


def load(kind: str, market: str, symbol: str, instrument):
    t0 = time.perf_counter()
    path = f"{market}/{'trades' if kind == 'trades' else 'quotes'}"
    table = pq.read_table(path, filters=[("symbol", "=", symbol)])
    df = table.to_pandas()
    if kind == "trades":
        df = pd.DataFrame(
            {
                "price": df["price"].astype(float).to_numpy(),
                "quantity": df["quantity"].astype(float).to_numpy(),
                "side": ["BUY" if a == "B" else "SELL" for a in df["aggressor"].astype(str)],
                "trade_id": df["trade_id"].astype(str).to_numpy(),
            },
            index=pd.DatetimeIndex(df["exchange_ts"], name="timestamp"),
        )
        ticks = TradeTickDataWrangler(instrument).process(df)
    else:
        df = pd.DataFrame(
            {
                # Plain arrays: Series would be aligned on their own index against the timestamps (all NaN).
                "bid_price": df["bid_price"].astype(float).to_numpy(),
                "ask_price": df["ask_price"].astype(float).to_numpy(),
                "bid_size": df["bid_quantity"].astype(float).to_numpy(),
                "ask_size": df["ask_quantity"].astype(float).to_numpy(),
            },
            index=pd.DatetimeIndex(df["ts"], name="timestamp"),
        ).dropna()
        ticks = QuoteTickDataWrangler(instrument).process(df)
    return ticks, time.perf_counter() - t0


def main() -> None:
    workload, market = sys.argv[1], sys.argv[2]
    symbol = sys.argv[3] if len(sys.argv) > 3 else "PETR4"
    venue = Venue("BVMF")
    instrument = Equity(
        instrument_id=InstrumentId(Symbol(symbol), venue),
        raw_symbol=Symbol(symbol),
        currency=BRL,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(100),
        ts_event=0,
        ts_init=0,
    )
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        starting_balances=[Money(10_000_000, BRL)],
        base_currency=BRL,
        default_leverage=Decimal(1),
    )
    engine.add_instrument(instrument)
    trades = workload == "W3"
    ticks, load_s = load("trades" if trades else "quotes", market, symbol, instrument)
    engine.add_data(ticks)
    strategy = SmaCross(CrossConfig(instrument_id=instrument.id, trades=trades, idle=workload == "W2"))
    engine.add_strategy(strategy)
    t0 = time.perf_counter()
    engine.run()
    run_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": "nautilus_trader 1.231.0",
                "workload": workload,
                "events": len(ticks),
                "run_seconds": run_s,
                "events_per_second": len(ticks) / run_s,
                "orders": strategy.orders,
                "load_seconds": load_s,
            }
        )
    )


if __name__ == "__main__":
    main()
