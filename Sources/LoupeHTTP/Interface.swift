// The public surface LoupeService builds on. The HTTP layer may grow, but these names and
// shapes are the contract between LoupeHTTP and LoupeService: change them only together.

/// One header field: its name as sent and its value.
///
/// A struct, not a `(name:, value:)` tuple: an array of tuples is destroyed element by element
/// through the runtime's generic tuple witnesses (≈ 500 instructions for a request's and a
/// response's few fields; callgrind, GET /health), an array of a struct by its compiled code.
public struct HTTPField: Sendable, Equatable {
    public var name: String
    public var value: String
    @inlinable public init(name: String, value: String) { self.name = name; self.value = value }
}

/// Header fields in arrival order; names compared case-insensitively (ASCII).
public struct HTTPHeaders: Sendable, Sequence {
    public private(set) var fields: [HTTPField]
    public init(_ fields: [(String, String)] = []) { self.fields = fields.map { HTTPField(name: $0.0, value: $0.1) } }
    /// Takes the array as is (no copy); used by the parser.
    public init(fields: [HTTPField]) { self.fields = fields }
    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }
    public mutating func reserveCapacity(_ n: Int) { fields.reserveCapacity(n) }
    public mutating func add(_ name: String, _ value: String) { fields.append(HTTPField(name: name, value: value)) }
    /// Replaces every field called `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        fields.removeAll { Self.equal($0.name, name) }
        fields.append(HTTPField(name: name, value: value))
    }
    public mutating func remove(_ name: String) { fields.removeAll { Self.equal($0.name, name) } }
    /// First value of `name`, or nil.
    public subscript(_ name: String) -> String? {
        // By index: `first(where:)` copies the matching field (its name too) into an optional.
        for i in fields.indices where Self.equal(fields[i].name, name) { return fields[i].value }
        return nil
    }
    public func values(_ name: String) -> [String] { fields.filter { Self.equal($0.name, name) }.map(\.value) }
    public func makeIterator() -> IndexingIterator<[HTTPField]> { fields.makeIterator() }
    static func equal(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        // Over both strings' UTF-8 in place (contiguous copies only for bridged or foreign strings).
        return withUTF8Bytes(a) { x in
            withUTF8Bytes(b) { y in
                for i in 0..<x.count where x[i] != y[i] {
                    let lx = (x[i] >= 65 && x[i] <= 90) ? x[i] + 32 : x[i]
                    let ly = (y[i] >= 65 && y[i] <= 90) ? y[i] + 32 : y[i]
                    if lx != ly { return false }
                }
                return true
            }
        }
    }
}

extension HTTPHeaders: Equatable {
    /// Same fields in the same order; names compared case-insensitively, values exactly.
    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.elementsEqual(b.fields) { equal($0.name, $1.name) && $0.value == $1.value }
    }
}

public enum HTTPMethod: Sendable, Hashable, CustomStringConvertible {
    case GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH
    case other(String)

    /// A method outside the ones this enum names.
    public var isUnknown: Bool { if case .other = self { true } else { false } }
    public var description: String {
        switch self {
        case .GET: "GET"
        case .HEAD: "HEAD"
        case .POST: "POST"
        case .PUT: "PUT"
        case .DELETE: "DELETE"
        case .OPTIONS: "OPTIONS"
        case .PATCH: "PATCH"
        case .other(let s): s
        }
    }
}

/// A complete request, body collected (bounded by the server's body limit): the parsed head, the
/// body, and what the server and router add (peer address, route template and parameters, id).
public struct HTTPRequest: Sendable {
    /// The head as parsed: method, target, path, query, version, header fields, and what the parser
    /// read from them (host, keep-alive, `Expect: 100-continue`, body framing). The request's
    /// `method`, `target`, `path`, `query`, `version` and `headers` are views of it.
    public var head: HTTPRequestHead
    public var body: [UInt8]
    /// Values captured by the router for `{name}` segments of the matched route.
    public var pathParameters: [String: String]
    /// The matched route template ("/v2/models/{m}/infer"), or nil when no route matched.
    public var routeTemplate: String?
    /// Peer address as text ("127.0.0.1:51234").
    public var remoteAddress: String
    /// The id a server layer assigned to this request (sent back as X-Request-ID); empty when none
    /// was. A field of its own, so assigning it does not copy the header array.
    public var requestID: String = ""

    // The head's fields, read and changed in place (`_read`/`_modify`: no copy of a string or
    // array to read a header or add one).
    @inlinable public var method: HTTPMethod {
        _read { yield head.method }
        _modify { yield &head.method }
    }
    /// The request target as sent (origin-form or absolute-form).
    @inlinable public var target: String {
        _read { yield head.target }
        _modify { yield &head.target }
    }
    /// Percent-decoded path, e.g. "/v2/models/fashion/infer".
    @inlinable public var path: String {
        _read { yield head.path }
        _modify { yield &head.path }
    }
    /// Percent-decoded query items in order ("a=1&b" → [("a","1"),("b","")]).
    @inlinable public var query: [(name: String, value: String)] {
        _read { yield head.query }
        _modify { yield &head.query }
    }
    @inlinable public var version: (major: Int, minor: Int) {
        _read { yield head.version }
        _modify { yield &head.version }
    }
    @inlinable public var headers: HTTPHeaders {
        _read { yield head.headers }
        _modify { yield &head.headers }
    }

    /// The request a parsed head and its body make (the head and body moved in, not copied).
    public init(head: HTTPRequestHead, body: [UInt8] = [], remoteAddress: String = "") {
        self.head = head; self.body = body; self.pathParameters = [:]; self.routeTemplate = nil
        self.remoteAddress = remoteAddress
    }

    public init(method: HTTPMethod, target: String, path: String, query: [(name: String, value: String)] = [],
                version: (major: Int, minor: Int) = (1, 1), headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                pathParameters: [String: String] = [:], routeTemplate: String? = nil, remoteAddress: String = "") {
        self.head = HTTPRequestHead(method: method, target: target, path: path, query: query, version: version, headers: headers)
        self.body = body; self.pathParameters = pathParameters
        self.routeTemplate = routeTemplate; self.remoteAddress = remoteAddress
    }
    public func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Not sent: the machine code of an error response ("queue_full", "not_found", …), carried as
    /// data for the application's metrics and access log, so nobody parses it back out of the body.
    public var errorCode: String?
    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], errorCode: String? = nil) {
        self.status = status; self.headers = headers; self.body = body; self.errorCode = errorCode
    }
}

/// Handed to a handler with each request; `respond` must be called exactly once, from any thread,
/// now or later (e.g. after a batch of inference completes). The server adds Date, Server,
/// Content-Length/Transfer-Encoding and Connection, strips the body for HEAD, and gzips when the
/// client accepts it and the response is compressible.
///
/// `consuming`: a handler's response moves into the sink, so a sink that adds fields (the
/// service's request id and trace headers) mutates the one array instead of copying it.
public protocol HTTPResponseSink: Sendable {
    func respond(_ response: consuming HTTPResponse)
}

/// Handlers run on the server's handler queue; they must not block for long. Heavy work goes to
/// the caller's own bounded workers, which then call `sink.respond`.
///
/// `consuming`: the request moves from the connection through the layers that fill in its id,
/// route template and parameters (each would otherwise copy it: a retain and a release of every
/// string and array in it, per layer); a handler that only reads it needs nothing different.
public typealias HTTPHandler = @Sendable (consuming HTTPRequest, any HTTPResponseSink) -> Void
