// TLS through OpenSSL's libssl: one SSL_CTX per server (certificate chain + key from PEM
// files, TLS 1.2 minimum, TLS 1.2 limited to ECDHE+AEAD suites, no compression, no
// renegotiation), one SSL per connection on the nonblocking socket. SSL_read/SSL_write drive
// the handshake themselves (accept state), so the connection code treats TLS exactly like a
// plain socket that sometimes says "would block".

import COpenSSL

public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let detail: String
    public var description: String { "TLS \(operation) failed: \(detail)" }

    static func fromQueue(_ operation: String) -> TLSError {
        var lines: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TLSError(operation: operation, detail: lines.isEmpty ? "unknown OpenSSL error" : lines.joined(separator: "; "))
    }
}

/// The server-wide TLS context.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer

    init(_ configuration: TLSConfiguration) throws(TLSError) {
        guard let method = TLS_server_method(), let ctx = SSL_CTX_new(method) else {
            throw TLSError.fromQueue("SSL_CTX_new")
        }
        context = ctx
        // SSL_CTX_set_min/max_proto_version are macros over SSL_CTX_ctrl.
        guard SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil) == 1 else {
            throw TLSError.fromQueue("setting minimum protocol TLS 1.2")
        }
        let noCompression: UInt64 = 1 << 17, serverPreference: UInt64 = 1 << 22, noRenegotiation: UInt64 = 1 << 30
        SSL_CTX_set_options(ctx, noCompression | serverPreference | noRenegotiation)
        // SSL_CTX_set_mode: partial writes, moving write buffers (our pending bytes live in a
        // Swift array), and release idle buffers (≈34 KiB per idle connection).
        let partialWrite = 0x1, movingBuffer = 0x2, releaseBuffers = 0x10
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, partialWrite | movingBuffer | releaseBuffers, nil)
        guard SSL_CTX_set_cipher_list(ctx, configuration.tls12Ciphers) == 1 else {
            throw TLSError.fromQueue("setting TLS 1.2 ciphers")
        }
        guard SSL_CTX_use_certificate_chain_file(ctx, configuration.certificateChainPath) == 1 else {
            throw TLSError.fromQueue("loading certificate chain \(configuration.certificateChainPath)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError.fromQueue("loading private key \(configuration.privateKeyPath)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError.fromQueue("checking that the private key matches the certificate")
        }
    }

    deinit { SSL_CTX_free(context) }

    func makeSession(fd: Int32) -> TLSSession? {
        guard let ssl = SSL_new(context) else { ERR_clear_error(); return nil }
        guard SSL_set_fd(ssl, fd) == 1 else { SSL_free(ssl); ERR_clear_error(); return nil }
        SSL_set_accept_state(ssl)
        return TLSSession(ssl: ssl)
    }
}

/// One connection's TLS state. Used only on the connection's event loop.
final class TLSSession {
    private let ssl: OpaquePointer
    init(ssl: OpaquePointer) { self.ssl = ssl }
    deinit { SSL_free(ssl) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> IOResult {
        ERR_clear_error()
        var n = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n) == 1 { return .processed(n) }
        return try failure(0, "read")
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws(TLSError) -> IOResult {
        if buffer.isEmpty { return .processed(0) }
        ERR_clear_error()
        var n = 0
        if SSL_write_ex(ssl, buffer.baseAddress, buffer.count, &n) == 1 { return .processed(n) }
        return try failure(0, "write")
    }

    private func failure(_ rc: Int32, _ operation: String) throws(TLSError) -> IOResult {
        let code = SSL_get_error(ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .processed(0)
        case SSL_ERROR_SYSCALL:
            ERR_clear_error()
            return .processed(0)   // peer closed or reset without close_notify
        default:
            throw TLSError.fromQueue(operation)
        }
    }

    /// Best-effort close_notify (nonblocking; never waits for the peer's).
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }
}
