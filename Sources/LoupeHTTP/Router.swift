// Routing: templates like "/v2/models/{model}/versions/{version}/infer" registered on a
// RouterBuilder, frozen into an immutable, Sendable Router (a segment trie).
//
// Matching works on the raw path of the request target, split at "/" and percent-decoded one
// segment at a time, so "%2F" inside a segment never becomes a separator. Literal segments win
// over parameters, with backtracking. A `{name}` segment matches any one non-empty segment; a
// `{name}<suffix>` segment (TF Serving's "{model}:predict") matches a segment that ends with the
// literal suffix after at least one character, capturing what comes before it. Suffixed parameters
// are tried after literals and before a plain parameter, longest suffix first.
// A trailing slash is significant ("/health/" does not match "/health").

/// Outcome of looking a request up.
public enum RouteMatch: Sendable {
    case found(template: String, parameters: [String: String], handler: RouteHandler)
    /// The path matches a route but not with this method; `allowed` is the Allow list.
    case methodNotAllowed(template: String, allowed: [String])
    /// OPTIONS on a known path without its own OPTIONS handler; `allowed` is the Allow list.
    case options(template: String, allowed: [String])
    case notFound

    /// The template the path matched (also for a 405 or a router-answered OPTIONS); nil for a 404.
    public var template: String? {
        switch self {
        case .found(let template, _, _), .methodNotAllowed(let template, _), .options(let template, _): return template
        case .notFound: return nil
        }
    }
}

/// A route's handler, in a struct: a bare closure kept in an array's tuple or in an enum payload
/// is stored at the generic abstraction and re-wrapped in a thunk (an allocation) each time it
/// is taken out — twice per request — while a struct field keeps the closure as it is.
public struct RouteHandler: Sendable {
    public let function: HTTPHandler
    public init(_ function: @escaping HTTPHandler) { self.function = function }
    @inline(__always) public func callAsFunction(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        function(request, sink)
    }
}

struct RouteEndpoint: Sendable {
    let method: HTTPMethod
    let handler: RouteHandler
}

struct RouteNode: Sendable {
    var literals: [String: Int] = [:]
    /// `{name}<suffix>` children by suffix.
    var suffixed: [String: Int] = [:]
    var parameter: Int? = nil
    var template: String? = nil
    var parameterNames: [String] = []
    var endpoints: [RouteEndpoint] = []

    func handler(for method: HTTPMethod) -> RouteHandler? {
        endpoints.first { $0.method == method }?.handler
    }
}

public struct RouterBuilder {
    private var nodes = [RouteNode()]
    private var answersOptions: Bool

    /// `answersOptions`: OPTIONS on a known path answers 204 with `Allow` unless a route
    /// registers OPTIONS itself.
    public init(answersOptions: Bool = true) {
        self.answersOptions = answersOptions
    }

    /// Registers `handler` for `method` on `template`: "/" followed by "/"-separated segments,
    /// each either literal text, a whole `{name}`, or `{name}` followed by a literal suffix
    /// (`{model}:predict`). Registering the same method and template
    /// twice, or templates that differ only in parameter names, is a programming error.
    public mutating func add(_ method: HTTPMethod, _ template: String, _ handler: @escaping HTTPHandler) {
        precondition(template.hasPrefix("/"), "route template must start with '/': \(template)")
        var node = 0
        var names: [String] = []
        /// The child of `node` at `link` (a literal key, a suffix, or the parameter), created if new.
        func descend(_ link: WritableKeyPath<RouteNode, Int?>) {
            if let next = nodes[node][keyPath: link] { node = next; return }
            nodes.append(RouteNode())
            nodes[node][keyPath: link] = nodes.count - 1
            node = nodes.count - 1
        }
        for segment in template.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.hasPrefix("{"), let close = segment.firstIndex(of: "}"), close != segment.index(after: segment.startIndex) {
                // `{name}` or `{name}<suffix>`.
                let name = String(segment[segment.index(after: segment.startIndex)..<close])
                let suffix = String(segment[segment.index(after: close)...])
                precondition(!name.contains("{") && !names.contains(name) && !suffix.contains("{") && !suffix.contains("}"),
                             "bad or repeated parameter '\(name)' in \(template)")
                names.append(name)
                descend(suffix.isEmpty ? \.parameter : \.suffixed[suffix])
            } else {
                precondition(!segment.contains("{") && !segment.contains("}"), "bad segment '\(segment)' in \(template)")
                descend(\.literals[String(segment)])
            }
        }
        if let existing = nodes[node].template {
            precondition(existing == template, "route \(template) conflicts with \(existing)")
        }
        precondition(nodes[node].handler(for: method) == nil, "route \(method) \(template) registered twice")
        nodes[node].template = template
        nodes[node].parameterNames = names
        nodes[node].endpoints.append(RouteEndpoint(method: method, handler: RouteHandler(handler)))
    }

    public func freeze() -> Router {
        Router(nodes: nodes, answersOptions: answersOptions)
    }
}

