#!/usr/bin/env python3
"""A broker for the FIX adapter's tests: QuickFIX (the reference open-source FIX engine) as the acceptor, with a
small order book behind it.

It acknowledges, fills (market orders in two parts), rests limits and stops until a trade reaches them, answers
IOC/FOK, cancels, replaces, rejects orders above its size limit, answers status requests, and on command drops the
connection, refuses logons, skips sequence numbers, fills or expires orders. Commands arrive as JSON lines on a
control port; each gets one JSON line back.

    quickfix_broker.py --port P --control-port C --dir D [--sender BROKER] [--target TS]

Prints "READY" on stdout once both ports listen.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from decimal import Decimal

import quickfix as fix
import quickfix44 as fix44



class Order:
    def __init__(self, order_id, msg):
        self.order_id = order_id
        self.cl_ord_id = msg.getField(11)
        self.account = msg.getField(1) if msg.isSetField(1) else ""
        self.symbol = msg.getField(55)
        self.side = msg.getField(54)
        self.qty = int(msg.getField(38))
        self.ord_type = msg.getField(40)
        self.price = Decimal(msg.getField(44)) if msg.isSetField(44) else None
        self.stop = Decimal(msg.getField(99)) if msg.isSetField(99) else None
        self.tif = msg.getField(59) if msg.isSetField(59) else "0"
        self.cum = 0
        self.value = Decimal(0)
        self.status = "0"
        self.triggered = False

    def leaves(self):
        return 0 if self.status in ("2", "4", "8", "C") else self.qty - self.cum

    def avg(self):
        return (self.value / self.cum) if self.cum else Decimal(0)


class Broker(fix.Application):
    def __init__(self, size_limit):
        super().__init__()
        self.size_limit = size_limit
        self.lock = threading.RLock()
        self.session_id = None
        self.orders = {}
        self.by_cl = {}
        self.last = {}
        self.next_order = 1
        self.next_exec = 1
        self.refuse_logons = False
        self.received = []

    # --- QuickFIX callbacks
    def onCreate(self, sid):
        self.session_id = sid

    def onLogon(self, sid):
        pass

    def onLogout(self, sid):
        pass

    def toAdmin(self, msg, sid):
        pass

    def fromAdmin(self, msg, sid):
        if msg.getHeader().getField(35) == "A" and self.refuse_logons:
            raise fix.RejectLogon("logons are refused for now")

    def toApp(self, msg, sid):
        pass

    def fromApp(self, msg, sid):
        with self.lock:
            kind = msg.getHeader().getField(35)
            self.received.append(kind)
            if kind == "D":
                self.new_order(msg)
            elif kind == "F":
                self.cancel(msg)
            elif kind == "G":
                self.replace(msg)
            elif kind == "H":
                self.status(msg)
            else:
                rej = fix44.BusinessMessageReject()
                rej.setField(45, msg.getHeader().getField(34))
                rej.setField(372, kind)
                rej.setField(380, "3")
                rej.setField(58, "unsupported message type")
                if msg.isSetField(11):
                    rej.setField(379, msg.getField(11))
                self.send(rej)

    # --- the book
    def send(self, msg):
        fix.Session.sendToTarget(msg, self.session_id)

    def report(self, o, exec_type, cl_ord_id=None, orig=None, last_qty=0, last_px=None, text=None, reason=None):
        m = fix44.ExecutionReport()
        m.setField(37, o.order_id)
        m.setField(11, cl_ord_id or o.cl_ord_id)
        if orig:
            m.setField(41, orig)
        m.setField(17, "E%d" % self.next_exec)
        self.next_exec += 1
        m.setField(150, exec_type)
        m.setField(39, o.status)
        if o.account:
            m.setField(1, o.account)
        m.setField(55, o.symbol)
        m.setField(54, o.side)
        m.setField(38, str(o.qty))
        m.setField(40, o.ord_type)
        if o.price is not None:
            m.setField(44, str(o.price))
        if o.stop is not None:
            m.setField(99, str(o.stop))
        m.setField(59, o.tif)
        if last_qty:
            m.setField(32, str(last_qty))
            m.setField(31, str(last_px))
        m.setField(151, str(o.leaves()))
        m.setField(14, str(o.cum))
        m.setField(6, str(o.avg()))
        if reason is not None:
            m.setField(103, str(reason))
        if text:
            m.setField(58, text)
        m.setField(60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()))
        self.send(m)

    def fill(self, o, qty, px, report=True):
        o.cum += qty
        o.value += Decimal(qty) * px
        o.status = "2" if o.cum >= o.qty else "1"
        if report:
            self.report(o, "F", last_qty=qty, last_px=px)

    def marketable(self, o):
        last = self.last.get(o.symbol)
        if last is None:
            return None
        if o.ord_type in ("3", "4") and not o.triggered:
            return None
        if o.ord_type in ("1", "3"):
            return last
        if o.side == "1" and o.price >= last:
            return last
        if o.side == "2" and o.price <= last:
            return last
        return None

    def work(self, o):
        """Fills what the market allows: marketable orders in two parts, the rest per time in force."""
        px = self.marketable(o)
        if o.tif == "4":  # FOK
            if px is None:
                o.status = "4"
                self.report(o, "4", text="fill or kill: not filled")
            else:
                self.fill(o, o.leaves(), px)
            return
        if px is not None:
            leaves = o.leaves()
            first = leaves // 2 if leaves >= 2 else leaves
            self.fill(o, first, px)
            if o.tif == "3":  # IOC: only the first part, the rest is canceled
                if o.leaves():
                    o.status = "4"
                    self.report(o, "4", text="immediate or cancel: remainder canceled")
                return
            if o.leaves():
                self.fill(o, o.leaves(), px)
        elif o.tif == "3":
            o.status = "4"
            self.report(o, "4", text="immediate or cancel: nothing to trade")
        elif o.ord_type == "1" or (o.ord_type == "3" and o.triggered):
            o.status = "4"
            self.report(o, "4", text="no price to trade at")

    def new_order(self, msg):
        o = Order("O%d" % self.next_order, msg)
        self.next_order += 1
        if o.cl_ord_id in self.by_cl:
            o.status = "8"
            self.report(o, "8", text="duplicate ClOrdID", reason=6)
            return
        self.orders[o.order_id] = o
        self.by_cl[o.cl_ord_id] = o
        if o.qty > self.size_limit:
            o.status = "8"
            self.report(o, "8", text="order exceeds the broker's size limit", reason=3)
            return
        self.report(o, "0")
        self.work(o)

    def find(self, msg):
        orig = msg.getField(41) if msg.isSetField(41) else None
        return self.by_cl.get(orig) if orig else None

    def cancel_reject(self, msg, response_to, text, o=None):
        r = fix44.OrderCancelReject()
        r.setField(37, o.order_id if o else "NONE")
        r.setField(11, msg.getField(11))
        r.setField(41, msg.getField(41) if msg.isSetField(41) else "NONE")
        r.setField(39, o.status if o else "8")
        r.setField(434, response_to)
        r.setField(102, "1" if o is None else "0")
        r.setField(58, text)
        self.send(r)

    def cancel(self, msg):
        o = self.find(msg)
        if o is None or o.leaves() == 0:
            self.cancel_reject(msg, "1", "unknown order" if o is None else "too late to cancel", o)
            return
        new_cl = msg.getField(11)
        orig = o.cl_ord_id
        o.cl_ord_id = new_cl
        self.by_cl[new_cl] = o
        o.status = "4"
        self.report(o, "4", cl_ord_id=new_cl, orig=orig)

    def replace(self, msg):
        o = self.find(msg)
        if o is None or o.leaves() == 0:
            self.cancel_reject(msg, "2", "unknown order" if o is None else "too late to replace", o)
            return
        qty = int(msg.getField(38))
        if qty <= o.cum or qty > self.size_limit:
            self.cancel_reject(msg, "2", "quantity must stay above what is filled and within the limit", o)
            return
        new_cl = msg.getField(11)
        orig = o.cl_ord_id
        o.cl_ord_id = new_cl
        self.by_cl[new_cl] = o
        o.qty = qty
        if msg.isSetField(44):
            o.price = Decimal(msg.getField(44))
        if msg.isSetField(99):
            o.stop = Decimal(msg.getField(99))
        o.status = "1" if o.cum else "0"
        self.report(o, "5", cl_ord_id=new_cl, orig=orig)
        self.work(o)

    def status(self, msg):
        cl = msg.getField(11)
        o = self.by_cl.get(cl)
        if o is None:
            m = fix44.ExecutionReport()
            m.setField(37, "NONE")
            m.setField(11, cl)
            m.setField(17, "E%d" % self.next_exec)
            self.next_exec += 1
            m.setField(150, "I")
            m.setField(39, "8")
            m.setField(55, msg.getField(55) if msg.isSetField(55) else "UNKNOWN")
            m.setField(54, msg.getField(54) if msg.isSetField(54) else "1")
            m.setField(151, "0")
            m.setField(14, "0")
            m.setField(6, "0")
            m.setField(103, "5")
            m.setField(58, "unknown order")
            self.send(m)
            return
        self.report(o, "I", cl_ord_id=o.cl_ord_id)

    def trade(self, symbol, px):
        self.last[symbol] = px
        for o in list(self.orders.values()):
            if o.symbol != symbol or o.leaves() == 0:
                continue
            if o.ord_type in ("3", "4") and not o.triggered:
                hit = (o.side == "1" and px >= o.stop) or (o.side == "2" and px <= o.stop)
                if not hit:
                    continue
                o.triggered = True
            self.work(o)

    # --- control
    def command(self, c):
        with self.lock:
            cmd = c.get("cmd")
            session = fix.Session.lookupSession(self.session_id)
            if cmd == "status":
                return {
                    "logged_on": bool(session and session.isLoggedOn()),
                    "next_sender": session.getExpectedSenderNum() if session else 0,
                    "next_target": session.getExpectedTargetNum() if session else 0,
                    "received": self.received,
                    "orders": {
                        o.order_id: {"cl_ord_id": o.cl_ord_id, "qty": o.qty, "cum": o.cum, "status": o.status,
                                     "price": str(o.price) if o.price is not None else None, "account": o.account}
                        for o in self.orders.values()
                    },
                }
            if cmd == "price":
                self.trade(c["symbol"], Decimal(str(c["price"])))
                return {}
            if cmd == "disconnect":
                session.disconnect()
                return {}
            if cmd == "refuse_logons":
                self.refuse_logons = bool(c.get("on", True))
                return {}
            if cmd == "skip":
                session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + int(c["n"]))
                return {}
            if cmd == "fill":
                o = self.orders[c["order_id"]]
                # "report": false executes without telling anyone: a report lost on the way.
                self.fill(o, int(c["qty"]), Decimal(str(c["price"])), report=c.get("report", True))
                return {}
            if cmd == "expire":
                for o in self.orders.values():
                    if o.leaves() and o.tif == "0":
                        o.status = "C"
                        self.report(o, "C", text="end of day")
                return {}
            return {"error": "unknown command %r" % cmd}


def control_socket(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    return srv


def serve_control(app, srv, stop):

    def client(conn):
        f = conn.makefile("rw")
        for line in f:
            try:
                out = app.command(json.loads(line))
            except Exception as e:  # a bad command is answered, never fatal
                out = {"error": repr(e)}
            f.write(json.dumps(out) + "\n")
            f.flush()
            if stop.is_set():
                break
        conn.close()

    while not stop.is_set():
        conn, _ = srv.accept()
        threading.Thread(target=client, args=(conn,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sender", default="BROKER")
    ap.add_argument("--target", default="TS")
    ap.add_argument("--size-limit", type=int, default=100_000)
    args = ap.parse_args()
    dictionary = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    if not os.path.exists(dictionary):
        print("FIX44.xml not found at %s" % dictionary, file=sys.stderr)
        sys.exit(2)
    os.makedirs(args.dir, exist_ok=True)
    cfg = os.path.join(args.dir, "acceptor.cfg")
    with open(cfg, "w") as f:
        f.write("[DEFAULT]\n")
        f.write("ConnectionType=acceptor\n")
        f.write("SocketAcceptPort=%d\n" % args.port)
        f.write("SocketReuseAddress=Y\n")
        f.write("FileStorePath=%s\n" % os.path.join(args.dir, "store"))
        f.write("FileLogPath=%s\n" % os.path.join(args.dir, "log"))
        f.write("NonStopSession=Y\n")
        f.write("UseDataDictionary=Y\n")
        f.write("DataDictionary=%s\n" % dictionary)
        f.write("PersistMessages=Y\n")
        f.write("ResetOnLogon=N\n")
        f.write("[SESSION]\n")
        f.write("BeginString=FIX.4.4\n")
        f.write("SenderCompID=%s\n" % args.sender)
        f.write("TargetCompID=%s\n" % args.target)
    app = Broker(args.size_limit)
    settings = fix.SessionSettings(cfg)
    acceptor = fix.SocketAcceptor(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    acceptor.start()
    stop = threading.Event()
    srv = control_socket(args.control_port)
    threading.Thread(target=serve_control, args=(app, srv, stop), daemon=True).start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin (or dies)
    finally:
        stop.set()
        acceptor.stop()


if __name__ == "__main__":
    main()
