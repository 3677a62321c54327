import Testing
@testable import LoupeHTTP

/// Valid requests (and pipelined sequences). Each must give the same parts however it is cut.
let validFixtures: [String] = [
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "GET /v2/models/fashion/versions/2?verbose=1&x=a+b%20c HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    "\r\n\r\nGET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST /predict?top_k=3 HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 11\r\n\r\nhello world",
    "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \t\r\n\r\n0\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5\r\nhello\r\n1;ext=\"a;b\\\"c\" ; x\r\n \r\nA\r\n0123456789\r\n000\r\nTrailer-A: 1\r\nTrailer-B:2 \r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://example.com:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    "DELETE /v2/models/a%2Fb HTTP/1.1\r\nHost: [::1]:80\r\nX-Empty:\r\nX-Tabs:\t v \t\r\n\r\n",
    // Pipelined: fixed, chunked, no body, then close (the garbage after it is ignored).
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        + "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
        + "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        + "\r\nGET /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        + "GET /5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        + "NOT HTTP AT ALL\r\n\r\n",
]

struct ParserSplitTests {
    @Test(arguments: validFixtures.indices)
    func everySplitGivesTheSameParts(_ index: Int) throws {
        let input = bytes(validFixtures[index])
        let whole = try parseAll(input)
        #expect(!whole.isEmpty)
        for cut in 0...input.count {
            let parts = try parseAll(input, cuts: [cut])
            #expect(parts == whole, "fixture \(index) split at \(cut)")
            if parts != whole { break }
        }
        #expect(try parseAll(input, cuts: Array(0...input.count)) == whole, "fixture \(index) byte by byte")
    }

    @Test func everyPairOfSplitsOnShortFixtures() throws {
        for fixture in validFixtures where fixture.utf8.count < 120 {
            let input = bytes(fixture)
            let whole = try parseAll(input)
            for a in 0...input.count {
                for b in a...input.count {
                    let parts = try parseAll(input, cuts: [a, b])
                    #expect(parts == whole, "split at \(a), \(b)")
                    if parts != whole { return }
                }
            }
        }
    }

    @Test func pipelinedFixtureParts() throws {
        let parts = try parseAll(bytes(validFixtures.last!))
        let heads = parts.compactMap { p -> HTTPRequestHead? in if case .head(let h) = p { h } else { nil } }
        #expect(heads.map(\.path) == ["/1", "/2", "/3", "/4", "/5"])
        #expect(heads.map(\.keepAlive) == [true, true, true, true, false])
        let ends = parts.filter { if case .end = $0 { true } else { false } }
        #expect(ends.count == 5)
        #expect(parts.contains(.body(ArraySlice(bytes("body")))))
        #expect(parts.contains(.body(ArraySlice(bytes("abc")))))
    }

