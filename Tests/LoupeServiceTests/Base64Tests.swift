import Testing
@testable import LoupeService

/// The plain encoder the decoder is checked against (RFC 4648 §4, with padding).
private func encode(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out = [UInt8]()
    var i = 0
    while i < bytes.count {
        let n = min(3, bytes.count - i)
        var v = UInt32(bytes[i]) << 16
        if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
        if n > 2 { v |= UInt32(bytes[i + 2]) }
        for k in 0..<4 { out.append(k <= n ? table[Int((v >> UInt32(18 - 6 * k)) & 63)] : UInt8(ascii: "=")) }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite struct Base64Tests {
    @Test func decodesWhatAnEncoderWrites() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = encode(bytes)
            #expect(Base64.decode(text) == bytes, "\(length) bytes: \(text)")
            // Padding left off, the URL-safe alphabet, line breaks and spaces.
            let bare = String(text.filter { $0 != "=" })
            #expect(Base64.decode(bare) == bytes)
            let urlSafe = String(bare.map { $0 == "+" ? "-" : ($0 == "/" ? "_" : $0) })
            #expect(Base64.decode(urlSafe) == bytes)
            var wrapped = ""
            for (k, c) in text.enumerated() { wrapped.append(c); if k % 19 == 18 { wrapped += k % 2 == 0 ? "\r\n" : " " } }
            #expect(Base64.decode(wrapped) == bytes)
        }
    }

    @Test func refusesTextNoEncoderWrites() {
        for bad in ["A", "QUJD" + "R", "QU=JD", "QQ===", "QQ==QQ==", "QU JD*", "QUJD\u{00e9}", "=QUJD"] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64.decode("QQ") == Array("A".utf8))
        #expect(Base64.decode("QQ==") == Array("A".utf8))
        #expect(Base64.decode("QUI=") == Array("AB".utf8))
        #expect(Base64.decode("") == [])
    }
}
