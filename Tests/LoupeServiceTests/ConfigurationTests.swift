import Testing
@testable import LoupeService

@Suite struct ConfigurationTests {
    @Test func defaultsWithNothingGiven() throws {
        var warnings: [String] = []
        let c = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [], warnings: &warnings)
        #expect(c == ServiceConfiguration())
        #expect(c.port == 8080 && c.maxQueueDelayMicroseconds == 0 && c.modelsDirectory == "models")
        #expect(warnings.isEmpty)
    }

    @Test func precedenceFlagsOverEnvironmentOverFile() throws {
        let dir = try TempDir()
        let file = dir.path + "/loupe.yaml"
        try dir.write("loupe.yaml", """
            # comment
            server:
              port: 9000   # trailing comment
              host: "127.0.0.1"
            batching:
              max_batch_size: 32
              max_queue_delay_us: 250
            logging:
              format: json
            """)
        var warnings: [String] = []
        let c = try ServiceConfiguration.load(
            file: file,
            environment: ["LOUPE_SERVER_PORT": "9100", "LOUPE_BATCHING_MAX_BATCH_SIZE": "16", "LOUPE_UNRELATED": "x", "PATH": "/bin"],
            overrides: [("batching.max_batch_size", "8")], warnings: &warnings)
        #expect(c.host == "127.0.0.1")           // file
        #expect(c.maxQueueDelayMicroseconds == 250)
        #expect(c.port == 9100)                   // env over file
        #expect(c.maxBatchSize == 8)              // flag over env
        #expect(c.logFormat == .json)
        #expect(warnings == ["ignoring unknown environment variable LOUPE_UNRELATED"])
    }

    @Test func invalidValuesNameTheKey() throws {
        var warnings: [String] = []
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: ["LOUPE_SERVER_PORT": "http"], overrides: [], warnings: &warnings)
        } throws: { error in
            let e = error as? ConfigurationError
            return e?.key == "server.port" && "\(error)".contains("expected an integer") && "\(error)".contains("LOUPE_SERVER_PORT")
        }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("batching.max_batch_size", "0")], warnings: &warnings)
        } throws: { error in (error as? ConfigurationError)?.key == "batching.max_batch_size" }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("batching.max_batch", "4")], warnings: &warnings)
        } throws: { error in "\(error)".contains("unknown key") }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("server.tls.certificate", "/x.pem")], warnings: &warnings)
        } throws: { error in (error as? ConfigurationError)?.key == "server.tls.key" }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("models.version_policy", "newest")], warnings: &warnings)
        } throws: { error in (error as? ConfigurationError)?.key == "models.version_policy" }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("logging.format", "xml")], warnings: &warnings)
        } throws: { error in (error as? ConfigurationError)?.key == "logging.format" }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("metrics.port", "8080")], warnings: &warnings)
        } throws: { error in (error as? ConfigurationError)?.key == "metrics.port" && "\(error)".contains("must differ from server.port") }
    }

    /// models.default and the model of models.policy.<model> are model names: one no model can have (a path, a
    /// leading dot) is refused with a sentence naming the key and where it came from, instead of being kept and never
    /// matching (every request without a model name then failed).
    @Test func modelNamesInKeysAreChecked() throws {
        var warnings: [String] = []
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: ["LOUPE_MODELS_DEFAULT": "../fashion"], overrides: [], warnings: &warnings)
        } throws: { error in
            (error as? ConfigurationError)?.key == "models.default" && "\(error)".contains("expected a model name") && "\(error)".contains("LOUPE_MODELS_DEFAULT")
        }
        #expect {
            _ = try ServiceConfiguration.load(file: nil, environment: [:], overrides: [("models.policy..hidden", "latest")], warnings: &warnings)
        } throws: { error in "\(error)".contains("'.hidden' is not a valid model name") }
        let ok = try ServiceConfiguration.load(file: nil, environment: ["LOUPE_MODELS_DEFAULT": "fashion-2.v1"], overrides: [("models.default", "")],
                                               warnings: &warnings)
        #expect(ok.repositoryConfiguration.defaultModel == nil)
        #expect(try ServiceConfiguration.load(file: nil, environment: ["LOUPE_MODELS_DEFAULT": "fashion-2.v1"], overrides: [],
                                              warnings: &warnings).defaultModel == "fashion-2.v1")
    }

    @Test func fileErrorsNameLineAndKey() throws {
        let dir = try TempDir()
        try dir.write("a.yaml", "server:\n  port: 70000\n")
        var warnings: [String] = []
        #expect {
            _ = try ServiceConfiguration.load(file: dir.path + "/a.yaml", environment: [:], overrides: [], warnings: &warnings)
        } throws: { error in
            let text = "\(error)"
            return text.contains("server.port") && text.contains("line 2") && text.contains("65535")
        }
        try dir.write("b.yaml", "server:\n  prot: 1\n")
        #expect {
            _ = try ServiceConfiguration.load(file: dir.path + "/b.yaml", environment: [:], overrides: [], warnings: &warnings)
        } throws: { error in "\(error)".contains("server.prot") }
    }

    /// A configuration file is read only up to the size one can have: a wrong path (here 2 MiB of comments, as
    /// /dev/zero or a model file would be) is refused with a sentence, not read and parsed whole.
    @Test func anOversizedConfigurationFileIsRefused() throws {
        let dir = try TempDir()
        try dir.write("big.yaml", String(repeating: "# a comment line that goes on for a while\n", count: 50_000))
        var warnings: [String] = []
        #expect {
            _ = try ServiceConfiguration.load(file: dir.path + "/big.yaml", environment: [:], overrides: [], warnings: &warnings)
        } throws: { error in
            (error as? ConfigurationError)?.key == "config" && "\(error)".contains("is larger than 1048576 bytes; a configuration file is a few kB")
        }
        try dir.write("small.yaml", "server:\n  port: 9001\n" + String(repeating: "#\n", count: 1000))
        #expect(try ServiceConfiguration.load(file: dir.path + "/small.yaml", environment: [:], overrides: [], warnings: &warnings).port == 9001)
    }

    /// A key given twice in one file is refused with both lines and the file, not silently last-wins
    /// (a repeated `port:`) or merged (two `models:` sections); the same key under different parents is fine.
    @Test func aKeyRepeatedInTheFileIsRefused() throws {
        let dir = try TempDir()
        var warnings: [String] = []
        func refusal(_ name: String, _ text: String) throws -> String? {
            try dir.write(name, text)
            do {
                _ = try ServiceConfiguration.load(file: dir.path + "/" + name, environment: [:], overrides: [], warnings: &warnings)
                return nil
            } catch let error as ConfigurationError {
                return "\(error)"
            }
        }
        let port = try refusal("port.yaml", "server:\n  port: 9001\n  host: 127.0.0.1\n  port: 9002\n")
        #expect(port == "invalid configuration: config (\(dir.path)/port.yaml): line 4: the key 'server.port' is given twice, on line 2 and on line 4; give it once")
        let models = try refusal("models.yaml", "models:\n  dir: /a\nserver:\n  port: 9001\nmodels:\n  max_loaded: 2\n")
        #expect(models?.contains("the key 'models' is given twice, on line 1 and on line 5") == true, "\(models ?? "accepted")")
        #expect(models?.contains("models.yaml") == true)
        let top = try refusal("top.yaml", "a: 1\na: 2\n")
        #expect(top?.contains("'a' is given twice, on line 1 and on line 2") == true, "\(top ?? "accepted")")
        // The same leaf name under different parents, and a list, are one key each.
        #expect(try refusal("fine.yaml", "server:\n  port: 9001\nmetrics:\n  port: 9100\nmodels:\n  policy:\n    a:\n      - 1\n      - 2\n") == nil)
    }

    @Test func perModelPoliciesAndLists() throws {
        let dir = try TempDir()
        try dir.write("p.yaml", "models:\n  policy:\n    fashion: [1, 3]\n    digits: latest\n")
        var warnings: [String] = []
        let c = try ServiceConfiguration.load(file: dir.path + "/p.yaml", environment: ["LOUPE_MODELS_POLICY_MNIST": "all"],
                                              overrides: [], warnings: &warnings)
        #expect(c.modelPolicies == ["fashion": "1,3", "digits": "latest", "mnist": "all"])
    }

    /// Config/loupe.yaml documents every key with its default: loading it must give the defaults,
    /// and every key must appear in it.
    @Test func shippedConfigFileEqualsDefaults() throws {
        let path = repositoryRoot() + "/Config/loupe.yaml"
        var warnings: [String] = []
        let c = try ServiceConfiguration.load(file: path, environment: [:], overrides: [], warnings: &warnings)
        #expect(c == ServiceConfiguration())
        let entries = try MiniYAML.flatten(try readTextFile(path)).map(\.key)
        for key in ServiceConfiguration.keys {
            #expect(entries.contains(key.name), "Config/loupe.yaml lacks \(key.name)")
        }
    }

    @Test func yamlSubset() throws {
        let entries = try MiniYAML.flatten("""
            a:
              b: 'it''s'
              c: "x # not a comment"
              d:
                - 1
                - 2
              e: ~
            f: plain value
            """)
        let map = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(map["a.b"] == "it's")
        #expect(map["a.c"] == "x # not a comment")
        #expect(map["a.d"] == "1,2")
        #expect(map["a.e"] == "")
        #expect(map["f"] == "plain value")
        #expect(throws: MiniYAML.ParseError.self) { try MiniYAML.flatten("a: {b: 1}") }
        #expect(throws: MiniYAML.ParseError.self) { try MiniYAML.flatten("just text") }
    }
}

