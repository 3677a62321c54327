import Synchronization
import Testing
@testable import LoupeHTTP

/// A fixed clock: 1994-11-06 08:49:37 UTC.
let fixedDates = HTTPDateCache(now: { 784_111_777 })

func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

/// Splits a serialized response into head lines and body.
func splitResponse(_ bytes: [UInt8]) -> (lines: [String], body: [UInt8]) {
    let crlfcrlf: [UInt8] = [13, 10, 13, 10]
    var i = 0
    while i + 4 <= bytes.count && Array(bytes[i..<i + 4]) != crlfcrlf { i += 1 }
    let head = text(Array(bytes[0..<i]))
    return (head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init), Array(bytes[min(i + 4, bytes.count)...]))
}

struct WriterTests {
    let writer = ResponseWriter(dates: fixedDates)

    @Test func dateFormat() {
        #expect(text(HTTPDateCache.imfFixdate(784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(text(HTTPDateCache.imfFixdate(0)) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(text(HTTPDateCache.imfFixdate(1_767_225_599)) == "Wed, 31 Dec 2025 23:59:59 GMT")
    }

    @Test func simpleResponse() {
        var out: [UInt8] = []
        let close = writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]), body: Array("hi".utf8)),
                                 context: HTTPResponseContext(), into: &out)
        #expect(!close)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: Loupe\r\nX-Content-Type-Options: nosniff\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
    }

    @Test func framingHeadersFromHandlersAreReplaced() {
        var out: [UInt8] = []
        let response = HTTPResponse(status: 201, headers: HTTPHeaders([("Content-Length", "99"), ("Transfer-Encoding", "chunked"),
                                                                       ("Date", "x"), ("X-Ok", "1")]), body: [1, 2, 3])
        writer.write(response, context: HTTPResponseContext(), into: &out)
        let (lines, body) = splitResponse(out)
        #expect(lines[0] == "HTTP/1.1 201 Created")
        #expect(lines.contains("Content-Length: 3"))
        #expect(lines.contains("X-Ok: 1"))
        #expect(!lines.contains { $0.hasPrefix("Transfer-Encoding") || $0 == "Date: x" || $0 == "Content-Length: 99" })
        #expect(body == [1, 2, 3])
    }

    @Test func responseSplittingIsRefused() {
        var out: [UInt8] = []
        let response = HTTPResponse(status: 200, headers: HTTPHeaders([("X-Echo", "a\r\nSet-Cookie: x=1"), ("Bad Name", "v"),
                                                                       ("X-Fine", "ok")]))
        writer.write(response, context: HTTPResponseContext(), into: &out)
        let (lines, _) = splitResponse(out)
        #expect(!lines.contains { $0.contains("Set-Cookie") || $0.contains("Bad Name") })
        #expect(lines.contains("X-Fine: ok"))
    }

    /// The in-place field writer against its plain reference (`isUserHeaderWritable`, then the
    /// fields' text): names of every case, forbidden ones, invalid bytes in names and values,
    /// small and large strings.
    @Test func fieldWriterAgreesWithTheRuleOnEveryField() {
        let names = ["X-Request-ID", "date", "DATE", "Dates", "connection", "Connection", "content-length", "CONTENT-LENGTH",
                     "transfer-encoding", "Transfer-Encodinh", "", "bad name", "bad:name", "é", "x", String(repeating: "a", count: 40),
                     "traceparent", "Content-Type", "Server-Timing"]
        let values = ["", "a", "1.0", "with space", "tab\there", "cr\rlf", "lf\nx", "nul\u{0}", "del\u{7F}", "é utf-8",
                      String(repeating: "v", count: 60), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
        for name in names {
            for value in values {
                var fast: [UInt8] = []
                ResponseWriter.appendWritable(name, value, into: &fast)
                let reference = ResponseWriter.isUserHeaderWritable(name, value) ? Array("\(name): \(value)\r\n".utf8) : []
                #expect(fast == reference, "\(name.debugDescription): \(value.debugDescription)")
            }
        }
    }

    /// The name check reads eight bytes at a time while they are letters, digits or '-': every
    /// byte value at every position of names of 0–24 bytes (letters, digits and dashes around it)
    /// against the byte-by-byte rule.
    @Test func fieldNameCheckAgreesWithTheRuleAtEveryPosition() {
        var mismatches: [String] = []
        let fill = Array("Ab9-zZ0-".utf8)
        for length in 0...24 {
            let plain = (0..<length).map { fill[$0 % fill.count] }
            for position in -1..<length {
                for special in position < 0 ? [0x61] : Array(0...255) {
                    var bytes = plain
                    if position >= 0 { bytes[position] = UInt8(special) }
                    let fast = bytes.withUnsafeBufferPointer { ResponseWriter.isTokenName($0) }
                    if fast != bytes.allSatisfy(isTokenByteReference) { mismatches.append("length \(length), byte \(special) at \(position)") }
                }
            }
        }
        let count = mismatches.count
        #expect(count == 0, "\(mismatches.prefix(10))")
    }

    /// The value check reads eight bytes at a time: every byte that decides it (controls, HTAB,
    /// DEL, SP, the highest ASCII and non-ASCII) at every position of values of 0–40 bytes.
    @Test func fieldValueCheckAgreesWithTheRuleAtEveryPosition() {
        let specials: [UInt8] = [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0xA0, 0xFF]
        for length in 0...40 {
            let plain = [UInt8](repeating: 0x61, count: length)
            for position in -1..<length {
                for special in position < 0 ? [0x61] : specials {
                    var bytes = plain
                    if position >= 0 { bytes[position] = special }
                    let value = String(decoding: bytes, as: UTF8.self)
                    var fast: [UInt8] = []
                    ResponseWriter.appendWritable("X-V", value, into: &fast)
                    let reference = ResponseWriter.isUserHeaderWritable("X-V", value) ? Array("X-V: \(value)\r\n".utf8) : []
                    #expect(fast == reference, "length \(length), byte \(special) at \(position)")
                    let direct = bytes.withUnsafeBufferPointer { ResponseWriter.isFieldValue($0) }
                    #expect(direct == bytes.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }, "length \(length), byte \(special) at \(position)")
                }
            }
        }
    }

    /// appendJSONString copies runs of plain bytes at once: against a byte-by-byte reference, for
    /// every byte value that must be escaped (and some that must not) at every position of strings
    /// of 0–40 bytes.
    @Test func jsonStringEscapingMatchesTheByteByByteReference() {
        func reference(_ s: String) -> [UInt8] {
            var out: [UInt8] = [0x22]
            for c in s.utf8 {
                switch c {
                case 0x22: out += Array("\\\"".utf8)
                case 0x5C: out += Array("\\\\".utf8)
                case 0x0A: out += Array("\\n".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0x09: out += Array("\\t".utf8)
                case 0..<0x20, 0x3C, 0x3E, 0x26:
                    let hex = Array("0123456789abcdef".utf8)
                    out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 0xF)]]
                default: out.append(c)
                }
            }
            return out + [0x22]
        }
        let specials: [UInt8] = Array(0..<0x20) + [0x22, 0x5C, 0x3C, 0x3E, 0x26, 0x20, 0x21, 0x7F, 0x61]
        for length in 0...40 {
            let plain = String(repeating: "a", count: length)
            var out: [UInt8] = []
            appendJSONString(plain, to: &out)
            #expect(out == reference(plain))
            for position in 0..<length {
                for special in specials {
                    var bytes = Array(plain.utf8)
                    bytes[position] = special
                    let s = String(decoding: bytes, as: UTF8.self)
                    var fast: [UInt8] = []
                    appendJSONString(s, to: &fast)
                    #expect(fast == reference(s), "length \(length), byte \(special) at \(position)")
                }
            }
        }
        // Around the size up to which a string with nothing to escape is copied with its quotes at once.
        for length in [255, 256, 257, 300] {
            let plain = String(repeating: "a", count: length)
            for s in [plain, plain + "<", "\"" + plain] {
                var fast: [UInt8] = [0x2C]
                appendJSONString(s, to: &fast)
                #expect(fast == [0x2C] + reference(s), "length \(s.utf8.count)")
            }
        }
        // Non-ASCII text passes through; escapes on both sides of it.
        for s in ["é\"ü<16 bytes of ascii>\n", String(repeating: "ß", count: 20) + "\\", "\u{1F600}&x"] {
            var fast: [UInt8] = []
            appendJSONString(s, to: &fast)
            #expect(fast == reference(s))
        }
    }

    @Test func headHasLengthButNoBody() {
        var out: [UInt8] = []
        writer.write(HTTPResponse(status: 200, body: Array(repeating: 65, count: 10)), context: HTTPResponseContext(isHead: true), into: &out)
        let (lines, body) = splitResponse(out)
        #expect(lines.contains("Content-Length: 10"))
        #expect(body.isEmpty)
    }

    @Test func headWithGzipAnnouncesTheCompressedLength() {
        let body = Array(String(repeating: "metric_total 1\n", count: 200).utf8)
        let response = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4")]), body: body)
        var get: [UInt8] = [], head: [UInt8] = []
        writer.write(response, context: HTTPResponseContext(isHead: false, acceptEncoding: "gzip"), into: &get)
        writer.write(response, context: HTTPResponseContext(isHead: true, acceptEncoding: "gzip"), into: &head)
        let g = splitResponse(get), h = splitResponse(head)
        #expect(g.lines == h.lines)
        #expect(h.body.isEmpty)
        #expect(g.lines.contains("Content-Length: \(g.body.count)"))
    }

    @Test func headHandlerMayStateItsLength() {
        var out: [UInt8] = []
        writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Length", "1234")])),
                     context: HTTPResponseContext(isHead: true), into: &out)
        #expect(splitResponse(out).lines.contains("Content-Length: 1234"))
        out = []
        writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Length", "12x")])),
                     context: HTTPResponseContext(isHead: true), into: &out)
        #expect(splitResponse(out).lines.contains("Content-Length: 0"))
    }

    @Test func serverNameCanBeReplacedOrDropped() {
        var out: [UInt8] = []
        writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Server", "custom")])), context: HTTPResponseContext(), into: &out)
        #expect(splitResponse(out).lines.filter { $0.hasPrefix("Server") } == ["Server: custom"])
        out = []
        ResponseWriter(configuration: ResponseWriterConfiguration(serverName: nil), dates: fixedDates)
            .write(HTTPResponse(status: 200), context: HTTPResponseContext(), into: &out)
        #expect(!splitResponse(out).lines.contains { $0.hasPrefix("Server") })
    }

    @Test func dateCacheFollowsTheClock() {
        let clock = Mutex(784_111_777)
        let dates = HTTPDateCache(now: { clock.withLock { $0 } })
        #expect(text(dates.current()) == "Sun, 06 Nov 1994 08:49:37 GMT")
        clock.withLock { $0 += 1 }
        #expect(text(dates.current()) == "Sun, 06 Nov 1994 08:49:38 GMT")
    }

    @Test func noContentAndNotModifiedHaveNoLength() {
        for status in [204, 304] {
            var out: [UInt8] = []
            writer.write(HTTPResponse(status: status, body: [1]), context: HTTPResponseContext(), into: &out)
            let (lines, body) = splitResponse(out)
            #expect(!lines.contains { $0.hasPrefix("Content-Length") })
            #expect(body.isEmpty)
        }
    }

    @Test func connectionHandling() {
        var out: [UInt8] = []
        #expect(writer.write(HTTPResponse(status: 200), context: HTTPResponseContext(keepAlive: false), into: &out))
        #expect(splitResponse(out).lines.contains("Connection: close"))
        out = []
        #expect(!writer.write(HTTPResponse(status: 200), context: HTTPResponseContext(version: (1, 0), keepAlive: true), into: &out))
        #expect(splitResponse(out).lines.contains("Connection: keep-alive"))
        out = []
        #expect(writer.write(HTTPResponse(status: 503, headers: HTTPHeaders([("Connection", "close")])), context: HTTPResponseContext(), into: &out))
        #expect(splitResponse(out).lines.filter { $0.hasPrefix("Connection") } == ["Connection: close"])
    }

    @Test func gzipWhenAcceptedAndWorthIt() throws {
        let json = Array(String(repeating: "{\"class\":3,\"label\":\"Dress\",\"confidence\":0.97},", count: 100).utf8)
        var out: [UInt8] = []
        writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json; charset=utf-8")]), body: json),
                     context: HTTPResponseContext(acceptEncoding: "br;q=1.0, gzip;q=0.8, *;q=0.1"), into: &out)
        let (lines, body) = splitResponse(out)
        #expect(lines.contains("Content-Encoding: gzip"))
        #expect(lines.contains("Vary: Accept-Encoding"))
        #expect(lines.contains("Content-Length: \(body.count)"))
        #expect(body.count < json.count)
        #expect(body.prefix(2) == [0x1F, 0x8B])
        #expect(Gzip.decompress(body) == json)
    }

    @Test func noGzipWhenRefusedSmallOrIncompressibleType() {
        let big = Array(String(repeating: "abc ", count: 1000).utf8)
        func encoded(_ type: String, _ body: [UInt8], _ accept: String?) -> Bool {
            var out: [UInt8] = []
            writer.write(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", type)]), body: body),
                         context: HTTPResponseContext(acceptEncoding: accept), into: &out)
            return splitResponse(out).lines.contains("Content-Encoding: gzip")
        }
        #expect(encoded("text/plain", big, "gzip"))
        #expect(!encoded("text/plain", big, nil))
        #expect(!encoded("text/plain", big, "gzip;q=0"))
        #expect(!encoded("text/plain", big, "identity"))
        #expect(!encoded("text/plain", big, "*;q=1, gzip;q=0"))
        #expect(encoded("text/plain", big, "deflate, *"))
        #expect(!encoded("image/png", big, "gzip"))
        #expect(!encoded("text/plain", Array(big.prefix(100)), "gzip"))
    }

    @Test func acceptEncodingQValues() {
        #expect(ResponseWriter.acceptsGzip("gzip"))
        #expect(ResponseWriter.acceptsGzip("GZIP ; q=0.001"))
        #expect(ResponseWriter.acceptsGzip("x-gzip"))
        #expect(!ResponseWriter.acceptsGzip("gzip;q=0.000"))
        #expect(!ResponseWriter.acceptsGzip("gzip;q=bogus"))
        #expect(!ResponseWriter.acceptsGzip("deflate, br"))
        #expect(ResponseWriter.acceptsGzip("gzip;q=1.000"))
        #expect(!ResponseWriter.acceptsGzip("gzip;q=1.5"))
    }

    @Test func parseErrorsBecomeJSONWithClose() {
        var out: [UInt8] = []
        writer.writeError(.bodyTooLarge(limit: 1024), into: &out)
        let (lines, body) = splitResponse(out)
        #expect(lines[0] == "HTTP/1.1 413 Content Too Large")
        #expect(lines.contains("Connection: close"))
        #expect(lines.contains("Content-Type: application/json"))
        #expect(text(body) == "{\"error\":\"The request body is larger than the limit of 1024 bytes.\",\"code\":\"body_too_large\"}")
    }

    @Test func jsonEscaping() {
        let r = HTTPResponse.jsonError(status: 404, message: "No \"route\" for \\x\n\u{01}é", code: "not_found")
        #expect(text(r.body) == "{\"error\":\"No \\\"route\\\" for \\\\x\\n\\u0001é\",\"code\":\"not_found\"}")
    }

    @Test func continueBytes() {
        #expect(text(ResponseWriter.continueResponse) == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test func unknownStatusHasEmptyReason() {
        var out: [UInt8] = []
        writer.write(HTTPResponse(status: 299), context: HTTPResponseContext(), into: &out)
        #expect(splitResponse(out).lines[0] == "HTTP/1.1 299 ")
    }

    @Test func gzipRoundTripsManySizes() {
        var seed: UInt64 = 42
        for size in [0, 1, 100, 5000, 70_000, 300_000] {
            var data = [UInt8](repeating: 0, count: size)
            for i in 0..<size { seed = seed &* 6364136223846793005 &+ 1442695040888963407; data[i] = UInt8(truncatingIfNeeded: seed >> 59) + 97 }
            let compressed = Gzip.compress(data)
            #expect(compressed != nil)
            #expect(Gzip.decompress(compressed ?? []) == data)
        }
        #expect(Gzip.decompress([0x1F, 0x8B, 1, 2, 3]) == nil)
    }
}
