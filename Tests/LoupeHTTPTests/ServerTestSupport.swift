// Servers for the LoupeHTTP tests (the client is LoupeTestSupport's TestClient).

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
@testable import LoupeHTTP

/// A server on 127.0.0.1 port 0 with small limits, shut down by `stop()`.
func makeServer(_ tweak: (inout HTTPServerConfiguration) -> Void = { _ in },
                handler: @escaping HTTPHandler = echoHandler) throws -> HTTPServer {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.eventLoopThreads = 2
    configuration.handlerThreads = 2
    tweak(&configuration)
    let server = try HTTPServer(configuration: configuration, handler: handler)
    try server.start()
    return server
}

/// Answers "METHOD path body-length" with a text body.
let echoHandler: HTTPHandler = { request, sink in
    var response = HTTPResponse(status: 200, body: Array("\(request.method) \(request.path) \(request.body.count)".utf8))
    response.headers.add("Content-Type", "text/plain")
    sink.respond(response)
}


/// Polls `condition` every 10 ms for up to `timeout` seconds.
func eventually(_ timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    var waited = 0.0
    while waited < timeout {
        if condition() { return true }
        sleepSeconds(0.01)
        waited += 0.01
    }
    return condition()
}

func get(_ path: String, host: String = "t") -> String { "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n" }

/// `makeServer` with default settings and this handler.
func serve(_ handler: @escaping HTTPHandler) throws -> HTTPServer {
    try makeServer({ _ in }, handler: handler)
}
