import COpenSSL
import LoupeSystem

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

    /// `bytes` as lower-case hex, two digits a byte (LoupeSystem's writeHexDigits).
    static func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let n = 2 * bytes.count
        guard n > 0 else { return "" }
        return String(unsafeUninitializedCapacity: n) { buffer in
            var out = buffer.baseAddress!
            for b in bytes {
                writeHexDigits(UInt64(b), digits: 2, to: out)
                out += 2
            }
            return n
        }
    }
}
