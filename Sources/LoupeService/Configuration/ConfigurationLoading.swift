// Setting, validating and loading the configuration whose keys Configuration.swift lists: one key
// from text (`--set`, a LOUPE_* variable, a YAML leaf), the cross-key checks, the precedence
// defaults < file < environment < flags, and the typed key constructors the table is made of.

import LoupeData

extension ServiceConfiguration {
    /// Sets one key from text, e.g. `set("server.port", "9000", source: "--set")`.
    public mutating func set(_ name: String, _ value: String, source: String) throws(ConfigurationError) {
        if name.hasPrefix(Self.promotionPrefix) {
            let rest = name.dropFirst(Self.promotionPrefix.count)
            guard let dot = rest.lastIndex(of: "."), dot != rest.startIndex,
                  Self.promotionModelKeys.contains(String(rest[rest.index(after: dot)...])) else {
                throw ConfigurationError(key: name, message: "expected \(Self.promotionPrefix)<model>.<key> with <key> one of \(Self.promotionModelKeys.joined(separator: ", "))", source: source)
            }
            let model = String(rest[..<dot]), key = String(rest[rest.index(after: dot)...])
            guard ModelRepositoryLayout.isValidName(model) else {
                throw ConfigurationError(key: name, message: ModelRepositoryLayout.invalidNameMessage(model), source: source)
            }
            var scratch = self
            do throws(ConfigurationError) {
                try scratch.set("promotion." + key, value, source: source)   // the same parser and range as the global key
            } catch {
                throw ConfigurationError(key: name, message: error.message, source: source)
            }
            promotionOverrides[model, default: [:]][key] = value.trimmingSpaces()
            return
        }
        if name.hasPrefix(Self.policyPrefix) {
            let model = String(name.dropFirst(Self.policyPrefix.count))
            guard !model.isEmpty else {
                throw ConfigurationError(key: name, message: "a model name must follow '\(Self.policyPrefix)'", source: source)
            }
            guard ModelRepositoryLayout.isValidName(model) else {
                throw ConfigurationError(key: name, message: ModelRepositoryLayout.invalidNameMessage(model), source: source)
            }
            do throws(ConfigurationValueError) {
                try Self.validatePolicy(value)
            } catch {
                throw ConfigurationError(key: name, message: error.message, source: source)
            }
            modelPolicies[model] = value
            return
        }
        guard let key = Self.key(named: name) else {
            throw ConfigurationError(key: name, message: "unknown key\(Self.suggestion(for: name))", source: source)
        }
        do throws(ConfigurationValueError) {
            try key.apply(&self, value.trimmingSpaces())
        } catch {
            throw ConfigurationError(key: name, message: error.message, source: source)
        }
    }

    /// Checks combinations of keys that are each valid alone.
    public func validate() throws(ConfigurationError) {
        if tlsCertificatePath.isEmpty != tlsKeyPath.isEmpty {
            throw ConfigurationError(key: tlsCertificatePath.isEmpty ? "server.tls.certificate" : "server.tls.key",
                                     message: "TLS needs both server.tls.certificate and server.tls.key", source: "combination")
        }
        do throws(ConfigurationValueError) {
            try Self.validatePolicy(versionPolicy)
        } catch {
            throw ConfigurationError(key: "models.version_policy", message: error.message, source: "combination")
        }
        if modelsDirectory.isEmpty {
            throw ConfigurationError(key: "models.dir", message: "must not be empty", source: "combination")
        }
        if captureEnabled && captureDirectory.isEmpty {
            throw ConfigurationError(key: "capture.dir", message: "must not be empty when capture.enabled is true", source: "combination")
        }
        if metricsPort != 0 && metricsPort == port {
            throw ConfigurationError(key: "metrics.port", message: "must differ from server.port (\(port)); 0 serves /metrics on the main listener",
                                     source: "combination")
        }
    }

    static func validatePolicy(_ value: String) throws(ConfigurationValueError) {
        guard VersionPolicy(parsing: value) != nil else {
            throw ConfigurationValueError(message: "expected latest, latest:N, all, or a list of version numbers ≥ 1 like \"1,3\", got '\(value)'")
        }
    }

    /// The capture settings (`capture.*`; records wait `feedback.max_age_s` for a label).
    var captureConfiguration: CaptureConfiguration {
        CaptureConfiguration(enabled: captureEnabled, sampleRate: captureSampleRate, maxBytes: captureMaxBytes,
                             directory: captureDirectory, flushIntervalSeconds: Double(captureFlushIntervalSeconds),
                             labelWaitSeconds: Double(feedbackMaxAgeSeconds))
    }

