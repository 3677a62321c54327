// Routing: templates like "/v2/models/{model}/versions/{version}/infer" registered on a
// RouterBuilder, frozen into an immutable, Sendable Router (a segment trie).
//
// Matching works on the raw path of the request target, split at "/" and percent-decoded one
// segment at a time, so "%2F" inside a segment never becomes a separator. Literal segments win
// over parameters, with backtracking. A `{name}` segment matches any one non-empty segment.
// A trailing slash is significant ("/health/" does not match "/health").

/// Outcome of looking a request up.
public enum RouteMatch: Sendable {
    case found(template: String, parameters: [String: String], handler: HTTPHandler)
    /// The path matches a route but not with this method; `allowed` is the Allow list.
    case methodNotAllowed(template: String, allowed: [String])
    /// OPTIONS on a known path without its own OPTIONS handler; `allowed` is the Allow list.
    case options(template: String, allowed: [String])
    case notFound
}

struct RouteNode: Sendable {
    var literals: [String: Int] = [:]
    var parameter: Int? = nil
    var template: String? = nil
    var parameterNames: [String] = []
    var endpoints: [(method: HTTPMethod, handler: HTTPHandler)] = []

    func handler(for method: HTTPMethod) -> HTTPHandler? {
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
    /// each either literal text or a whole `{name}`. Registering the same method and template
    /// twice, or templates that differ only in parameter names, is a programming error.
    public mutating func add(_ method: HTTPMethod, _ template: String, _ handler: @escaping HTTPHandler) {
        precondition(template.hasPrefix("/"), "route template must start with '/': \(template)")
        var node = 0
        var names: [String] = []
        for segment in template.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                let name = String(segment.dropFirst().dropLast())
                precondition(!name.contains("{") && !name.contains("}") && !names.contains(name),
                             "bad or repeated parameter '\(name)' in \(template)")
                names.append(name)
                if let next = nodes[node].parameter {
                    node = next
                } else {
                    nodes.append(RouteNode())
                    nodes[node].parameter = nodes.count - 1
                    node = nodes.count - 1
                }
            } else {
                precondition(!segment.contains("{") && !segment.contains("}"), "bad segment '\(segment)' in \(template)")
                let key = String(segment)
                if let next = nodes[node].literals[key] {
                    node = next
                } else {
                    nodes.append(RouteNode())
                    nodes[node].literals[key] = nodes.count - 1
                    node = nodes.count - 1
                }
            }
        }
        if let existing = nodes[node].template {
            precondition(existing == template, "route \(template) conflicts with \(existing)")
        }
        precondition(nodes[node].handler(for: method) == nil, "route \(method) \(template) registered twice")
        nodes[node].template = template
        nodes[node].parameterNames = names
        nodes[node].endpoints.append((method: method, handler: handler))
    }

    public func freeze() -> Router {
        Router(nodes: nodes, answersOptions: answersOptions)
    }
}

public struct Router: Sendable {
    let nodes: [RouteNode]
    let answersOptions: Bool

    /// Every registered (method, template), for documentation and tests.
    public var routes: [(method: HTTPMethod, template: String)] {
        nodes.flatMap { node in node.endpoints.map { (method: $0.method, template: node.template ?? "") } }
    }

    /// Routes `request`: on a match, calls the handler with `pathParameters` and `routeTemplate`
    /// filled in; otherwise answers 404 or 405 (with `Allow`) in JSON, or 204 for OPTIONS.
    public func handle(_ request: HTTPRequest, sink: any HTTPResponseSink) {
        switch match(request) {
        case .found(let template, let parameters, let handler):
            var request = request
            request.pathParameters = parameters
            request.routeTemplate = template
            handler(request, sink)
        case .methodNotAllowed(_, let allowed):
            let list = allowed.joined(separator: ", ")
            sink.respond(.jsonError(status: 405,
                                    message: "Method \(request.method) is not allowed on \(request.path); allowed: \(list).",
                                    code: "method_not_allowed", headers: HTTPHeaders([("Allow", list)])))
        case .options(_, let allowed):
            sink.respond(HTTPResponse(status: 204, headers: HTTPHeaders([("Allow", allowed.joined(separator: ", "))])))
        case .notFound:
            sink.respond(.jsonError(status: 404, message: "No route for \(request.method) \(request.path).", code: "not_found"))
        }
    }

