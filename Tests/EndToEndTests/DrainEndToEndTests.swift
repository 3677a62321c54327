// A SIGTERM drain under keep-alive load, with the real binary on loopback: no request may fail.
// Clients reuse their connection (HTTP/1.1 keep-alive, as every HTTP client library does) and
// reconnect when a response says `Connection: close`. "Connection refused" once the listener
// has closed is the one acceptable outcome; a reset, a broken pipe, or a connection closed
// before its response is a request lost.
import Glibc
import Testing

/// What happened to one request of a keep-alive client.
enum KeepAliveOutcome: Equatable {
    case answered(status: Int, close: Bool)
    /// connect(2) was refused: the listener is closed (the drain is over for new connections).
    case refused
    /// The request was sent (or sending failed) and no complete response came back.
    case lost(String)
}

/// One keep-alive HTTP/1.1 connection at a time (the shared `TestClient`), reopened after `Connection: close`.
final class KeepAliveClient {
    let port: Int
    private var client: TestClient?
    /// Requests sent on the current connection (for the loss reports).
    private(set) var requestsOnConnection = 0

    init(port: Int) { self.port = port }

    func send(_ method: String, _ target: String, headers: [(String, String)], body: [UInt8]) -> KeepAliveOutcome {
        if client == nil {
            do {
                client = try TestClient(port: port, receiveTimeout: 20)
            } catch TestClientError.connect(let code) {
                return code == ECONNREFUSED ? .refused : .lost("connect: \(String(cString: strerror(code)))")
            } catch {
                return .lost("connect: \(error)")
            }
            requestsOnConnection = 0
        }
        requestsOnConnection += 1
        do {
            let response = try client!.request(method, target, headers: headers, body: body)
            if response.header("transfer-encoding") != nil { client = nil; return .lost("unexpected Transfer-Encoding") }
            if response.closes { client = nil }
            return .answered(status: response.status, close: response.closes)
        } catch {
            client = nil
            return .lost("\(error)")
        }
    }
}

@Suite(.serialized) struct DrainEndToEndTests {
    /// Keep-alive clients post /predict in a loop; SIGTERM arrives mid-load. Across concurrency
    /// levels and drain delays (0 included: the listener closes at once), every request gets its
    /// answer, every answer is 200, responses after the drain began say `Connection: close`, and
    /// the process exits 0.
    @Test(arguments: [(1, 0), (8, 0), (32, 0), (8, 300), (32, 300)])
    func keepAliveClientsLoseNoRequestAcrossADrain(clients: Int, drainDelayMs: Int) throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: [
            "--set", "shutdown.drain_delay_ms=\(drainDelayMs)", "--set", "shutdown.deadline_ms=5000"])
        try server.waitReady()
        let port = server.port
        let (pixels, _) = try E2E.testImages(1)
        let png = PNGWriter.gray(width: 28, height: 28, pixels: pixels)
        let started = now()
        let results = onThreads(clients + 1) { i -> [KeepAliveOutcome] in
            if i == clients {
                usleep(400_000)
                server.process.signal(SIGTERM)
                return []
            }
            let client = KeepAliveClient(port: port)
            var outcomes: [KeepAliveOutcome] = []
            while now() - started < 15 {
                let outcome = client.send("POST", "/predict", headers: [("Content-Type", "image/png")], body: png)
                if case .lost(let why) = outcome {
                    outcomes.append(.lost("\(why) at \(Int((now() - started) * 1000)) ms, request \(client.requestsOnConnection) on its connection"))
                } else {
                    outcomes.append(outcome)
                }
                if case .refused = outcome { break }
            }
            return outcomes
        }.flatMap { $0 }
        let code = server.process.wait(seconds: 15)
        let answered = results.filter { if case .answered = $0 { return true } else { return false } }
        let lost = results.compactMap { outcome -> String? in if case .lost(let why) = outcome { return why } else { return nil } }
        let refusedClients = results.filter { $0 == .refused }.count
        #expect(lost.isEmpty, "\(lost.count) of \(results.count) requests lost: \(Set(lost))")
        #expect(answered.allSatisfy { $0 == .answered(status: 200, close: false) || $0 == .answered(status: 200, close: true) },
                "statuses: \(Set(answered.map { "\($0)" }))")
        #expect(answered.count > clients, "too few requests to test anything: \(answered.count)")
        #expect(refusedClients == clients, "every client ends refused by the closed listener")
        #expect(code == 0)
    }

    /// With fault injection slowing every forward pass (fault.inference_delay_ms), requests in
    /// flight when SIGTERM arrives finish inside shutdown.deadline_ms: all answered 200.
    @Test func slowRequestsInFlightFinishWithinTheDeadline() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: [
            "fault.inference_delay_ms=600", "shutdown.drain_delay_ms=0", "shutdown.deadline_ms=5000", "inference.workers=4"])
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(1)
        let started = now()
        let results = onThreads(5) { i -> Int in
            if i == 4 { usleep(250_000); server.process.signal(SIGTERM); return -1 }
            let r = try? HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
            return r?.status ?? 0
        }
        #expect(Array(results.prefix(4)) == [200, 200, 200, 200])
        #expect(server.process.wait(seconds: 10) == 0)
        #expect(now() - started >= 0.6, "the injected delay was not applied")
        #expect(server.log.contains("fault injection is on"))
        #expect(server.log.contains("\"unfinished_requests\":0"))
    }

    /// The deadline path, made honest by a delay longer than the deadline: requests still running
    /// at shutdown.deadline_ms are cut off (their connections closed), the log counts them, and the
    /// process still exits 0 within the deadline plus the workers' 1 s grace.
    @Test func requestsPastTheDeadlineAreCutOffAndCounted() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: [
            "fault.inference_delay_ms=4000", "shutdown.drain_delay_ms=0", "shutdown.deadline_ms=300", "inference.workers=2"])
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(1)
        let started = now()
        let results = onThreads(3) { i -> Int in
            if i == 2 { usleep(250_000); server.process.signal(SIGTERM); return -1 }
            let r = try? HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
            return r?.status ?? 0
        }
        #expect(Array(results.prefix(2)) == [0, 0], "cut off without an answer")
        #expect(server.process.wait(seconds: 10) == 0)
        #expect(now() - started < 3.5, "exit waited for the slow passes")
        let log = server.log
        #expect(log.contains("\"unfinished_requests\":2") || log.contains("\"unfinished_requests\":1"), "\(log.suffix(600))")
    }
}