    /// The repository's settings from the `models.*`, `repository_api.*` and `drift.*` keys.
    public var repositoryConfiguration: RepositoryConfiguration {
        var r = RepositoryConfiguration()
        r.root = modelsDirectory
        r.defaultModel = defaultModel.isEmpty ? nil : defaultModel
        r.versionPolicy = VersionPolicy(parsing: versionPolicy) ?? .default
        r.policies = modelPolicies.compactMapValues { VersionPolicy(parsing: $0) }
        r.pollIntervalSeconds = Double(pollIntervalMilliseconds) / 1000
        r.stableAfterSeconds = Double(stableAfterMilliseconds) / 1000
        r.maxModelBytes = maxModelBytes
        r.maxInputSide = maxInputSide
        r.maxWorkspaceBytes = maxWorkspaceBytes
        r.workspaceBatch = maxBatchSize
        r.workspaceThreads = inferenceThreads
        r.selfTest = selfTest
        r.selfTestTolerance = Float(selfTestTolerance)
        r.apiEnabled = repositoryAPIEnabled
        r.apiToken = repositoryAPIToken.isEmpty ? nil : repositoryAPIToken
        r.driftWindow = driftWindow
        r.promotion = promotionPolicy(for: nil)
        r.promotionPolicies = Dictionary(uniqueKeysWithValues: promotionOverrides.keys.map { ($0, promotionPolicy(for: $0)) })
        return r
    }

    /// The promotion settings of `model` (nil: the `promotion.*` keys alone): its
    /// `promotion.models.<model>.*` overrides applied over the global keys.
    func promotionPolicy(for model: String?) -> PromotionPolicy {
        var c = self
        for (key, value) in (model.flatMap { promotionOverrides[$0] } ?? [:]) {
            try? c.set("promotion." + key, value, source: "promotion.models")   // validated when set
        }
        var p = PromotionPolicy()
        p.mode = PromotionMode(rawValue: c.promotionMode) ?? .immediate
        p.canaryPercent = c.promotionCanaryPercent
        p.shadowSampleRate = c.promotionShadowSampleRate
        p.minRequests = c.promotionMinRequests
        p.minAgreement = c.promotionMinAgreement
        p.minLabels = c.promotionMinLabels
        p.maxAccuracyDrop = c.promotionMaxAccuracyDrop
        p.confidence = c.promotionConfidence
        p.maxLatencyRatio = c.promotionMaxLatencyRatio
        p.automatic = c.promotionAutomatic
        return p
    }

    private static func suggestion(for name: String) -> String {
        let last = name.split(separator: ".").last.map(String.init) ?? name
        if let close = keys.first(where: { $0.name.hasSuffix("." + last) || $0.name == last }) {
            return "; did you mean '\(close.name)'?"
        }
        return "; see Config/loupe.yaml for every key"
    }

    // MARK: Loading

    /// The largest configuration file read (Config/loupe.yaml, every key documented, is about 15 kB).
    public static let maxConfigurationBytes = 1 << 20

    /// Loads defaults, then the YAML file (if any), then `LOUPE_*` variables, then `overrides`
    /// (flags, in order). Unknown keys in the file or among flags are refused; unknown
    /// `LOUPE_*` variables are reported in `warnings` (other tools may set them).
    public static func load(file: String?, environment: [String: String], overrides: [(key: String, value: String)],
                            warnings: inout [String]) throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        if let file, !file.isEmpty {
            let bytes: [UInt8]
            do {
                bytes = try readFileBytes(file, limit: maxConfigurationBytes + 1)
            } catch {
                throw ConfigurationError(key: "config", message: "cannot read '\(file)': \(error)", source: "--config")
            }
            // Read no further than a configuration can be: a wrong path (a model file, a device such as /dev/zero)
            // is refused at once instead of being read and parsed whole (/dev/zero took 1 GiB and minutes).
            guard bytes.count <= maxConfigurationBytes else {
                throw ConfigurationError(key: "config", message: "'\(file)' is larger than \(maxConfigurationBytes) bytes; a configuration file is a few kB (is it the right file?)", source: "--config")
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let entries: [(key: String, value: String, line: Int)]
            do {
                entries = try MiniYAML.flatten(text)
            } catch {
                throw ConfigurationError(key: "config", message: "\(error)", source: file)
            }
            for entry in entries {
                try configuration.set(entry.key, entry.value, source: "\(file) line \(entry.line)")
            }
        }
        let byEnvironmentName = Dictionary(uniqueKeysWithValues: keys.map { ($0.environmentName, $0) })
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("LOUPE_") {
            if name == "LOUPE_CONFIG" { continue }
            if let key = byEnvironmentName[name] {
                try configuration.set(key.name, value, source: "environment \(name)")
            } else if name.hasPrefix("LOUPE_PROMOTION_MODELS_"),
                      let key = promotionModelKeys.first(where: { name.hasSuffix("_" + $0.uppercased()) }),
                      name.count > "LOUPE_PROMOTION_MODELS_".count + key.count + 1 {
                let model = String(name.dropFirst("LOUPE_PROMOTION_MODELS_".count).dropLast(key.count + 1)).lowercased()
                try configuration.set(promotionPrefix + model + "." + key, value, source: "environment \(name)")
            } else if name.hasPrefix("LOUPE_MODELS_POLICY_") {
                let model = String(name.dropFirst("LOUPE_MODELS_POLICY_".count)).lowercased()
                try configuration.set(policyPrefix + model, value, source: "environment \(name)")
            } else {
                warnings.append("ignoring unknown environment variable \(name)")
            }
        }
        for (key, value) in overrides {
            try configuration.set(key, value, source: "flag")
        }
        try configuration.validate()
        return configuration
    }