    /// Looks a request up without calling anything.
    public func match(_ request: HTTPRequest) -> RouteMatch {
        match(method: request.method, rawPath: Self.rawPath(of: request))
    }

    /// Looks up `rawPath` (as in the request target: not yet percent-decoded, no query).
    public func match(method: HTTPMethod, rawPath: Substring) -> RouteMatch {
        if rawPath == "*" {
            guard method == .OPTIONS, answersOptions else { return .notFound }
            return .options(template: "*", allowed: allowedMethods(nodes.filter { !$0.endpoints.isEmpty }))
        }
        guard rawPath.hasPrefix("/") else { return .notFound }
        var segments: [Substring] = []
        segments.reserveCapacity(8)
        for s in rawPath.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if s.utf8.contains(PERCENT) {
                guard let decoded = PercentDecoding.decode(String(s)) else { return .notFound }
                segments.append(Substring(decoded))
            } else {
                segments.append(s)
            }
        }
        var captures: [Substring] = []
        // Pass 1: a route that takes this method (HEAD falls back to GET).
        if let leaf = find(0, segments, 0, &captures, accepting: method) {
            let node = nodes[leaf]
            let handler = node.handler(for: method) ?? (method == .HEAD ? node.handler(for: .GET) : nil)
            if let handler {
                var parameters: [String: String] = [:]
                parameters.reserveCapacity(captures.count)
                for (name, value) in zip(node.parameterNames, captures) { parameters[name] = String(value) }
                return .found(template: node.template ?? "", parameters: parameters, handler: handler)
            }
            // Only reachable for OPTIONS answered by the router itself.
            return .options(template: node.template ?? "", allowed: allowedMethods([node]))
        }
        // Pass 2: any route on this path → 405.
        captures.removeAll()
        if let leaf = find(0, segments, 0, &captures, accepting: nil) {
            return .methodNotAllowed(template: nodes[leaf].template ?? "", allowed: allowedMethods([nodes[leaf]]))
        }
        return .notFound
    }

    private func accepts(_ node: RouteNode, _ method: HTTPMethod?) -> Bool {
        guard let method else { return !node.endpoints.isEmpty }
        if node.handler(for: method) != nil { return true }
        if method == .HEAD && node.handler(for: .GET) != nil { return true }
        if method == .OPTIONS && answersOptions && !node.endpoints.isEmpty { return true }
        return false
    }

    private func find(_ index: Int, _ segments: [Substring], _ depth: Int, _ captures: inout [Substring],
                      accepting method: HTTPMethod?) -> Int? {
        let node = nodes[index]
        if depth == segments.count { return accepts(node, method) ? index : nil }
        let segment = segments[depth]
        if let next = node.literals[String(segment)],
           let found = find(next, segments, depth + 1, &captures, accepting: method) {
            return found
        }
        if let next = node.parameter, !segment.isEmpty {
            captures.append(segment)
            if let found = find(next, segments, depth + 1, &captures, accepting: method) { return found }
            captures.removeLast()
        }
        return nil
    }

    /// The Allow list: registered methods in a fixed order, HEAD wherever GET is, OPTIONS when answered.
    private func allowedMethods(_ nodes: [RouteNode]) -> [String] {
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

    /// The not-yet-decoded path of the request target (origin-form or absolute-form); falls
    /// back to the decoded `path` for requests built by hand without a target.
    static func rawPath(of request: HTTPRequest) -> Substring {
        var target = Substring(request.target)
        if let q = target.firstIndex(of: "?") { target = target[..<q] }
        if target.hasPrefix("/") || target == "*" { return target }
        let lower = target.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let rest = target.dropFirst(lower.hasPrefix("http://") ? 7 : 8)
            if let slash = rest.firstIndex(of: "/") { return rest[slash...] }
            return "/"
        }
        return Substring(request.path)
    }
}
