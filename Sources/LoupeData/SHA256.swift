import COpenSSL

/// SHA-256 through OpenSSL's libcrypto.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func digest(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { o in
                let ctx = EVP_MD_CTX_new()
                defer { EVP_MD_CTX_free(ctx) }
                EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
                EVP_DigestUpdate(ctx, input.baseAddress, input.count)
                var length: UInt32 = 32
                EVP_DigestFinal_ex(ctx, o.baseAddress, &length)
            }
        }
        return out
    }

    public static func digest(_ bytes: [UInt8]) -> [UInt8] { digest(bytes[...]) }

    /// Lower-case hexadecimal digest.
    public static func hex(_ bytes: ArraySlice<UInt8>) -> String { hexString(digest(bytes)) }
    public static func hex(_ bytes: [UInt8]) -> String { hex(bytes[...]) }

    static func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var s: [UInt8] = []
        s.reserveCapacity(bytes.count * 2)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xf)])
        }
        return String(decoding: s, as: UTF8.self)
    }
}