    /// The effective configuration as YAML-ish lines (`loupe serve --print-config`).
    public func renderedKeyValues() -> [(key: String, value: String)] {
        var out = Self.keys.map { ($0.name, $0.read(self)) }
        for (model, policy) in modelPolicies.sorted(by: { $0.key < $1.key }) {
            out.append((Self.policyPrefix + model, policy))
        }
        for (model, settings) in promotionOverrides.sorted(by: { $0.key < $1.key }) {
            for (key, value) in settings.sorted(by: { $0.key < $1.key }) { out.append((Self.promotionPrefix + model + "." + key, value)) }
        }
        return out
    }

    // MARK: Key constructors

    static func int(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, Int> & Sendable,
                    _ range: ClosedRange<Int>, _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            let digits = v.replacingOccurrences("_", "")
            guard let n = Int(digits) else {
                throw ConfigurationValueError(message: "expected an integer, got '\(v)'")
            }
            guard range.contains(n) else {
                throw ConfigurationValueError(message: "expected an integer from \(range.lowerBound) to \(range.upperBound), got \(n)")
            }
            c[keyPath: keyPath] = n
        }, read: { String($0[keyPath: keyPath]) })
    }

    static func double(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, Double> & Sendable,
                       _ range: ClosedRange<Double>, _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            guard let x = Double(v), x.isFinite else { throw ConfigurationValueError(message: "expected a number, got '\(v)'") }
            guard range.contains(x) else {
                throw ConfigurationValueError(message: "expected a number from \(range.lowerBound) to \(range.upperBound), got \(x)")
            }
            c[keyPath: keyPath] = x
        }, read: { String($0[keyPath: keyPath]) })
    }

    static func bool(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, Bool> & Sendable,
                     _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            switch v.lowercased() {
            case "true", "yes", "on", "1": c[keyPath: keyPath] = true
            case "false", "no", "off", "0": c[keyPath: keyPath] = false
            default: throw ConfigurationValueError(message: "expected true or false, got '\(v)'")
            }
        }, read: { String($0[keyPath: keyPath]) })
    }

    static func string(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, String> & Sendable,
                       _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            c[keyPath: keyPath] = v
        }, read: { $0[keyPath: keyPath] })
    }

    /// A model name (the repository's grammar), or empty for "none".
    static func modelName(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, String> & Sendable,
                          _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            guard v.isEmpty || ModelRepositoryLayout.isValidName(v) else {
                throw ConfigurationValueError(message: "expected a model name (\(ModelRepositoryLayout.nameRule)), or empty, got '\(v)'")
            }
            c[keyPath: keyPath] = v
        }, read: { $0[keyPath: keyPath] })
    }

    static func oneOf(_ name: String, _ keyPath: WritableKeyPath<ServiceConfiguration, String> & Sendable,
                      _ allowed: [String], _ summary: String) -> ConfigurationKey {
        ConfigurationKey(name: name, summary: summary, apply: { (c, v) throws(ConfigurationValueError) in
            guard allowed.contains(v.lowercased()) else {
                throw ConfigurationValueError(message: "expected one of \(allowed.joined(separator: ", ")), got '\(v)'")
            }
            c[keyPath: keyPath] = v.lowercased()
        }, read: { $0[keyPath: keyPath] })
    }
}
