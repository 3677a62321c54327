// loupe-http-bench: a tiny LoupeHTTP server for wrk, the same routes as the peers in
// shared/anchors/http (GET /health → {"status":"ok"}, POST /echo → {"length":N}).
//
//   loupe-http-bench [--port 8084] [--host 127.0.0.1] [--loops N] [--handlers N] [--inline]
//                    [--tls-cert cert.pem --tls-key key.pem] [--dispatch-probe] [--spin-us N]
//
// --inline runs the handler on the event loop (runHandlersOnEventLoop); the default hands each
// request to the handler threads like `loupe serve` does. Stops on SIGINT/SIGTERM.

import Dispatch
import LoupeHTTP
#if canImport(Glibc)
import Glibc
#endif

var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 8084)
var dispatchProbe = false
var tlsCert: String?
var tlsKey: String?
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    func value() -> String {
        guard let v = args.popFirst() else { print("missing value"); exit(2) }
        return v
    }
    switch arg {
    case "--port": configuration.port = Int(value()) ?? 8084
    case "--host": configuration.host = value()
    case "--loops": configuration.eventLoopThreads = Int(value()) ?? 1
    case "--handlers": configuration.handlerThreads = Int(value()) ?? 1
    case "--inline": configuration.runHandlersOnEventLoop = true
    case "--dispatch-probe": dispatchProbe = true
    case "--protocol":
        ProtocolBench.run()
        exit(0)
    case "--spin-us": configuration.responseSpinWait = (Double(value()) ?? 0) / 1e6
    case "--tls-cert": tlsCert = value()
    case "--tls-key": tlsKey = value()
    default:
        print("usage: loupe-http-bench [--port N] [--host H] [--loops N] [--handlers N] [--inline] [--spin-us N] [--dispatch-probe] [--protocol] [--tls-cert F --tls-key F]")
        exit(2)
    }
}
if let tlsCert, let tlsKey {
    configuration.tls = TLSConfiguration(certificateChainPath: tlsCert, privateKeyPath: tlsKey)
}

let health = Array(#"{"status":"ok"}"#.utf8)
let handler: HTTPHandler = { request, sink in
    switch (request.method, request.path) {
    case (.GET, "/health"), (.HEAD, "/health"):
        sink.respond(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: health))
    case (.POST, "/echo"):
        sink.respond(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                  body: Array("{\"length\":\(request.body.count)}".utf8)))
    default:
        sink.respond(HTTPResponse(status: 404, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                  body: Array(#"{"error":"not found","code":"not_found"}"#.utf8)))
    }
}
if dispatchProbe { runDispatchProbe(port: configuration.port, queues: configuration.eventLoopThreads, handler: handler) }
let server = try HTTPServer(configuration: configuration, handler: handler)
try server.start()
print("loupe-http-bench listening on \(configuration.host):\(server.port) loops=\(configuration.eventLoopThreads) handlers=\(configuration.runHandlersOnEventLoop ? "inline" : String(configuration.handlerThreads))")

signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signals = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .main) }
for s in signals {
    s.setEventHandler {
        server.beginShutdown(deadline: .seconds(5))
        DispatchQueue.global().async {
            server.waitUntilStopped()
            exit(0)
        }
    }
    s.resume()
}
dispatchMain()
