"""Match orders with the engine: price-time priority, order types, self-trade prevention."""

from tradebook import BACKEND, Instrument, MatchingEngine, Order

btc = Instrument("BTC/USDT", tick_size="0.01", lot_size="0.001", min_notional="10")
engine = MatchingEngine([btc], self_trade_prevention="CANCEL_MAKER")

# A few resting sell orders from two market makers.
engine.submit(Order("a1", "SELL", "65000.00", "0.5", owner="maker-a"))
engine.submit(Order("b1", "SELL", "65000.00", "0.5", owner="maker-b"))  # same price, later: behind a1
engine.submit(Order("a2", "SELL", "65010.00", "1.0", owner="maker-a"))

# A buyer sweeps two levels: a1 first (older), then b1, then part of a2.
report = engine.submit(Order("t1", "BUY", "65010.00", "1.2", owner="taker"))
print(f"backend: {BACKEND}")
print(f"t1 {report.status.value}, filled {report.order.filled_quantity}")
for trade in report.trades:
    print(f"  trade {trade.id}: {trade.quantity} @ {trade.price} (maker {trade.maker_order_id})")

# maker-a buying into its own resting order: CANCEL_MAKER removes the resting one.
report = engine.submit(Order("a3", "BUY", "65010.00", "0.1", owner="maker-a"))
print(f"a3 {report.status.value}; cancelled by self-trade prevention: {[o.id for o in report.cancelled]}")

# Immediate-or-cancel and fill-or-kill.
engine.submit(Order("s1", "SELL", "65020.00", "0.3", owner="maker-b"))
ioc = engine.submit(Order("t2", "BUY", "65020.00", "1", time_in_force="IOC"))
print(f"IOC t2 {ioc.status.value}, filled {ioc.order.filled_quantity}")
fok = engine.submit(Order("t3", "BUY", "65020.00", "1", time_in_force="FOK"))
print(f"FOK t3 {fok.status.value}, trades {len(fok.trades)}")

print(engine.top_of_book())
