#!/usr/bin/env bash
# The transparent proxy end to end, egressd running in a world: HTTP judged
# per request (403, never forwarded), HTTPS intercepted with the client
# trusting only egressd's CA (path and method judged), SNI block aborting
# before any certificate, passthrough, insecure, upstream verification
# (502), TLS without SNI, a client rejecting the CA, raw TCP by address and
# a server-first banner after the wait, direct connections to the proxy
# port refused, hostile input, --strict-host, and attribution of each line
# to the real client process (host and container).  The services' own log
# proves which connections never reached a server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/egressd_lib.sh"
require_root
require_python3 "hostile-input clients"

W=$(world_name x)
check "up" world_up "$W" --containers 1
D=$(ed_dir "$W")
mkdir -p "$D"
SVC=/run/egress-sim/$W/services.jsonl
WCA=$("$SIM" ca "$W")
POL=$D/policy.txt
cat >"$POL" <<'EOF'
# the world's resolver; names of the simulated zone resolve (DNS only)
198.51.100.53:53/udp
dns:*.sim.test
example.test:80|443
[https://registry.sim.test]
/packages/*
[]
other.test passthrough
self-signed.sim.test insecure
expired.sim.test
198.51.100.14
203.0.113.10:7|25
198.51.100.10:8080
198.51.100.10:8800
www.example.test:9443
bulk.sim.test:9443 passthrough
[http://ws.test:8765]
/ws
/plain
EOF

egressd_world "$W"

H() { in_world "$W" host "$@"; }
# ---- bulk transfers: back-pressure, MITM and passthrough ----------------
# A server in the internet netns sends BULK (random bytes) over plain HTTP
# (:8800) and over TLS with the world's certificate (:9443).
BULK=$D/bulk.bin
head -c $((32 * 1024 * 1024)) /dev/urandom >"$BULK"
BULK_SUM=$(sha256sum <"$BULK" | cut -d' ' -f1)
in_world "$W" internet python3 - "$BULK" "/run/egress-sim/$W" >/dev/null 2>&1 <<'EOF' &
import socket, ssl, sys, threading, os
path, state = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(state + "/main.pem", state + "/main.key")
def serve(c):
    try:
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        with open(path, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                c.sendall(b)
        c.close()
    except OSError:
        pass
def listen(port, tls):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("198.51.100.10", port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        if tls:
            try:
                c = ctx.wrap_socket(c, server_side=True)
            except OSError:
                continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=listen, args=(9443, True), daemon=True).start()
listen(8800, False)
EOF
BULKSRV=$!
sleep 0.7
# bulk_get NAME CURL-ARGS...: sha256 of the download and its speed
bulk_get() {
	H curl -sS -m 60 -o "$D/bulk.out" -w '%{speed_download}' "$@" >"$D/bulk.speed" 2>/dev/null
	printf '%s %s' "$(sha256sum <"$D/bulk.out" | cut -d' ' -f1)" \
		"$(awk '{printf "%.0f", $1 / 1048576}' "$D/bulk.speed")"
	rm -f "$D/bulk.out"
}
direct_plain=$(bulk_get http://198.51.100.10:8800/bulk)
direct_tls=$(bulk_get --cacert "$WCA" --resolve www.example.test:9443:198.51.100.10 \
	https://www.example.test:9443/bulk)

check "egressd starts" egressd_start "$W" "$POL" --first-bytes-ms 700
ECA=$D/ca.pem # the egressd CA only

# accepts LOCAL: connections the service at LOCAL (ip:port) accepted so far
accepts() { grep -c "\"local\":\"$1\".*\"event\":\"accept\"" "$SVC"; }
# last_line: the log's newest line
last_line() {
	sleep 0.2
	ed_log "$W" | tail -n 1
}
H() { in_world "$W" host "$@"; }

# ---- plain HTTP --------------------------------------------------------
check_eq "allowed HTTP request passes" "hello from example.test GET /a?b=1" \
	"$(H curl -sS -m 5 'http://example.test/a?b=1')"
check_match "... logged as http allow with the full URL" \
	'"type":"http","dst_ip":"198.51.100.10","dst_port":80,"url":"http://example.test/a\?b=1","method":"GET","policy":"allow"' \
	"$(last_line)"
n=$(accepts 198.51.100.10:80)
out=$(H curl -sS -m 5 -i http://web.sim.test/blocked 2>&1)
check_match "blocked HTTP request gets 403 text/plain" \
	"HTTP/1.1 403.*Content-Type: text/plain.*Blocked by egress policy" \
	"$(tr -d '\r' <<<"$out" | tr '\n' ' ')"
check_eq "... and the server never saw a connection" "$n" "$(accepts 198.51.100.10:80)"
check_match "... logged as http deny" '"url":"http://web.sim.test/blocked","method":"GET","policy":"deny"' \
	"$(last_line)"
out=$(H curl -sS -m 5 --cacert "$D/ca.pem" -w '[%{http_code}]' \
	https://registry.sim.test/packages/1 https://registry.sim.test/2 \
	https://registry.sim.test/packages/3 2>&1 | tr -d '\n')
check_match "keep-alive: each request judged (allowed, blocked, allowed)" \
	"GET /packages/1\\[200\\]Blocked by egress policy\\[403\\]hello from registry.sim.test GET /packages/3\\[200\\]" \
	"$out"
pipe=$(H python3 - <<'EOF'
import socket
s = socket.create_connection(("198.51.100.10", 80), timeout=5)
s.sendall(b"GET /p1 HTTP/1.1\r\nHost: example.test\r\n\r\n"
          b"GET /p2 HTTP/1.1\r\nHost: example.test\r\n\r\n"
          b"GET /p3 HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.count(b"hello from example.test"), data.count(b"403 Forbidden"))
EOF
)
check_eq "pipelined requests: two answered, the third blocked" "2 1" "$pipe"
check_fails "... the blocked one never reached the server" grep -q '"path":"/p3"' "$SVC"
check_eq "HTTP to a remote port 8080 (the proxy's port number) is judged, not refused" \
	"hello from 198.51.100.10 GET /r" \
	"$(H curl -sS -m 5 -H 'Host: 198.51.100.10:8080' http://198.51.100.10:8080/r | sed 's/:8080//')"

# ---- HTTPS through MITM ------------------------------------------------
check_eq "HTTPS MITM, client trusting only the egressd CA: allowed host" \
	"hello from example.test GET /x" \
	"$(H curl -sS -m 5 --cacert "$ECA" https://example.test/x)"
check_match "... logged as https allow with the https URL" \
	'"type":"https","dst_ip":"198.51.100.10","dst_port":443,"url":"https://example.test/x","method":"GET","policy":"allow"' \
	"$(last_line)"
issuer=$(H curl -sS -m 5 -v --cacert "$ECA" -o /dev/null https://example.test/ 2>&1 | grep -i 'issuer:')
check_match "... the certificate is egressd's forged leaf" "egressd" "$issuer"
check_eq "allowed path (path rule under a URL header)" \
	"hello from registry.sim.test GET /packages/left-pad" \
	"$(H curl -sS -m 5 --cacert "$ECA" https://registry.sim.test/packages/left-pad)"
n=$(grep -c '"event":"request"' "$SVC")
check_eq "disallowed path gets 403" "403" \
	"$(H curl -sS -m 5 --cacert "$ECA" -o /dev/null -w '%{http_code}' https://registry.sim.test/admin)"
check_eq "disallowed method gets 403" "403" \
	"$(H curl -sS -m 5 --cacert "$ECA" -o /dev/null -w '%{http_code}' -X POST https://registry.sim.test/packages/x)"
check_eq "... neither request reached the server" "$n" "$(grep -c '"event":"request"' "$SVC")"
check_match "... logged as https deny with the method" \
	'"url":"https://registry.sim.test/packages/x","method":"POST","policy":"deny"' "$(last_line)"

# The client's Finished and three requests, one TLS record each, in one
# segment: egressd reads TLS ahead, so all of them may sit in OpenSSL's
# buffer with nothing more to come on the socket; each must still be
# judged, none left waiting (the first-bytes wait would judge it as tcp).
pipe=$(H python3 - "$ECA" <<'EOF'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.set_alpn_protocols(["http/1.1"])
s = socket.create_connection(("registry.sim.test", 443), timeout=5)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname="registry.sim.test")
while True:
    try:
        o.do_handshake()
        break
    except ssl.SSLWantReadError:
        s.sendall(out.read())
        d = s.recv(65536)
        if not d:
            sys.exit("EOF during the handshake")
        inc.write(d)
for p in ("/packages/1", "/packages/2", "/admin"):
    o.write(b"GET " + p.encode() + b" HTTP/1.1\r\nHost: registry.sim.test\r\n\r\n")
s.sendall(out.read())
data = b""
try:
    while True:
        try:
            d = o.read(65536)
            if not d:
                break  # close_notify
            data += d
            continue
        except ssl.SSLWantReadError:
            pass
        d = s.recv(65536)
        if not d:
            break
        inc.write(d)
except (ssl.SSLError, OSError):
    pass
print(data.count(b"hello from registry.sim.test GET /packages/"), data.count(b"403 Forbidden"))
EOF
)
check_eq "HTTPS: Finished and three requests in one segment: two answered, the third blocked" "2 1" "$pipe"

n=$(accepts 198.51.100.10:443)
out=$(H curl -sS -m 5 -v --cacert "$ECA" https://api.sim.test/ 2>&1)
rc=$?
check_eq "SNI block: the handshake is aborted (curl 35)" 35 "$rc"
check_fails "... before any certificate was sent" grep -qi "server certificate" <<<"$out"
check_eq "... and no upstream connection was made" "$n" "$(accepts 198.51.100.10:443)"
check_match "... logged as https deny with the host" \
	'"type":"https","dst_ip":"198.51.100.10","dst_port":443,"host":"api.sim.test","policy":"deny"' \
	"$(last_line)"

check_eq "passthrough delivers the upstream's own certificate (world CA verifies)" \
	"hello from other.test GET /" \
	"$(H curl -sS -m 5 --cacert "$WCA" https://other.test/)"
check_match "... logged once as https allow passthrough" \
	'"host":"other.test","policy":"allow","passthrough":true' "$(last_line)"
check_eq "insecure reaches the self-signed upstream" \
	"hello from self-signed.sim.test GET /" \
	"$(H curl -sS -m 5 --cacert "$ECA" https://self-signed.sim.test/)"
check_match "... first request marked insecure" \
	'"url":"https://self-signed.sim.test/","method":"GET","policy":"allow","insecure":true' \
	"$(last_line)"
out=$(H curl -sS -m 5 --cacert "$ECA" -w ' %{http_code}' https://expired.sim.test/ | tr '\n' ' ')
check_match "upstream verification failure: 502 with the reason" \
	"certificate verification failed.*expired.* 502" "$out"
check_match "... logged with tls_upstream_verify_failed" \
	'"url":"https://expired.sim.test/".*"error":"tls_upstream_verify_failed"' "$(last_line)"
check_eq "TLS without SNI (IP URL): a leaf for the address" \
	"hello from 198.51.100.14 GET /n" \
	"$(H curl -sS -m 5 --cacert "$ECA" https://198.51.100.14/n)"
check_match "... logged with the IP URL" '"url":"https://198.51.100.14/n"' "$(last_line)"
H curl -sS -m 5 -o /dev/null https://example.test/ 2>/dev/null
check_eq "a client rejecting the CA fails its handshake (curl 60)" 60 $?
check_match "... and the error line is written" \
	'"type":"https","dst_ip":"198.51.100.10","dst_port":443,"host":"example.test","policy":"allow","error":"tls_client_rejected_ca"' \
	"$(last_line)"
H curl -sS -m 5 -o /dev/null --resolve registry.sim.test:443:198.51.100.10 https://registry.sim.test/ 2>/dev/null
check_match "... policy without the URL fallback (host allowed only by URL rules: deny)" \
	'"host":"registry.sim.test","policy":"deny","error":"tls_client_rejected_ca"' "$(last_line)"

# ---- raw TCP -----------------------------------------------------------
check_eq "raw TCP judged by IP: echo" "ping-tcp" \
	"$(H bash -c 'echo ping-tcp | socat -t2 - TCP:203.0.113.10:7')"
check_match "... logged as tcp allow" '"type":"tcp","dst_ip":"203.0.113.10","dst_port":7,"policy":"allow"' \
	"$(last_line)"
t0=$(date +%s%N)
banner=$(H socat -T3 -u TCP:203.0.113.10:25 - 2>/dev/null | head -n1)
t1=$(date +%s%N)
check_match "server-first banner after the first-bytes wait" "^220 " "$banner"
check "... judged only after the wait (>= 0.6 s)" test $(((t1 - t0) / 1000000)) -ge 600
n=$(accepts 203.0.113.10:22)
H bash -c 'echo x | socat -t2 - TCP:203.0.113.10:22' >/dev/null 2>&1
check_eq "blocked raw TCP: closed, the server never saw it" "$n" "$(accepts 203.0.113.10:22)"
check_match "... logged as tcp deny" '"dst_port":22,"policy":"deny"' "$(last_line)"

# ---- direct connections to the proxy port ------------------------------
for a in 127.0.0.1 172.17.0.1 203.0.113.253; do
	H curl -sS -m 3 -o /dev/null "http://$a:8080/" 2>/dev/null
	rc=$?
	check "direct connection to the proxy on $a:8080 is refused (curl $rc)" \
		test "$rc" -eq 56 -o "$rc" -eq 52 -o "$rc" -eq 7
	check_match "... and logged as tcp deny" \
		"\"type\":\"tcp\",\"dst_ip\":\"$a\",\"dst_port\":8080,\"policy\":\"deny\"" "$(last_line)"
done
check_match "status counts the refusals" '"refused_self": 3' "$(ed_ctl "$W" status)"

# ---- attribution -------------------------------------------------------
pid=$(H bash -c 'echo $$ >/tmp/egress-proxy-pid.'"$$"'; exec curl -sS -m 5 -o /dev/null http://example.test/attrib'; cat /tmp/egress-proxy-pid.$$)
rm -f /tmp/egress-proxy-pid.$$
line=$(ed_log "$W" | grep '/attrib"' | tail -n1)
check_match "host process: the line carries its pid and exe" \
	"\"exe\":\"$(readlink -f "$(command -v curl)")\".*\"pid\":$pid}" "$line"
check_match "... and its cgroup" "\"cgroup\":\"/egress-sim/$W/host\"" "$line"
in_world "$W" container:0 curl -sS -m 5 -o /dev/null http://example.test/from-container
line=$(ed_log "$W" | grep '/from-container"' | tail -n1)
check_match "bridged container: proxied, attributed to its process and cgroup" \
	"\"cgroup\":\"/egress-sim/$W/docker/[0-9a-f]{64}\".*\"pid\":[0-9]+}" "$line"

# ---- hostile input -----------------------------------------------------
hostile=$(H python3 - <<'EOF'
import socket, struct, time, threading
def conn(port=443, ip="198.51.100.10"):
    return socket.create_connection((ip, port), timeout=5)
def outcome(s, t=3):
    s.settimeout(t)
    try:
        d = s.recv(65536)
        return "eof" if not d else d[:12].decode("latin1")
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
res = []
# truncated ClientHello, then EOF
s = conn(); s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"); s.shutdown(socket.SHUT_WR)
res.append("trunc:" + outcome(s)); s.close()
# oversized ClientHello (records past the 64 KiB cap): judged as tcp, denied
# (to an address no DNS answer named: the cache would name .10 example.test)
s = conn(ip="198.51.100.13")
body = b"\x01" + (70000).to_bytes(3, "big") + b"\x03\x03" + b"A" * 69996
try:
    for i in range(0, len(body), 16000):
        chunk = body[i:i + 16000]
        s.sendall(b"\x16\x03\x01" + struct.pack(">H", len(chunk)) + chunk)
except OSError:
    pass
res.append("big:" + outcome(s)); s.close()
# garbage after the request line
s = conn(80, "198.51.100.13"); s.sendall(b"GET / HTTP/1.1\r\n\x00\x01\x02garbage\r\n\r\n")
res.append("garbage:" + outcome(s)); s.close()
# huge headers
s = conn(80)
try:
    s.sendall(b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
except OSError:
    pass
res.append("huge:" + outcome(s)); s.close()
print(" ".join(res))
EOF
)
check_match "truncated ClientHello: closed without an answer" "trunc:(eof|reset)" "$hostile"
check_match "oversized ClientHello: closed (judged as tcp, denied)" "big:(eof|reset)" "$hostile"
check_match "garbage after the request line: closed (judged as tcp, denied)" "garbage:(eof|reset)" "$hostile"
check_match "huge headers: 431" "huge:HTTP/1.1 431" "$hostile"

# slowloris: 50 heads trickling in; others are served meanwhile
H python3 - >/dev/null 2>&1 <<'EOF' &
import socket, time
ss = []
for i in range(50):
    s = socket.create_connection(("198.51.100.10", 80), timeout=5)
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: example.test\r\n")
    ss.append(s)
for t in range(6):
    for s in ss:
        try:
            s.sendall(b"X")
        except OSError:
            pass
    time.sleep(0.5)
EOF
slow=$!
sleep 0.5
t0=$(date +%s%N)
out=$(H curl -sS -m 5 http://example.test/during-slowloris)
t1=$(date +%s%N)
check_eq "slowloris: another client is served meanwhile" \
	"hello from example.test GET /during-slowloris" "$out"
check "... quickly (< 1 s)" test $(((t1 - t0) / 1000000)) -lt 1000
wait "$slow"
check_eq "the proxy is still up after the hostile input" "hello from example.test GET /after" \
	"$(H curl -sS -m 5 http://example.test/after)"
check_fails "no hostile request reached a server" grep -q '"path":"/slow"' "$SVC"

r=$(bulk_get http://198.51.100.10:8800/bulk)
check_eq "bulk 32 MiB over plain HTTP through the proxy, intact" "$BULK_SUM" "${r% *}"
echo "# bulk plain: direct ${direct_plain#* } MiB/s, through egressd ${r#* } MiB/s"
r=$(bulk_get --cacert "$ECA" --resolve www.example.test:9443:198.51.100.10 \
	https://www.example.test:9443/bulk)
check_eq "bulk 32 MiB through MITM, intact" "$BULK_SUM" "${r% *}"
echo "# bulk TLS: direct ${direct_tls#* } MiB/s, through MITM ${r#* } MiB/s"
r=$(bulk_get --cacert "$WCA" --resolve bulk.sim.test:9443:198.51.100.10 \
	https://bulk.sim.test:9443/bulk)
check_eq "bulk 32 MiB through passthrough, intact" "$BULK_SUM" "${r% *}"
echo "# bulk TLS: through passthrough ${r#* } MiB/s"
kill "$BULKSRV" 2>/dev/null
wait "$BULKSRV" 2>/dev/null
rm -f "$BULK"

# ---- Upgrade ------------------------------------------------------------
# A small server in the internet netns: 101 and an echo for an Upgrade to
# /ws, a plain keep-alive answer otherwise.
in_world "$W" internet python3 - >/dev/null 2>&1 <<'EOF' &
import socket, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("198.51.100.10", 8765))
ls.listen(16)
def serve(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        if head.startswith(b"GET /ws ") and b"upgrade: websocket" in head.lower():
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            if buf:
                c.sendall(b"echo:" + buf)
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(b"echo:" + d)
        body = b"plain " + head.split(b" ")[1]
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
wssrv=$!
sleep 0.5
ws=$(H python3 - <<'EOF'
import socket
def talk(reqs):
    s = socket.create_connection(("198.51.100.10", 8765), timeout=3)
    out = []
    for r in reqs:
        s.sendall(r)
        try:
            out.append(s.recv(65536).decode("latin1").replace("\r\n", "|"))
        except OSError:
            out.append("ERR")
    s.close()
    return out
up = (b"GET /ws HTTP/1.1\r\nHost: ws.test:8765\r\nConnection: Upgrade\r\n"
      b"Upgrade: websocket\r\n\r\n")
a = talk([up, b"raw bytes, not HTTP\n"])
print("A", a[0].split("|")[0], a[1])
refused = (b"GET /plain HTTP/1.1\r\nHost: ws.test:8765\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\n\r\n")
b = talk([refused, b"GET /secret HTTP/1.1\r\nHost: ws.test:8765\r\n\r\n"])
print("B", b[0].split("|")[0], b[1].split("|")[0])
EOF
)
check_match "Upgrade: judged, then relayed raw after 101" \
	"A HTTP/1.1 101 Switching Protocols echo:raw bytes, not HTTP" "$ws"
check_match "Upgrade refused by the server (200): judging goes on (403 next)" \
	"B HTTP/1.1 200 OK HTTP/1.1 403 Forbidden" "$ws"
check_match "... the request after it logged as denied" \
	'"url":"http://ws.test:8765/secret","method":"GET","policy":"deny"' "$(last_line)"
kill "$wssrv" 2>/dev/null
wait "$wssrv" 2>/dev/null

# ---- fd exhaustion ------------------------------------------------------
soft=$(prlimit --pid "$EGRESSD_PID" --nofile --noheadings --output SOFT | xargs)
prlimit --pid "$EGRESSD_PID" --nofile=48:
cpu() { awk '{print $14 + $15}' "/proc/$EGRESSD_PID/stat"; }
c0=$(cpu)
H python3 - >/dev/null 2>&1 <<'EOF'
import socket, time
ss = []
for i in range(100):
    try:
        s = socket.create_connection(("203.0.113.10", 7), timeout=3)
        s.sendall(b"x\n")
        ss.append(s)
    except OSError:
        pass
time.sleep(2)
for s in ss:
    s.close()
EOF
c1=$(cpu)
check_match "EMFILE: accepts pause with back-off" "pausing accepts" "$(cat "$D/egressd.err")"
check "... without spinning (< 0.5 s CPU in 2 s exhausted; used $((c1 - c0)) ticks)" \
	test $((c1 - c0)) -lt 50
prlimit --pid "$EGRESSD_PID" --nofile="$soft:"
sleep 1.2
check_eq "... and service resumes once fds are back" \
	"hello from example.test GET /after-emfile" \
	"$(H curl -sS -m 5 http://example.test/after-emfile)"

# ---- --strict-host -----------------------------------------------------
egressd_stop "$W"
printf 'example.test:80\n198.51.100.10:80\n%s' "$DNS_RULES" >"$POL"
check "egressd restarts with --strict-host" egressd_start "$W" "$POL" --strict-host \
	--idle-timeout 2
check_eq "strict host: Host example.test to an address it does not resolve to: 403" 403 \
	"$(H curl -sS -m 5 -o /dev/null -w '%{http_code}' --resolve example.test:80:203.0.113.10 http://example.test/fronted)"
check_fails "... never reached the server" grep -q '"path":"/fronted"' "$SVC"
check_eq "strict host: the destination address itself allowed: 200" 200 \
	"$(H curl -sS -m 5 -o /dev/null -w '%{http_code}' http://example.test/direct)"
idle=$(H python3 - <<'EOF'
import socket, time
s = socket.create_connection(("198.51.100.10", 80), timeout=8)
s.sendall(b"GET /idle HTTP/1.1\r\nHost: 198.51.100.10\r\n\r\n")
s.recv(65536)
t = time.time()
try:
    rest = s.recv(65536)
    print("eof" if not rest else "data", round(time.time() - t, 1))
except OSError as e:
    print(type(e).__name__, round(time.time() - t, 1))
EOF
)
check_match "idle timeout (2 s): an idle keep-alive connection is closed" \
	"^(eof|ConnectionResetError) [1-3]\." "$idle"
egressd_stop "$W"
printf 'example.test:80\n%s' "$DNS_RULES" >"$POL"
check "egressd restarts without --strict-host" egressd_start "$W" "$POL"
check_eq "without it, the reference's behaviour: the Host is trusted" 200 \
	"$(H curl -sS -m 5 -o /dev/null -w '%{http_code}' --resolve example.test:80:203.0.113.10 http://example.test/fronted2)"

check_eq "one line per judged request or connection, none lost" \
	"$(ed_log "$W" | wc -l)" "$(ed_log "$W" | grep -c '^{"ts":".*Z","type":"\(http\|https\|tcp\|dns\|dns_response\|udp\)",')"
finish