/// A trie node as the frozen router keeps it: literal children as byte strings, compared
/// against the request's bytes without building Strings.
struct FrozenRouteNode: Sendable {
    var literalKeys: [[UInt8]]
    var literalChildren: [Int]
    /// `{name}<suffix>` children, longest suffix first.
    var suffixKeys: [[UInt8]]
    var suffixChildren: [Int]
    var parameter: Int              // -1: none
    var template: String?
    var parameterNames: [String]
    var endpoints: [RouteEndpoint]

    init(_ node: RouteNode) {
        let literals = node.literals.sorted { $0.key < $1.key }
        literalKeys = literals.map { Array($0.key.utf8) }
        literalChildren = literals.map(\.value)
        let suffixed = node.suffixed.sorted { ($0.key.utf8.count, $1.key) > ($1.key.utf8.count, $0.key) }
        suffixKeys = suffixed.map { Array($0.key.utf8) }
        suffixChildren = suffixed.map(\.value)
        parameter = node.parameter ?? -1
        template = node.template
        parameterNames = node.parameterNames
        endpoints = node.endpoints
    }

    func handler(for method: HTTPMethod) -> RouteHandler? {
        for endpoint in endpoints where endpoint.method == method { return endpoint.handler }
        return nil
    }
}

public struct Router: Sendable {
    let nodes: [FrozenRouteNode]
    let answersOptions: Bool

    init(nodes: [RouteNode], answersOptions: Bool) {
        self.nodes = nodes.map(FrozenRouteNode.init)
        self.answersOptions = answersOptions
    }

    /// Every registered (method, template), for documentation and tests.
    public var routes: [(method: HTTPMethod, template: String)] {
        nodes.flatMap { node in node.endpoints.map { (method: $0.method, template: node.template ?? "") } }
    }

    /// Routes `request`: `match`, then `dispatch`.
    public func handle(_ request: HTTPRequest, sink: any HTTPResponseSink) {
        dispatch(match(request), request, sink: sink)
    }

    /// Acts on a match made by `match(_:)` (so a caller that needs the template first, e.g. to
    /// label metrics, routes once): on `.found`, calls the handler with `pathParameters` and
    /// `routeTemplate` filled in; otherwise answers 404 or 405 (with `Allow`) in JSON, 501 for a
    /// method no route knows, or 204 for OPTIONS.
    public func dispatch(_ result: RouteMatch, _ request: consuming HTTPRequest, sink: any HTTPResponseSink) {
        switch result {
        case .found(let template, let parameters, let handler):
            request.pathParameters = parameters
            request.routeTemplate = template
            handler(consume request, sink)
        case .methodNotAllowed where Self.isUnrecognized(request.method), .notFound where Self.isUnrecognized(request.method):
            // A method the server does not recognize (PROPFIND, made-up ones): 501, as RFC 9110 §9.1 and
            // nginx answer, rather than 404/405, which would say the resource or this route is at fault.
            // RFC 9110's own methods (TRACE, CONNECT) and QUERY are recognized: a path without them answers 405.
            sink.respond(.jsonError(status: 501, message: "The method \(echoed(request.method.description)) is not implemented by this server.",
                                    code: "method_not_implemented"))
        case .methodNotAllowed(_, let allowed):
            let list = allowed.joined(separator: ", ")
            sink.respond(.jsonError(status: 405,
                                    message: "Method \(echoed(request.method.description)) is not allowed on \(echoed(request.path)); allowed: \(list).",
                                    code: "method_not_allowed", headers: HTTPHeaders([("Allow", list)])))
        case .options(_, let allowed):
            sink.respond(HTTPResponse(status: 204, headers: HTTPHeaders([("Allow", allowed.joined(separator: ", "))])))
        case .notFound:
            sink.respond(.jsonError(status: 404, message: "No route for \(echoed(request.method.description)) \(echoed(request.path)).", code: "not_found"))
        }
    }