@Suite struct ServeFlagTests {
    @Test func everyServeFlagSetsAKeyOfTheTableAndItsHelpQuotesTheDefault() {
        for entry in ServiceConfiguration.serveFlags {
            let key = ServiceConfiguration.keys.first { $0.name == entry.key }
            #expect(key != nil, "--\(entry.flag) sets \(entry.key), which is not a configuration key")
            let value = key?.currentValue(in: ServiceConfiguration()) ?? "?"
            #expect(ServiceConfiguration.serveFlagHelp(entry.flag).hasSuffix("(\(entry.key), default \(value.isEmpty ? "none" : value))"))
        }
        #expect(ServiceConfiguration.serveFlagHelp("max-batch-size").hasSuffix("(batching.max_batch_size, default 64)"))
    }

    @Test func flagsThenSettingsBecomeOverridesInOrder() throws {
        let o = try ServiceConfiguration.serveOverrides(flags: ["port": "9000", "workers": nil, "models": "/m"],
                                                        settings: ["server.port=9001", "shutdown.drain_delay_ms=0"])
        #expect(o.map(\.key) == ["models.dir", "server.port", "server.port", "shutdown.drain_delay_ms"])
        #expect(o.map(\.value) == ["/m", "9000", "9001", "0"])
        #expect(throws: ServeFlagError.self) { try ServiceConfiguration.serveOverrides(flags: [:], settings: ["novalue"]) }
    }
}
