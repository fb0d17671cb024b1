#!/usr/bin/env python3
"""udp_tool.py - UDP, DNS and ICMP clients (and a lying resolver) for
tests/netns/test_udp_dns.sh.  Standard library only; every command prints
one result line and exits 0 unless its arguments are wrong.

  send IP PORT N [--sport P] [--wait S]
        N datagrams from one socket; prints "echoes K"
  query IP NAME [--type A] [--sport P] [--id I] [--tcp] [--port 53]
        one DNS query; prints "rcode R answers A,B,..." or "timeout"
  raw IP PORT HEX [--tcp]
        sends the bytes (over TCP with the 2-byte length prefix);
        prints "reply N bytes" or "timeout"/"closed"
  ping IP
        one ICMP echo from a datagram ICMP socket; "reply" or "timeout"
  liar BIND_IP FORGE_FROM_IP
        a resolver on BIND_IP:53 that answers each query three times:
        a forgery from FORGE_FROM_IP with the right id (198.51.100.66),
        one from BIND_IP with a wrong id (198.51.100.67), then, 0.2 s
        later, the genuine answer (198.51.100.68); runs until killed
"""
import random
import socket
import struct
import sys
import time

TIMEOUT = 3.0


def qname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def build_query(name, qtype=1, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname_wire(
        name) + struct.pack(">HH", qtype, 1)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_answers(msg):
    qid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(rdata))
        elif rtype == 28 and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
    return qid, flags & 0xF, addrs


def opt(args, name, default=None, conv=str):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return conv(v)
    return default


def flag(args, name):
    if name in args:
        args.remove(name)
        return True
    return False


def recv_framed(s):
    buf = b""
    while len(buf) < 2:
        d = s.recv(2 - len(buf))
        if not d:
            return None
        buf += d
    n = struct.unpack(">H", buf)[0]
    body = b""
    while len(body) < n:
        d = s.recv(n - len(body))
        if not d:
            return None
        body += d
    return body


def cmd_send(args):
    sport = opt(args, "--sport", 0, int)
    wait = opt(args, "--wait", 1.0, float)
    ip, port, n = args[0], int(args[1]), int(args[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.connect((ip, port))
    echoes = 0
    for i in range(n):
        s.send(b"ping %d" % i)
        s.settimeout(wait)
        try:
            s.recv(2048)
            echoes += 1
        except (socket.timeout, ConnectionRefusedError):
            pass
    print("echoes %d" % echoes)


def cmd_query(args):
    qtype = {"A": 1, "AAAA": 28, "TXT": 16}[opt(args, "--type", "A")]
    sport = opt(args, "--sport", 0, int)
    qid = opt(args, "--id", None, int)
    port = opt(args, "--port", 53, int)
    tcp = flag(args, "--tcp")
    ip, name = args[0], args[1]
    q = build_query(name, qtype, qid)
    try:
        if tcp:
            s = socket.create_connection((ip, port), timeout=TIMEOUT)
            s.sendall(struct.pack(">H", len(q)) + q)
            r = recv_framed(s)
            if r is None:
                print("closed")
                return
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", sport))
            s.settimeout(TIMEOUT)
            s.sendto(q, (ip, port))
            r, _ = s.recvfrom(65535)
    except (socket.timeout, ConnectionRefusedError, ConnectionResetError):
        print("timeout")
        return
    rid, rcode, addrs = parse_answers(r)
    idok = "" if rid == struct.unpack(">H", q[:2])[0] else " id-mismatch"
    print("rcode %d answers %s%s" % (rcode, ",".join(addrs), idok))


def cmd_raw(args):
    tcp = flag(args, "--tcp")
    ip, port, data = args[0], int(args[1]), bytes.fromhex(args[2])
    try:
        if tcp:
            s = socket.create_connection((ip, port), timeout=TIMEOUT)
            s.sendall(struct.pack(">H", len(data)) + data)
            r = recv_framed(s)
            print("closed" if r is None else "reply %d bytes" % len(r))
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        s.sendto(data, (ip, port))
        r, _ = s.recvfrom(65535)
        print("reply %d bytes" % len(r))
    except (socket.timeout, ConnectionRefusedError, ConnectionResetError):
        print("timeout")


def cmd_ping(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(2.0)
    s.sendto(struct.pack(">BBHHH", 8, 0, 0, 0, 1) + b"egress", (args[0], 0))
    try:
        s.recvfrom(2048)
        print("reply")
    except socket.timeout:
        print("timeout")


def answer_for(query, addr, qid):
    hdr = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    question = query[12:]
    rr = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
    return hdr + question + rr


def cmd_liar(args):
    bind_ip, forge_ip = args[0], args[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, 53))
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind((forge_ip, 53))
    print("ready", flush=True)
    while True:
        q, peer = s.recvfrom(4096)
        qid = struct.unpack(">H", q[:2])[0]
        forger.sendto(answer_for(q, "198.51.100.66", qid), peer)
        s.sendto(answer_for(q, "198.51.100.67", qid ^ 0x5555), peer)
        time.sleep(0.2)
        s.sendto(answer_for(q, "198.51.100.68", qid), peer)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"send": cmd_send, "query": cmd_query, "raw": cmd_raw, "ping": cmd_ping,
     "liar": cmd_liar}[cmd](args)


if __name__ == "__main__":
    main()