    /// Methods outside RFC 9110 §9 (the enum's cases, TRACE and CONNECT) and the IETF's QUERY (a safe
    /// method with a body, draft-ietf-httpbis-safe-method-w-body): 501 wherever they are sent.
    static func isUnrecognized(_ method: HTTPMethod) -> Bool {
        guard case .other(let name) = method else { return false }
        return name != "TRACE" && name != "CONNECT" && name != "QUERY"
    }

    /// Looks a request up without calling anything.
    public func match(_ request: HTTPRequest) -> RouteMatch {
        var target = request.target
        return target.withUTF8 { t -> RouteMatch in
            var start = 0, end = t.count
            if end == 1 && t[0] == 0x2A { return matchAsterisk(request.method) }
            if end > 0 && t[0] == SLASH {
                // origin-form
            } else if let authorityStart = Self.absoluteFormAuthorityStart(t) {
                start = authorityStart
                while start < end && t[start] != SLASH && t[start] != QUESTION { start += 1 }
                if start == end || t[start] == QUESTION { return match(method: request.method, rawPath: "/") }
            } else {
                var path = request.path
                return path.withUTF8 { match(method: request.method, path: $0) }
            }
            var q = start
            while q < end && t[q] != QUESTION { q += 1 }
            end = q
            return match(method: request.method, path: UnsafeBufferPointer(rebasing: t[start..<end]))
        }
    }

    /// Looks up `rawPath` (as in the request target: not yet percent-decoded, no query).
    public func match(method: HTTPMethod, rawPath: String) -> RouteMatch {
        if rawPath == "*" { return matchAsterisk(method) }
        var path = rawPath
        return path.withUTF8 { match(method: method, path: $0) }
    }

    private static func absoluteFormAuthorityStart(_ t: UnsafeBufferPointer<UInt8>) -> Int? {
        if t.count >= 7 && equalsLowercase(t, 0, 7, "http://") { return 7 }
        if t.count >= 8 && equalsLowercase(t, 0, 8, "https://") { return 8 }
        return nil
    }

    private func matchAsterisk(_ method: HTTPMethod) -> RouteMatch {
        guard method == .OPTIONS, answersOptions else { return .notFound }
        return .options(template: "*", allowed: allowedMethods(nodes.filter { !$0.endpoints.isEmpty }))
    }

    private func match(method: HTTPMethod, path p: UnsafeBufferPointer<UInt8>) -> RouteMatch {
        guard p.count > 0, p[0] == SLASH else { return .notFound }
        var captures: [String] = []
        // Pass 1: a route that takes this method (HEAD falls back to GET).
        if let leaf = find(0, p, 1, &captures, accepting: method) {
            // The node's fields read in place (a copy of the node retains and releases each of them).
            let handler = nodes[leaf].handler(for: method) ?? (method == .HEAD ? nodes[leaf].handler(for: .GET) : nil)
            if let handler {
                var parameters: [String: String] = [:]
                if !captures.isEmpty {
                    parameters.reserveCapacity(captures.count)
                    for (name, value) in zip(nodes[leaf].parameterNames, captures) { parameters[name] = value }
                }
                return .found(template: nodes[leaf].template ?? "", parameters: parameters, handler: handler)
            }
            // Only reachable for OPTIONS answered by the router itself.
            return .options(template: nodes[leaf].template ?? "", allowed: allowedMethods([nodes[leaf]]))
        }
        // Pass 2: any route on this path → 405.
        captures.removeAll()
        if let leaf = find(0, p, 1, &captures, accepting: nil) {
            return .methodNotAllowed(template: nodes[leaf].template ?? "", allowed: allowedMethods([nodes[leaf]]))
        }
        return .notFound
    }

