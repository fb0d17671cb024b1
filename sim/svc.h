/*
 * svc.h - the simulated internet's services: one process, one libevent
 * loop, every HTTP, HTTPS, DNS, echo and banner server the test world
 * needs, described by one JSON config file.  Test code only: never linked
 * into egressd.
 *
 * Config (unknown keys are an error, so a typo fails at start):
 *
 * {
 *   "log": "/path/services.jsonl",    optional, "-" or absent: stdout
 *   "idle_timeout": 30,               optional, seconds; idle connections
 *                                     are closed after this long
 *   "http":  [ {"addr": "198.51.100.10", "port": 80} ],
 *   "https": [ {"addr": "198.51.100.10", "port": 443,
 *               "certs": [ {"cert": "a.pem", "key": "a.key"}, ... ]} ],
 *   "dns":   [ {"addr": "198.51.100.53", "port": 53, "ttl": 300,
 *               "zone": {"example.test": ["198.51.100.10"],
 *                        "*.sim.test": ["198.51.100.10"]}} ],
 *   "udp_echo":   [ {"addr": "203.0.113.10", "port": 9999} ],
 *   "tcp_echo":   [ {"addr": "203.0.113.10", "port": 7} ],
 *   "tcp_banner": [ {"addr": "203.0.113.10", "port": 25,
 *                    "banner": "220 sim ESMTP\r\n"} ]
 * }
 *
 * Addresses are numeric IPv4 or IPv6; bind a specific address, since UDP
 * replies leave from the bound one.  Relative paths (log, cert, key) are
 * relative to the config file's directory.  Several entries of a kind
 * are fine; DNS zone values are IPv4 addresses only.
 *
 * http/https: HTTP/1.1 with keep-alive and pipelining.  Every request gets
 * "200 OK", Content-Type text/plain and the body
 * "hello from <Host> <METHOD> <request-target>\n" (no body for HEAD);
 * request bodies are read and discarded; "Expect: 100-continue" is
 * honoured.  Malformed HTTP gets 400, headers over 32 KiB get 431; both
 * then close.  https picks the certificate whose subjectAltName DNS names
 * match the SNI (exact names first, then wildcards, then the first cert;
 * no or unknown SNI: the first cert).  TLS 1.2 or later.
 *
 * dns: authoritative over UDP and TCP on the same address and port.  Names
 * match case-insensitively; "*.x" matches any name below x (not x itself)
 * when no exact entry does, the longest wildcard winning.  A name in the
 * zone: A or ANY -> its addresses with the configured ttl (default 300),
 * any other type -> NOERROR and no answers.  Unknown name -> NXDOMAIN.
 * Responses are ignored; opcodes other than QUERY get NOTIMP; a query
 * without exactly one question FORMERR; a class other than IN or ANY
 * REFUSED.  Malformed queries get no answer (UDP) or close the connection
 * (TCP).
 *
 * tcp_echo echoes; tcp_banner sends its banner on accept, then echoes;
 * udp_echo sends each datagram back to its sender.
 *
 * Log: one compact JSON object per line, each written with one write() as
 * it happens, so readers may follow the file while the services run.
 * Common fields, in this order:
 *   ts     float, seconds since the epoch
 *   svc    http|https|dns|udp_echo|tcp_echo|tcp_banner
 *   proto  tcp|udp
 *   local  "ip:port" (IPv6: "[ip]:port")
 *   peer   "ip:port"
 *   event  see below
 * Events and their extra fields:
 *   start     all listeners are up (svc "svc", no proto/local/peer; pid)
 *   accept    written on accept, before any byte is read
 *   tls       handshake done: sni (string or null), cert (index)
 *   request   method, host (null if absent), path (the request-target
 *             as sent), status
 *   close     reason ("eof", "idle", "connection: close", "bad request:
 *             <llhttp reason>", "headers too large", "malformed query",
 *             "shutdown", an OpenSSL or socket error...), bytes_in,
 *             bytes_out
 *   query     name, qtype ("A", or "TYPE<n>" for types without a
 *             mnemonic), rcode ("NOERROR", ...), answers (addresses);
 *             a malformed query logs only error and bytes
 *   datagram  bytes
 *   stop      SIGTERM/SIGINT received (svc "svc")
 * Peer-supplied strings are logged as sent when they are valid UTF-8
 * without NUL; otherwise every byte outside printable ASCII, and the
 * backslash, is written as "\xNN".
 *
 * Robustness: any input is survivable; request headers are capped; idle
 * connections close after idle_timeout; a client that does not read its
 * responses stops being read from; on EMFILE/ENFILE accepting pauses and
 * resumes after a back-off instead of spinning.  A server-side close
 * lingers: after the last response (and a TLS close_notify) the socket is
 * shut down for writing and input is discarded until the peer's EOF or
 * 2 s, so a client still sending is not reset before it reads the answer.
 */
#ifndef EGRESS_SVC_H
#define EGRESS_SVC_H

/*
 * Loads config_path, binds every listener and serves until SIGTERM or
 * SIGINT, then frees everything and returns 0.  Returns -1 with a message
 * on stderr naming what failed if the config cannot be read or a listener,
 * certificate or the log cannot be set up.  Ignores SIGPIPE while it runs.
 * Runs its own event loop in the calling thread.
 */
int svc_main(const char *config_path);

#endif /* EGRESS_SVC_H */
