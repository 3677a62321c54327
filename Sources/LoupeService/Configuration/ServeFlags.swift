// The flags of `loupe serve` that set a configuration key: the one table the CLI's options, their
// help (the key's summary and its default, read from the key table, never repeated as literals)
// and the flag → key overrides come from.

/// A `loupe serve --<flag>` that sets one configuration key.
public struct ServeFlag: Sendable {
    /// The long option name without dashes ("max-batch-size").
    public let flag: String
    public let key: String
}

extension ServiceConfiguration {
    public static let serveFlags: [ServeFlag] = [
        ServeFlag(flag: "models", key: "models.dir"),
        ServeFlag(flag: "host", key: "server.host"),
        ServeFlag(flag: "port", key: "server.port"),
        ServeFlag(flag: "max-batch-size", key: "batching.max_batch_size"),
        ServeFlag(flag: "max-queue-delay-us", key: "batching.max_queue_delay_us"),
        ServeFlag(flag: "workers", key: "inference.workers"),
        ServeFlag(flag: "threads", key: "inference.threads"),
        ServeFlag(flag: "tls-cert", key: "server.tls.certificate"),
        ServeFlag(flag: "tls-key", key: "server.tls.key"),
        ServeFlag(flag: "log-format", key: "logging.format"),
        ServeFlag(flag: "log-level", key: "logging.level"),
    ]

    /// The help line of a serve flag: the key's summary, then "(key, default value)" with the
    /// built-in default (or "(key, default: none)" when it is empty).
    public static func serveFlagHelp(_ flag: String) -> String {
        guard let entry = serveFlags.first(where: { $0.flag == flag }), let key = key(named: entry.key) else {
            preconditionFailure("serve flag --\(flag) is not in ServiceConfiguration.serveFlags")
        }
        let value = key.currentValue(in: ServiceConfiguration())
        return "\(key.summary) (\(key.name), default \(value.isEmpty ? "none" : value))"
    }

    /// The overrides a serve command line gives: its flags (by long name; nil = not given) in
    /// table order, then each `--set key=value` in order (later wins when applied).
    public static func serveOverrides(flags: [String: String?], settings: [String]) throws(ServeFlagError) -> [(key: String, value: String)] {
        var overrides: [(key: String, value: String)] = []
        for entry in serveFlags {
            if let value = flags[entry.flag] ?? nil { overrides.append((entry.key, value)) }
        }
        for setting in settings {
            guard let eq = setting.firstIndex(of: "=") else {
                throw ServeFlagError(description: "--set expects key=value, got '\(setting)'")
            }
            overrides.append((String(setting[..<eq]), String(setting[setting.index(after: eq)...])))
        }
        return overrides
    }
}

/// A serve command line that cannot be turned into overrides.
public struct ServeFlagError: Error, CustomStringConvertible {
    public var description: String
}