    private func accepts(_ index: Int, _ method: HTTPMethod?) -> Bool {
        let endpoints = nodes[index].endpoints
        guard let method else { return !endpoints.isEmpty }
        for endpoint in endpoints {
            if endpoint.method == method { return true }
            if method == .HEAD && endpoint.method == .GET { return true }
        }
        return method == .OPTIONS && answersOptions && !endpoints.isEmpty
    }

    /// Matches the segment of `p` starting at `start` against the children of node `index`,
    /// then the rest of the path below them. Returns the node the whole path ends on.
    private func find(_ index: Int, _ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ captures: inout [String],
                      accepting method: HTTPMethod?) -> Int? {
        var end = start
        var escaped = false
        while end < p.count && p[end] != SLASH {
            if p[end] == PERCENT { escaped = true }
            end += 1
        }
        var decoded: String? = nil
        if escaped {
            guard let d = PercentDecoding.decode(p, start, end, plusAsSpace: false) else { return nil }
            decoded = d
        }
        let isLast = end == p.count
        // Literal children first.
        let keys = nodes[index].literalKeys
        for k in 0..<keys.count {
            let key = keys[k]
            let same: Bool
            if let decoded { same = key.elementsEqual(decoded.utf8) }
            else {
                same = key.count == end - start && key.withUnsafeBufferPointer { kb in
                    var j = 0
                    while j < kb.count && kb[j] == p[start + j] { j += 1 }
                    return j == kb.count
                }
            }
            guard same else { continue }
            let child = nodes[index].literalChildren[k]
            if isLast {
                if accepts(child, method) { return child }
            } else if let found = find(child, p, end + 1, &captures, accepting: method) {
                return found
            }
            break
        }
        // Then `{name}<suffix>` children: the segment ends with the suffix after at least one byte.
        let suffixes = nodes[index].suffixKeys
        for k in 0..<suffixes.count {
            let key = suffixes[k]
            let captured: String?
            if let decoded {
                let bytes = Array(decoded.utf8)
                captured = bytes.count > key.count && bytes.suffix(key.count).elementsEqual(key)
                    ? String(decoding: bytes.dropLast(key.count), as: UTF8.self) : nil
            } else {
                let length = end - start
                captured = length > key.count && key.withUnsafeBufferPointer { kb in
                    var j = 0
                    while j < kb.count && kb[j] == p[end - kb.count + j] { j += 1 }
                    return j == kb.count
                } ? String(decoding: UnsafeBufferPointer(rebasing: p[start..<(end - key.count)]), as: UTF8.self) : nil
            }
            guard let captured else { continue }
            let child = nodes[index].suffixChildren[k]
            captures.append(captured)
            if isLast {
                if accepts(child, method) { return child }
            } else if let found = find(child, p, end + 1, &captures, accepting: method) {
                return found
            }
            captures.removeLast()
        }
        // Then the parameter child, for a non-empty segment.
        let child = nodes[index].parameter
        if child >= 0 && end > start {
            captures.append(decoded ?? String(decoding: UnsafeBufferPointer(rebasing: p[start..<end]), as: UTF8.self))
            if isLast {
                if accepts(child, method) { return child }
            } else if let found = find(child, p, end + 1, &captures, accepting: method) {
                return found
            }
            captures.removeLast()
        }
        return nil
    }

    /// The Allow list: registered methods in a fixed order, HEAD wherever GET is, OPTIONS when answered.
    private func allowedMethods(_ nodes: [FrozenRouteNode]) -> [String] {
        var methods = Set<HTTPMethod>()
        for node in nodes {
            for endpoint in node.endpoints { methods.insert(endpoint.method) }
        }
        if methods.contains(.GET) { methods.insert(.HEAD) }
        if answersOptions && !methods.isEmpty { methods.insert(.OPTIONS) }
        let order: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS]
        return order.filter(methods.contains).map(\.description)
            + methods.filter { !order.contains($0) }.map(\.description).sorted()
    }
}