    @Test func bodySlicesShareTheFedStorage() throws {
        var parser = HTTPParser()
        let input = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        let parts = try parser.feed(input[...])
        guard case .body(let b) = parts[1] else { Issue.record("no body"); return }
        #expect(b.startIndex == input.count - 5)
        b.withUnsafeBufferPointer { bb in
            input.withUnsafeBufferPointer { ib in #expect(bb.baseAddress == ib.baseAddress! + (input.count - 5)) }
        }
    }

    @Test func slicesWithNonZeroStartIndex() throws {
        let raw = bytes("xxxxGET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiyyy")
        var parser = HTTPParser()
        let parts = try parser.feed(raw[4..<(raw.count - 3)])
        #expect(parts.count == 3)
        #expect(parts[1] == .body(ArraySlice(bytes("hi"))))
    }

    /// Random valid requests (random headers, bodies, chunk sizes, extensions, trailers),
    /// pipelined and cut at random places, against the same bytes fed whole. Seeded.
    @Test func randomRequestsRandomCuts() throws {
        var rng = SplitMix(seed: 0x5EED)
        for round in 0..<300 {
            var raw = ""
            var expectedPaths: [String] = []
            for r in 0..<Int(rng.next() % 4 + 1) {
                let path = "/r\(round)/\(r)/" + String(repeating: "p", count: Int(rng.next() % 20))
                expectedPaths.append(path)
                let chunked = rng.next() % 2 == 0
                raw += "\(chunked ? "POST" : "PUT") \(path)?q=\(rng.next() % 1000) HTTP/1.1\r\nHost: h\r\n"
                for h in 0..<Int(rng.next() % 6) { raw += "X-H\(h): " + String(repeating: "v", count: Int(rng.next() % 40)) + "\r\n" }
                let body = String(repeating: "b", count: Int(rng.next() % 300))
                if chunked {
                    raw += "Transfer-Encoding: chunked\r\n\r\n"
                    var rest = Substring(body)
                    while !rest.isEmpty {
                        let n = min(rest.count, Int(rng.next() % 90) + 1)
                        raw += String(n, radix: 16, uppercase: rng.next() % 2 == 0) + (rng.next() % 3 == 0 ? ";e=\"v\"" : "") + "\r\n"
                        raw += rest.prefix(n) + "\r\n"
                        rest = rest.dropFirst(n)
                    }
                    raw += "0\r\n" + (rng.next() % 2 == 0 ? "T: t\r\n" : "") + "\r\n"
                } else {
                    raw += "Content-Length: \(body.utf8.count)\r\n\r\n" + body
                }
            }
            let input = bytes(raw)
            let whole = try parseAll(input)
            let heads = whole.compactMap { p -> String? in if case .head(let h) = p { h.path } else { nil } }
            #expect(heads == expectedPaths)
            let cuts = (0..<Int(rng.next() % 12)).map { _ in Int(rng.next() % UInt64(input.count + 1)) }.sorted()
            #expect(try parseAll(input, cuts: cuts) == whole, "round \(round) cuts \(cuts)")
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// The connection's decoder moves each head and body out of the parser's parts (no copies): at
/// every split of every fixture it must hand over the requests its plain reference makes — the
/// whole input's parts, each head's `makeRequest` with its body parts joined.
struct DecoderSplitTests {
    private static func reference(_ parts: [HTTPPart]) -> [HTTPRequest] {
        var out: [HTTPRequest] = []
        var head: HTTPRequestHead? = nil
        var body: [UInt8] = []
        for part in parts {
            switch part {
            case .head(let h): head = h; body = []
            case .body(let b): body += b
            case .end: if let h = head { out.append(h.makeRequest(body: body)) }; head = nil
            }
        }
        return out
    }

    private static func decode(_ pieces: [[UInt8]]) -> [HTTPRequest] {
        var decoder = RequestDecoder(limits: .default)
        var out: [HTTPRequest] = []
        for piece in pieces {
            piece.withUnsafeBytes { decoder.append($0) }
            var steps = 0
            loop: while steps < 1000 {
                steps += 1
                switch decoder.next() {
                case .request(let r, _): out.append(r)
                case .head: continue
                case .needMore, .error: break loop
                }
            }
        }
        return out
    }

    private static func same(_ a: [HTTPRequest], _ b: [HTTPRequest]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            x.method == y.method && x.target == y.target && x.path == y.path && x.version == y.version
                && x.query.elementsEqual(y.query, by: { $0.name == $1.name && $0.value == $1.value })
                && x.headers == y.headers && x.body == y.body
        }
    }

    @Test(arguments: validFixtures.indices)
    func everySplitGivesTheParsersRequests(_ index: Int) throws {
        let input = bytes(validFixtures[index])
        let expected = Self.reference(try parseAll(input))
        #expect(!expected.isEmpty)
        for cut in 0...input.count {
            let got = Self.decode([Array(input[..<cut]), Array(input[cut...])])
            #expect(Self.same(got, expected), "fixture \(index) split at \(cut)")
            if !Self.same(got, expected) { break }
        }
        #expect(Self.same(Self.decode(input.map { [$0] }), expected), "fixture \(index) byte by byte")
    }
}
